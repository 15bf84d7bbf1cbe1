"""The parts under the Deepgram endpoints: G.711 both ways, query parameters, the words and
utterances of an answer, the rate limiter's wait."""

from __future__ import annotations

import numpy as np
import pytest

from voxloop.audio.g711 import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode
from voxloop.audio.ogg_opus import OggOpusDecoder
from voxloop.config import AgentConfig
from voxloop.errors import AudioFormatError
from voxloop.providers.base import Word
from voxloop.server.compat.deepgram_audio import RawDecoder
from voxloop.server.compat.deepgram_errors import DeepgramError
from voxloop.server.compat.deepgram_listen import listen_config
from voxloop.server.compat.deepgram_params import listen_options, speak_options
from voxloop.server.compat.deepgram_prerecorded import out_of_silence, split_utterances
from voxloop.server.compat.deepgram_results import from_onset, paragraphs, spread, transcript_of
from voxloop.server.compat.openai_audio import SpeechEncoder
from voxloop.server.limits import AUDIO_RATE, RateLimiter

CFG = AgentConfig()


@pytest.mark.parametrize(("encode", "decode"), [(mulaw_encode, mulaw_decode), (alaw_encode, alaw_decode)])
def test_g711_round_trips_within_its_quantisation(encode, decode) -> None:  # type: ignore[no-untyped-def]
    x = np.linspace(-1, 1, 20001).astype(np.float32)
    y = decode(encode(x))
    loud = np.abs(x) > 0.01
    assert np.max(np.abs(y - x)) < 0.02
    assert np.median(np.abs(y - x)[loud] / np.abs(x)[loud]) < 0.02  # about 2% of the level: companded
    codes = bytes(range(256))
    assert encode(decode(codes)) in (codes, codes.replace(b"\x7f", b"\xff"))  # mu-law's two zeros


def test_raw_linear16_joins_a_sample_split_across_messages() -> None:
    pcm = (np.arange(5, dtype="<i2") * 1000).tobytes()
    dec = RawDecoder("linear16")
    out = np.concatenate([dec(pcm[:3]), dec(pcm[3:7]), dec(pcm[7:])])
    assert np.allclose(out * 32768, np.arange(5) * 1000)


def test_listen_options_read_what_voxloop_acts_on_and_ignore_the_rest() -> None:
    q = [
        ("model", "nova-3"), ("encoding", "mulaw"), ("sample_rate", "8000"), ("interim_results", "true"),
        ("endpointing", "300"), ("keyterm", "Qorvex"), ("keyterm", "Dvořák"), ("keywords", "lamp:2"),
        ("diarize", "true"), ("whatever", "x"),
    ]  # fmt: skip
    o = listen_options(q, CFG, live=True)
    assert (o.encoding, o.sample_rate, o.interim_results, o.endpointing_ms) == ("mulaw", 8000, True, 300)
    assert o.keywords == ("Qorvex", "Dvořák", "lamp")
    assert listen_options([*q, ("endpointing", "false")], CFG, live=True).endpointing is False
    turn = listen_config(CFG, o).turn
    assert (turn.end_silence_ms, turn.adaptive_silence) == (300, False)
    assert (
        listen_config(CFG, listen_options([*q, ("endpointing", "10")], CFG, live=True)).turn.end_silence_ms
        == 160
    )


@pytest.mark.parametrize(
    ("q", "status"),
    [
        ([("channels", "2")], 400),
        ([("multichannel", "true")], 400),
        ([("encoding", "flac")], 400),
        ([("interim_results", "maybe")], 400),
        ([("utterance_end_ms", "500")], 400),
        ([("model", "gpt-4o-mini")], 404),
    ],
)
def test_listen_options_refuse_what_cannot_be_honoured(q: list[tuple[str, str]], status: int) -> None:
    base = [("model", "nova-3"), ("encoding", "linear16"), ("sample_rate", "16000")]
    with pytest.raises(DeepgramError) as caught:
        listen_options(base + q, CFG, live=True)
    assert caught.value.status == status


def test_speak_options_defaults() -> None:
    o = speak_options({"model": "aura-2-thalia-en"}, CFG, rest=True)
    assert (o.encoding, o.container) == ("mp3", "none")  # Deepgram's REST default
    assert speak_options({"encoding": "linear16"}, CFG, rest=True).container == "wav"
    with pytest.raises(DeepgramError):
        speak_options({"encoding": "mp3"}, CFG, rest=False)  # the socket sends raw audio only
    with pytest.raises(DeepgramError):
        speak_options({"encoding": "mp3", "container": "wav"}, CFG, rest=True)
    o = speak_options({"model": "aura-asteria-en", "encoding": "alaw"}, CFG, rest=True)
    assert (o.encoding, o.sample_rate, o.container) == ("alaw", 8000, "none")
    assert speak_options({}, CFG, rest=False).sample_rate == 24000


def test_spread_words_cover_the_speech_and_transcripts_follow_punctuate() -> None:
    words = spread("Hello, big world.", 1.0, 2.0)
    assert [w.word for w in words] == ["Hello,", "big", "world."]
    assert words[0].start == 1.0 and words[-1].end == 2.0
    assert all(a.end == b.start for a, b in zip(words, words[1:], strict=False))
    assert transcript_of("Hello, big world.", False) == "hello big world"
    assert transcript_of("Hello,  big world.", True) == "Hello, big world."


def test_utterances_split_at_silences_and_paragraphs_at_sentence_ends() -> None:
    w = (Word("Hi.", 0.1, 0.3), Word("Fine", 0.4, 0.6), Word("thanks.", 0.6, 0.9), Word("Bye.", 2.0, 2.3))
    utts = split_utterances(w, 0.8)
    assert [u.text for u in utts] == ["Hi. Fine thanks.", "Bye."]
    p = paragraphs(utts, True)
    assert [[s["text"] for s in para["sentences"]] for para in p["paragraphs"]] == [
        ["Hi.", "Fine thanks."],
        ["Bye."],
    ]


def test_a_word_started_in_silence_starts_where_the_speech_does() -> None:
    speech = np.array([False] * 10 + [True] * 20)  # 32 ms frames: speech from 0.32 s
    out = out_of_silence((Word("go", 0.0, 0.6), Word("on", 0.6, 0.8)), speech, 0.032)
    assert out[0].start == 0.32 and out[1].start == 0.6


def test_rate_limiter_delay_says_when_audio_may_go_on() -> None:
    lim = RateLimiter(messages_per_s=100, audio_burst_s=2.0)
    assert lim.delay(1.0, 0.0) == 0.0
    assert lim.audio(1.5, 0.0)
    assert lim.delay(1.0, 0.0) == pytest.approx(0.5 / AUDIO_RATE)  # 0.5 s of budget is missing
    assert lim.delay(1.0, 0.5 / AUDIO_RATE) == pytest.approx(0.0, abs=1e-9)
    assert not lim.audio(1.0, 0.4) and lim.audio(1.0, 0.5 / AUDIO_RATE)  # as the limiter decides
    assert lim.delay(None, 0.0) == 0.0  # a control message: its own budget


def test_ogg_opus_is_heard_with_pages_split_anywhere_and_what_is_not_opus_is_refused() -> None:
    t = np.arange(32000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    enc = SpeechEncoder("opus", 16000)
    ogg = enc.push(x) + enc.finish()
    whole = OggOpusDecoder()(ogg)
    split = OggOpusDecoder()
    pieces = np.concatenate([split(ogg[i : i + 7]) for i in range(0, len(ogg), 7)])
    assert len(pieces) == len(whole) and abs(len(whole) - 2 * 48000) < 0.05 * 48000
    assert np.sqrt(np.mean(whole[4800:-4800] ** 2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)
    with pytest.raises(AudioFormatError):
        OggOpusDecoder()(b"RIFF" + bytes(100))
    with pytest.raises(AudioFormatError):  # Ogg, but not Opus
        OggOpusDecoder()(ogg[:4] + ogg[4:28] + b"Vorbis" + ogg[34:])


def test_a_first_word_aligned_into_the_silence_before_the_speech_starts_at_its_onset() -> None:
    words = (Word("Turn", 0.63, 1.2, 0.9), Word("on", 1.25, 1.4, 0.8))
    assert from_onset(words, 1.0) == (Word("Turn", 1.0, 1.2, 0.9), words[1])
    assert from_onset(words, 0.5) == words  # it starts in the speech: as aligned
    assert from_onset((Word("uh", 0.2, 0.5),), 1.0) == (Word("uh", 0.2, 0.5),)  # not within the word
