"""Each real model on its own: Silero VAD, Whisper tiny.en, Qwen on llama.cpp, hibari and Piper."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from voxloop import models
from voxloop.agent.history import History
from voxloop.config import DEFAULT_SYSTEM_PROMPT, STTConfig, TTSConfig
from voxloop.demo import synth
from voxloop.errors import ModelMissing
from voxloop.providers.base import LLM, STT, TTS, VAD, Message, Sampling, Transcript
from voxloop.providers.stt.whisper import WhisperSTT

from .conftest import JFK, LAMP, Arun, Corpus, load_or_skip
from .helpers import missing_words, speech_dbfs, words

pytestmark = pytest.mark.integration

REFUSAL = re.compile(r"\b(can't|cannot|can not|unable|not able|don't have|do not have|not possible)\b")


# -- Silero VAD ------------------------------------------------------------------------------------
@pytest.mark.parametrize("clip_id", [LAMP, "pocketsphinx_goforward"])  # commands without inner pauses
def test_silero_scores_labelled_speech_high_and_leading_silence_low(vad: VAD, corpus: Corpus, clip_id: str):
    audio = corpus.audio(clip_id)
    start, end = corpus.speech(clip_id)
    stream, n = vad.stream(), vad.frame_samples
    frames = [
        (i * n / 16000, (i + 1) * n / 16000, stream(audio[i * n : (i + 1) * n]))
        for i in range(len(audio) // n)
    ]
    inside = [p for a, b, p in frames if a >= start and b <= end]
    leading = [p for a, b, p in frames if b <= start]
    assert inside and leading
    assert min(inside) > 0.5, f"frames inside the labelled speech {start}-{end} s scored {inside}"
    assert max(leading) < 0.5, f"frames of the leading silence scored {leading}"


# -- Whisper tiny.en -------------------------------------------------------------------------------
@pytest.mark.parametrize("clip_id", [LAMP, JFK])
def test_whisper_batch_transcription_holds_the_words(arun: Arun[Any], stt: STT, corpus: Corpus, clip_id: str):
    tr = arun(stt.transcribe(corpus.audio(clip_id)))
    assert tr.is_final
    assert not missing_words(tr.text, [corpus.clip(clip_id).transcript]), tr.text


def test_whisper_streaming_gives_partials_then_the_final(arun: Arun[Any], stt: STT, corpus: Corpus):
    clip = corpus.clip(LAMP)
    audio = clip.audio()
    log: list[tuple[str, Transcript]] = []

    async def run() -> tuple[Transcript | None, Transcript]:
        stream = stt.stream(lambda t: log.append(("partial", t)))
        loop, chunk = asyncio.get_running_loop(), 320
        t0 = loop.time()
        try:
            for i in range(0, len(audio), chunk):
                # The pace of a microphone: 20 ms of audio every 20 ms.
                if (wait := t0 + i / 16000 - loop.time()) > 0:
                    await asyncio.sleep(wait)
                await stream.push(audio[i : i + chunk])
            stream.speech_paused()
            paused = await stream.pause_transcript()
            final = await stream.finalize()
            log.append(("final", final))
            return paused, final
        finally:
            await stream.aclose()

    paused, final = arun(run())
    assert final.is_final and not missing_words(final.text, [clip.transcript]), final.text
    assert paused is not None and paused.text == final.text
    partials = [t for kind, t in log if kind == "partial"]
    assert partials, "no partial transcript arrived"
    assert [kind for kind, _ in log][-1] == "final", "a partial arrived after the final transcript"
    assert all(not t.is_final and t.text for t in partials)
    seconds = [t.audio_s for t in partials]
    assert seconds == sorted(seconds) and seconds[-1] <= final.audio_s


def test_whisper_continues_a_turn_from_long_context_on_a_short_clip(
    arun: Arun[Any], stt: STT, corpus: Corpus
):
    """The words before (`continues`) are Whisper's prompt: a prompt longer than the short clip's
    generation budget once crashed CTranslate2 (segfault), and context must not lose the words."""
    jfk = corpus.clip(JFK)
    start, end = corpus.speech(JFK)
    audio = jfk.audio()
    tail = audio[int((end - 0.9) * 16000) : int(end * 16000)]  # "... for your country", 0.9 s
    before = "And so, my fellow Americans, ask not what your country can do for you, ask what you can do"

    async def run() -> Transcript:
        stream = stt.stream()
        try:
            stream.continues(before * 3)
            await stream.push(tail)
            return await stream.finalize()
        finally:
            await stream.aclose()

    final = arun(run())
    assert "country" in final.text.lower(), final.text


def test_whisper_keywords_steer_the_recogniser_to_an_unusual_name(arun: Arun[Any], stt: STT, tts: TTS):
    name = "Xanthe"  # tiny.en hears "Zanz" without the hint
    audio = arun(synth(tts, f"Please send the report to {name} tomorrow morning."))
    biased = load_or_skip(arun, WhisperSTT(STTConfig(model="tiny.en", keywords=[name])))
    try:
        plain_texts = arun(stt.transcribe(audio)).text, arun(_stream_decode(stt, audio))
        biased_texts = arun(biased.transcribe(audio)).text, arun(_stream_decode(biased, audio))
    finally:
        arun(biased.aclose())
    for plain in plain_texts:
        assert "xanthe" not in words(plain), f"unbiased already right ({plain!r}): the test shows nothing"
    for text in biased_texts:
        assert "xanthe" in words(text), text
        assert not missing_words(text, ["please send the report tomorrow morning"]), text


async def _stream_decode(stt: STT, audio: np.ndarray) -> str:
    stream = stt.stream()
    try:
        await stream.push(audio)
        return (await stream.finalize()).text
    finally:
        await stream.aclose()


# -- Qwen on llama.cpp -----------------------------------------------------------------------------
def _ask(arun: Arun[Any], llm: LLM, messages: list[Message]) -> list[str]:
    async def collect() -> list[str]:
        return [piece async for piece in llm.stream(messages)]

    return arun(collect())


def test_llm_streams_the_answer_and_keeps_context(arun: Arun[Any], llm: LLM):
    history = History(DEFAULT_SYSTEM_PROMPT)
    question = "What is the capital of France?"
    pieces = _ask(arun, llm, history.prompt_with(question))
    answer = "".join(pieces)
    assert len(pieces) >= 3, f"not streamed: {pieces}"
    assert "paris" in words(answer), answer
    history.add_user(question)
    history.add_assistant(answer)
    follow_up = "".join(_ask(arun, llm, history.prompt_with("And of Italy?")))
    assert "rome" in words(follow_up), follow_up


def test_llm_reuses_its_kv_cache_for_a_repeated_prompt(
    arun: Arun[Any], llm: LLM, caplog: pytest.LogCaptureFixture
):
    messages = History(DEFAULT_SYSTEM_PROMPT).prompt_with("Name one planet of the solar system, please.")
    with caplog.at_level(logging.DEBUG, logger="voxloop.llm"):
        for _ in range(2):
            assert "".join(_ask(arun, llm, messages)).strip()
    pattern = re.compile(r"generate: prompt (\d+) tokens, (\d+) already cached")
    seen = [tuple(map(int, m.groups())) for r in caplog.records if (m := pattern.search(r.getMessage()))]
    assert len(seen) == 2, f"expected two 'generate' debug lines, got {seen}"
    (total1, cached1), (total2, cached2) = seen
    assert total1 == total2
    new1, new2 = total1 - cached1, total2 - cached2
    assert cached1 > 0, "not even the system prompt (cached at load) was reused"
    assert new1 >= 10, f"the first prompt evaluated only {new1} new tokens"
    assert new2 <= 1, f"the repeated prompt still had {new2} of {total2} tokens to evaluate"


def test_llm_serves_two_conversations_at_once_each_from_its_own_cache(
    arun: Arun[Any], llm: LLM, caplog: pytest.LogCaptureFixture
):
    """Two callers talking at once: both answers are right, and each caller's second turn reads
    only its own new words (its first turn is still cached, though the other ran meanwhile)."""
    asks = (
        ("What is the capital of France?", "paris", "And of Italy?", "rome"),
        ("What is the capital of Japan?", "tokyo", "And of Germany?", "berlin"),
    )
    histories = [History(DEFAULT_SYSTEM_PROMPT) for _ in asks]

    async def turn(h: History, question: str) -> str:
        answer = "".join([p async for p in llm.stream(h.prompt_with(question))])
        h.add_user(question)
        h.add_assistant(answer)
        return answer

    async def both(i: int) -> list[str]:
        return list(await asyncio.gather(*(turn(h, a[i]) for h, a in zip(histories, asks, strict=True))))

    first = arun(both(0))
    with caplog.at_level(logging.DEBUG, logger="voxloop.llm"):
        second = arun(both(2))
    for (_, w1, _, w2), a1, a2 in zip(asks, first, second, strict=True):
        assert w1 in words(a1), a1
        assert w2 in words(a2), a2
    pattern = re.compile(r"generate: prompt (\d+) tokens, (\d+) already cached")
    seen = [tuple(map(int, m.groups())) for r in caplog.records if (m := pattern.search(r.getMessage()))]
    assert len(seen) == 2, seen
    for total, cached in seen:  # only "<|im_start|>user\nAnd of X?<|im_end|>..." is new
        assert total - cached <= 20, f"{total - cached} of {total} tokens evaluated again"


def test_llm_honestly_refuses_to_set_a_timer(arun: Arun[Any], llm: LLM):
    reply = "".join(
        _ask(arun, llm, History(DEFAULT_SYSTEM_PROMPT).prompt_with("Set a timer for ten minutes."))
    )
    text = " ".join(words(reply))
    assert REFUSAL.search(text), f"no refusal in {reply!r}"
    assert not re.search(r"\b(i've set|i have set|timer is set|timer set)\b", text), reply


@pytest.mark.parametrize(
    "request_",
    ["Tell me a story about a brave little dragon.", "Tell me a joke.", "What is seven times eight?"],
)
def test_llm_does_what_it_can_instead_of_refusing(arun: Arun[Any], llm: LLM, request_: str):
    """The honesty rule is for what the agent cannot do: a story, a joke or a sum it just does
    (the most likely words: no sampling luck either way)."""

    async def reply() -> str:
        prompt = History(DEFAULT_SYSTEM_PROMPT).prompt_with(request_)
        return "".join([p async for p in llm.stream_with(prompt, Sampling(temperature=0.0))])

    text = arun(reply())
    assert not REFUSAL.search(" ".join(words(text))), f"refused {request_!r}: {text!r}"


# -- TTS -------------------------------------------------------------------------------------------
SENTENCES = (
    "The weather is lovely today.",
    "Paris is the capital of France, and about two million people live in the city itself.",
)


def _check_voice(arun: Arun[Any], tts: TTS, rate: int) -> None:
    target = TTSConfig().loudness_dbfs
    levels = []
    for text in SENTENCES:

        async def chunks(text: str = text) -> list[np.ndarray]:
            return [c async for c in tts.synthesize(text)]

        parts = arun(chunks())
        assert parts and tts.sample_rate == rate
        assert all(c.dtype == np.float32 and c.ndim == 1 for c in parts)
        audio = np.concatenate(parts)
        assert len(audio) / rate > 1.0, f"{text!r} gave only {len(audio) / rate:.2f} s"
        levels.append(speech_dbfs(audio, rate))
    assert all(abs(level - target) <= 3.0 for level in levels), f"speech at {levels} dBFS, target {target}"


def test_hibari_streams_24khz_at_a_consistent_loudness(arun: Arun[Any], tts: TTS):
    _check_voice(arun, tts, 24000)


def test_piper_joe_streams_at_a_consistent_loudness(arun: Arun[Any], piper: TTS):
    _check_voice(arun, piper, 22050)


# -- missing models --------------------------------------------------------------------------------
def test_unknown_model_name_is_a_model_missing_error_that_lists_the_known_models():
    with pytest.raises(ModelMissing) as info:
        models.model_path("nonexistent")
    assert "nonexistent" in info.value.message
    assert all(name in info.value.hint for name in ("tiny.en", "qwen2.5-1.5b", "heart"))


def test_uninstalled_model_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch):
    spec = replace(models.MODELS["tiny.en"], file=("voxloop_no_such_model_package", "model"))
    monkeypatch.setitem(models.MODELS, "tiny.en", spec)
    with pytest.raises(ModelMissing) as info:
        models.model_path("tiny.en")
    assert "voxloop_no_such_model_package" in info.value.message
    assert 'pip install "voxloop[whisper]"' in info.value.hint
