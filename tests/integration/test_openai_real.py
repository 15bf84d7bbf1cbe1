"""The OpenAI-compatible endpoints with the real local models, driven by the official `openai`
client (unmodified, `base_url` pointed at a live server on loopback): corpus clips transcribed
within the recogniser's own WER, every response format, speech that says what was asked when
transcribed back, chat completions whole and streamed with stop and max_tokens, the client's usual
exceptions on bad requests, and several clients at once without blocking the event loop.

The chat model is SmolLM2-135M (fast); its replies are checked for their shape and for what the
parameters promise, not for wisdom."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from live_server import LiveServer, http_get, live_server
from voxloop.agent.providers import Providers
from voxloop.audio.pcm import resample
from voxloop.bench.corpus import wer
from voxloop.config import AgentConfig, LLMConfig
from voxloop.providers.base import LLM, STT, TTS, VAD, Message, Sampling, Usage
from voxloop.server.settings import ServerSettings

from .conftest import LAMP, Arun, Corpus, load_or_skip
from .helpers import missing_words, words

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.integration

# one clip per corpus speaker or source, short to long (the tuning and validation parts alike)
CLIPS = (
    "1688-142285-0002",
    "1688-142285-0003",
    "1998-15444-0001",
    "2033-164914-0001",
    "2414-128291-0001",
    "2609-156975-0001",
    "1089-134686-0000",
    "1221-135766-0001",
    "1995-1837-0001",
    LAMP,
)
SAID = "The quick brown fox jumps over the lazy dog. Then it runs back home for dinner."


class CountingLLM(LLM):
    """The real model, with the pieces it handed out counted and an event when one of its
    generations is closed early (the client went away)."""

    def __init__(self, inner: LLM) -> None:
        self.inner = inner
        self.name = inner.name
        self.pieces = 0
        self.closed_early = asyncio.Event()

    def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        return self.inner.stream(messages)

    def stream_with(
        self, messages: Sequence[Message], sampling: Sampling, usage: Usage | None = None
    ) -> AsyncGenerator[str, None]:
        return self._counted_pieces(self.inner.stream_with(messages, sampling, usage))

    async def _counted_pieces(self, pieces: AsyncGenerator[str, None]) -> AsyncGenerator[str, None]:
        finished = False
        try:
            async with contextlib.aclosing(pieces):
                async for piece in pieces:
                    self.pieces += 1
                    yield piece
            finished = True
        finally:
            if not finished:
                self.closed_early.set()


@pytest.fixture(scope="module")
def small_llm(arun: Arun[Any]) -> Iterator[CountingLLM]:
    from voxloop.providers.llm.llama import LlamaLLM

    llm = load_or_skip(arun, LlamaLLM(LLMConfig(model="smollm2-135m")))
    yield CountingLLM(llm)
    arun(llm.aclose())


@pytest.fixture(scope="module")
def server(arun: Arun[Any], vad: VAD, stt: STT, small_llm: CountingLLM, tts: TTS) -> Iterator[LiveServer]:
    """One live server for the module, with the session's loaded models (SmolLM2 for chat)."""
    config = AgentConfig()
    config.llm.model = "smollm2-135m"
    providers = Providers(vad, stt, small_llm, tts)
    stack = contextlib.AsyncExitStack()
    srv = arun(stack.enter_async_context(live_server(providers, ServerSettings(port=0), config)))
    yield srv
    arun(stack.aclose())


@contextlib.asynccontextmanager
async def client(srv: LiveServer, key: str = "unused") -> AsyncIterator[Any]:
    c = openai.AsyncOpenAI(base_url=f"{srv.http_url}/v1", api_key=key, max_retries=0, timeout=120)
    try:
        yield c
    finally:
        await c.close()


def heard(stt: STT, arun: Arun[Any], audio: np.ndarray, rate: int) -> str:
    return arun(stt.transcribe(resample(audio.astype(np.float32), rate, 16000))).text


# -- transcription ----------------------------------------------------------------------------------
def test_corpus_clips_are_transcribed_within_the_recognisers_own_wer(
    arun: Arun[Any], server: LiveServer, stt: STT, corpus: Corpus
) -> None:
    clips = [corpus.clip(i) for i in CLIPS]

    async def main() -> list[str]:
        async with client(server) as c:
            out = []
            for clip in clips:
                upload = (clip.path.name, clip.path.read_bytes())  # noqa: ASYNC240 - a small test file
                out.append((await c.audio.transcriptions.create(model="whisper-1", file=upload)).text)
            return out

    got = arun(main())
    offline = [arun(stt.transcribe(clip.audio())).text for clip in clips]  # `voxloop transcribe`
    refs = [clip.transcript for clip in clips]
    served, own = wer(refs, got), wer(refs, offline)
    print(f"\nWER through /v1/audio/transcriptions {served:.3f}, the recogniser's offline path {own:.3f}")
    assert served <= own + 0.02, (got, offline)
    assert served < 0.25


def test_every_response_format_of_one_recording(arun: Arun[Any], server: LiveServer, corpus: Corpus) -> None:
    clip = corpus.clip("1688-142285-0003")
    data = clip.path.read_bytes()
    duration = len(clip.audio()) / 16000

    async def main() -> dict[str, Any]:
        async with client(server) as c:
            tr = c.audio.transcriptions
            out: dict[str, Any] = {}
            out["json"] = await tr.create(model="gpt-4o-mini-transcribe", file=("a.wav", data))
            for fmt in ("text", "srt", "vtt"):
                out[fmt] = await tr.create(model="whisper-1", file=("a.wav", data), response_format=fmt)
            out["verbose_json"] = await tr.create(
                model="gpt-4o-transcribe",
                file=("a.wav", data),
                response_format="verbose_json",
                timestamp_granularities=["word", "segment"],
                prompt="Mister Hale and Margaret.",
                language="en",
                temperature=0.0,
            )
            return out

    out = arun(main())
    text = out["json"].text
    assert not missing_words(text, ["account of himself better than anything"]), text
    assert out["text"].strip() == text

    v = out["verbose_json"]
    assert v.duration == pytest.approx(duration, abs=0.01) and v.language == "english"
    assert words(v.text) == words(text), (v.text, text)
    assert v.segments and v.segments[0].start >= 0 and v.segments[-1].end <= duration + 0.5
    spoken = [w.word for w in v.words]
    assert words(" ".join(spoken)) == words(v.text)
    starts = [w.start for w in v.words]
    assert starts == sorted(starts) and all(w.end >= w.start for w in v.words)
    assert v.words[-1].end <= duration + 0.5 and v.words[0].start < 1.5

    for fmt, sep in (("srt", ","), ("vtt", ".")):
        body = out[fmt]
        assert f"00:00:00{sep}" in body and not missing_words(
            body, ["account of himself better than anything"]
        ), body
    assert out["srt"].startswith("1\n") and out["vtt"].startswith("WEBVTT\n\n")


# -- speech -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["wav", "pcm", "mp3", "opus"])
def test_speech_transcribed_back_says_what_was_asked(
    arun: Arun[Any], server: LiveServer, stt: STT, fmt: str
) -> None:
    async def main() -> bytes:
        async with client(server) as c:
            r = await c.audio.speech.create(model="tts-1", voice="alloy", input=SAID, response_format=fmt)
            return bytes(r.content)

    body = arun(main())
    if fmt == "pcm":
        audio, rate = np.frombuffer(body, "<i2").astype(np.float32) / 32768.0, 24000
    elif fmt == "wav":
        assert body[:4] == b"RIFF" and body[36:40] == b"data"
        audio, rate = np.frombuffer(body[44:], "<i2").astype(np.float32) / 32768.0, 24000
    else:
        audio, rate = _decode(body)
    assert 2.0 < len(audio) / rate < 15.0
    back = heard(stt, arun, audio, rate)
    missing = missing_words(back, [SAID])
    assert len(missing) <= 2, (back, missing)


def _decode(data: bytes) -> tuple[np.ndarray, int]:
    import av

    with av.open(io.BytesIO(data)) as container:
        rate = container.streams.audio[0].rate
        frames = [f.to_ndarray().reshape(-1).astype(np.float32) for f in container.decode(audio=0)]
    x = np.concatenate(frames)
    if x.dtype != np.float32 or np.abs(x).max() > 1.5:
        x = x / 32768.0
    return x, rate


def test_speech_is_streamed_while_it_is_synthesized_and_speed_is_honoured(
    arun: Arun[Any], server: LiveServer
) -> None:
    text = " ".join(f"This is sentence number {n}, one of eight in a row." for n in range(1, 9))

    async def main() -> tuple[float, float, int, int]:
        async with client(server) as c:
            t0 = time.perf_counter()
            first = None
            size = 0
            async with c.audio.speech.with_streaming_response.create(
                model="tts-1", voice="nova", input=text, response_format="pcm"
            ) as r:
                async for part in r.iter_bytes():
                    if first is None and part:
                        first = time.perf_counter() - t0
                    size += len(part)
            total = time.perf_counter() - t0
            fast = await c.audio.speech.create(
                model="tts-1", voice="nova", input=text, response_format="pcm", speed=1.5
            )
            assert first is not None
            return first, total, size, len(fast.content)

    first, total, normal_bytes, fast_bytes = arun(main())
    print(f"\nspeech: first bytes after {first * 1000:.0f} ms, all after {total * 1000:.0f} ms")
    assert first < 0.6 * total  # the first sentences' audio well before the rest was synthesized
    assert 0.5 < fast_bytes / normal_bytes < 0.85  # speed 1.5: about two thirds as long


# -- chat -------------------------------------------------------------------------------------------
ASK = [{"role": "user", "content": "Name three colours of the rainbow."}]
RAINBOW = {"red", "orange", "yellow", "green", "blue", "indigo", "violet"}


def test_chat_whole_and_streamed_say_the_same_and_count_their_tokens(
    arun: Arun[Any], server: LiveServer
) -> None:
    async def main() -> tuple[Any, list[Any]]:
        async with client(server) as c:
            whole = await c.chat.completions.create(
                model="gpt-4o-mini", messages=ASK, temperature=0, max_tokens=40
            )
            stream = await c.chat.completions.create(
                model="smollm2-135m",
                messages=ASK,
                temperature=0,
                max_tokens=40,
                stream=True,
                stream_options={"include_usage": True},
            )
            return whole, [ch async for ch in stream]

    whole, chunks = arun(main())
    text = whole.choices[0].message.content
    assert text and whole.choices[0].finish_reason in ("stop", "length")
    assert 0 < whole.usage.completion_tokens <= 40 and whole.usage.prompt_tokens > 5
    streamed = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    # Not "the same text": llama.cpp's greedy choice can flip on a near tie when the batch the
    # prompt is evaluated in differs (a reused prefix, another sequence alongside), as CI saw
    # once ("1. Red: This is" against "1. **Red** - This is"). Both must answer the question.
    for reply in (text, streamed):
        assert RAINBOW & set(re.findall(r"[a-z]+", reply.lower())), reply
    assert 0 < chunks[-1].usage.completion_tokens <= 40
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    assert len([ch for ch in chunks if ch.choices and ch.choices[0].delta.content]) > 3


def test_chat_stops_at_a_stop_sequence_and_at_max_tokens(arun: Arun[Any], server: LiveServer) -> None:
    async def main() -> tuple[str, Any, Any, Any]:
        async with client(server) as c:
            free = await c.chat.completions.create(
                model="gpt-4o-mini", messages=ASK, temperature=0, max_tokens=40
            )
            text = free.choices[0].message.content
            stop = " ".join(text.split()[2:4])  # two words from inside the reply
            stopped = await c.chat.completions.create(
                model="gpt-4o-mini", messages=ASK, temperature=0, max_tokens=40, stop=[stop]
            )
            short = await c.chat.completions.create(
                model="gpt-4o-mini", messages=ASK, temperature=0, max_tokens=3
            )
            short_stream = await c.chat.completions.create(
                model="gpt-4o-mini", messages=ASK, temperature=0, max_completion_tokens=3, stream=True
            )
            return text, stopped, short, [ch async for ch in short_stream]

    text, stopped, short, chunks = arun(main())
    stop = " ".join(text.split()[2:4])
    assert stopped.choices[0].message.content == text[: text.index(stop)]
    assert stopped.choices[0].finish_reason == "stop"
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 3
    assert text.startswith(short.choices[0].message.content)
    assert chunks[-1].choices[0].finish_reason == "length"
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == short.choices[0].message.content


def test_a_client_leaving_mid_stream_stops_the_generation(
    arun: Arun[Any], server: LiveServer, small_llm: CountingLLM
) -> None:
    async def main() -> int:
        small_llm.closed_early.clear()
        async with client(server) as c:
            stream = await c.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Write a very long story about a dragon."}],
                max_tokens=400,
                stream=True,
            )
            small_llm.pieces = 0
            async for ch in stream:
                if ch.choices and ch.choices[0].delta.content and small_llm.pieces >= 5:
                    break
            await stream.close()
            await asyncio.wait_for(small_llm.closed_early.wait(), 30)
            return small_llm.pieces

    assert arun(main()) < 100


# -- errors, keys, several clients ------------------------------------------------------------------
def test_bad_requests_get_the_clients_usual_exceptions_and_the_server_lives_on(
    arun: Arun[Any], server: LiveServer
) -> None:
    async def main() -> None:
        async with client(server) as c:
            with pytest.raises(openai.NotFoundError):
                await c.chat.completions.create(model="gpt-7-ultra", messages=ASK)
            with pytest.raises(openai.NotFoundError):
                await c.audio.speech.create(model="whisper-1", voice="alloy", input="Hi.")
            with pytest.raises(openai.BadRequestError):
                await c.audio.transcriptions.create(model="whisper-1", file=("a.mp3", b"\xff\xfb garbage"))
            with pytest.raises(openai.BadRequestError):
                await c.chat.completions.create(model="gpt-4o-mini", messages=ASK, temperature=-1)
            r = await c.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=5)
            assert r.choices[0].message.content
        assert server.state.active == 0

    arun(main())


def test_keys_are_required_when_set(
    arun: Arun[Any], vad: VAD, stt: STT, small_llm: CountingLLM, tts: TTS
) -> None:
    providers = Providers(vad, stt, small_llm, tts)

    async def main() -> None:
        async with live_server(providers, ServerSettings(port=0, api_keys=("s3cret",))) as srv:
            async with client(srv, "wrong") as bad:
                with pytest.raises(openai.AuthenticationError):
                    await bad.models.list()
            async with client(srv, "s3cret") as good:
                assert "whisper-1" in [m.id async for m in good.models.list()]

    arun(main())


def test_several_clients_at_once_share_the_models_and_the_loop_stays_free(
    arun: Arun[Any], server: LiveServer, stt: STT, corpus: Corpus
) -> None:
    clip = corpus.clip(LAMP)
    data = clip.path.read_bytes()

    async def main() -> tuple[list[Any], float, list[float]]:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        lags: list[float] = []
        health: list[float] = []

        async def watch() -> None:  # how late the loop runs a 20 ms timer while the models work
            while not done.is_set():
                t = loop.time()
                await asyncio.sleep(0.02)  # the probe itself: a timer whose lateness is the lag
                lags.append(loop.time() - t - 0.02)

        async def ping() -> None:  # the server keeps answering plain requests meanwhile
            while not done.is_set():
                t = loop.time()
                status, _, _ = await http_get(server.port, "/healthz")
                assert status == 200
                health.append(loop.time() - t)

        async with client(server) as c:
            jobs = [
                c.audio.transcriptions.create(model="whisper-1", file=("a.wav", data)),
                c.audio.speech.create(model="tts-1", voice="alloy", input=SAID, response_format="wav"),
                c.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=30),
                c.audio.transcriptions.create(model="nova-3", file=("b.wav", data), response_format="text"),
            ]
            watchers = [loop.create_task(watch()), loop.create_task(ping())]
            try:
                results = await asyncio.gather(*jobs)
            finally:
                done.set()
                await asyncio.gather(*watchers)
        return results, max(lags), health

    results, worst_lag, health = arun(main())
    t1, speech, chat, t2 = results
    assert not missing_words(t1.text, [clip.transcript]) and words(t2) == words(t1.text)
    assert speech.content[:4] == b"RIFF" and len(speech.content) > 24000 * 2
    assert chat.choices[0].message.content
    print(f"\nworst event-loop lag {worst_lag * 1000:.0f} ms; /healthz max {max(health) * 1000:.0f} ms")
    assert worst_lag < 0.5 and max(health) < 1.0
    assert server.state.active == 0
