"""Word times through the streaming recogniser, without a model: the aligner's tokens made whole
words, each decode's words shifted by where its audio begins, words a continuation repeats dropped
with the text, and a transcript's words all timed or none (`providers/stt/decoding.py`,
`whisper_text.stitched`, `WhisperDecoder.decode_timed` with its one model call scripted)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import silence, tone
from voxloop.config import STTConfig
from voxloop.providers.base import Samples, Word
from voxloop.providers.stt.decoding import Decoding, joined, shift, whole_words
from voxloop.providers.stt.pieces import split_quiet
from voxloop.providers.stt.whisper_decoder import WhisperDecoder
from voxloop.providers.stt.whisper_text import stitched

RATE = 16000


def W(word: str, start: float, end: float, confidence: float = 1.0) -> Word:
    return Word(word, start, end, confidence)


def spans(words: tuple[Word, ...] | list[Word]) -> list[tuple[str, float, float]]:
    return [(w.word, round(w.start, 3), round(w.end, 3)) for w in words]


def test_punctuation_and_pieces_of_a_word_join_the_word_before_them() -> None:
    tokens = [
        W(" Hello", 0.1, 0.4, 0.9),
        W(",", 0.4, 0.9, 0.2),  # punctuation: its time and probability are not the word's
        W(" well", 0.9, 1.1, 0.8),
        W("-", 1.1, 1.2, 0.5),
        W("known", 1.2, 1.5, 0.6),  # no space: the same word goes on
        W(" Mr", 1.6, 1.8, 0.95),
        W(".", 1.8, 2.5, 0.3),
    ]
    assert whole_words(tokens) == [
        W("Hello,", 0.1, 0.4, 0.9),
        W("well-known", 0.9, 1.5, 0.6),
        W("Mr.", 1.6, 1.8, 0.95),
    ]
    assert whole_words([W(' "', 0.0, 0.1), W("Hi", 0.1, 0.3, 0.7), W('"', 0.3, 0.4)]) == [
        W('"Hi"', 0.1, 0.3, 0.7)
    ]
    assert whole_words([W(".", 0.0, 0.1)]) == []


def test_pieces_join_on_one_clock_and_a_transcript_has_every_words_time_or_none() -> None:
    a = Decoding("One two.", (W("One", 0.2, 0.5), W("two.", 0.6, 0.9)))
    b = Decoding("Three.", shift([W("Three.", 0.1, 0.4)], 2.0))
    assert joined([a, b]) == Decoding("One two. Three.", (*a.words, W("Three.", 2.1, 2.4)))
    assert joined([a, Decoding(""), Decoding("...")]).words == a.words  # nothing said, nothing to time
    assert joined([a, Decoding("Three.")]) == Decoding("One two. Three.")  # a part without times: none


def test_a_continuation_drops_the_words_it_repeats_from_its_text_and_its_words() -> None:
    first = Decoding(
        "The cat sat on", (W("The", 0.1, 0.3), W("cat", 0.4, 0.7), W("sat", 0.8, 1.1), W("on", 1.2, 1.4))
    )
    rest = Decoding("On the mat.", shift([W("On", 0.0, 0.1), W("the", 0.3, 0.5), W("mat.", 0.6, 1.0)], 1.4))
    out = stitched([first, rest])
    assert out.text == "The cat sat on the mat."
    assert spans(out.words) == [
        ("The", 0.1, 0.3),
        ("cat", 0.4, 0.7),
        ("sat", 0.8, 1.1),
        ("on", 1.2, 1.4),  # the first decode's "on", not the continuation's
        ("the", 1.7, 1.9),
        ("mat.", 2.0, 2.4),
    ]
    assert [w.word for w in out.words] == out.text.split()
    assert stitched([first, Decoding("the mat.")]) == Decoding("The cat sat on the mat.")


Once = tuple[str, float | None, list[Word]]


def scripted(answers: list[Once], config: STTConfig) -> tuple[WhisperDecoder, list[tuple[float, str]]]:
    """A WhisperDecoder whose one model call (`_decode_once`: text, where its words stop, its words
    in the audio it got) answers from `answers` in turn; records (seconds of audio, context)."""
    dec = WhisperDecoder.__new__(WhisperDecoder)
    dec.config = config
    calls: list[tuple[float, str]] = []

    def once(audio: Samples, beam: int, context: str) -> Once:
        calls.append((round(len(audio) / RATE, 2), context))
        return answers[min(len(calls), len(answers)) - 1]

    dec._decode_once = once  # type: ignore[method-assign]
    return dec, calls


def test_a_continued_decodes_words_are_shifted_by_where_the_continuation_began() -> None:
    audio = np.concatenate([tone(4.0), silence(0.5)])
    answers: list[Once] = [
        ("One two three", 2.0, [W("One", 0.2, 0.6, 0.9), W("two", 0.8, 1.2), W("three", 1.5, 2.0)]),
        ("three four five.", 1.9, [W("three", 0.0, 0.2), W("four", 0.4, 0.9), W("five.", 1.2, 1.9, 0.7)]),
    ]
    dec, calls = scripted(answers, STTConfig(max_piece_s=20.0))
    out = dec.decode_timed(audio, beam_size=1, context="before")
    assert calls == [(4.5, "before"), (2.5, "before One two three")]  # the rest, from the first's stop
    assert out.text == "One two three four five."
    assert spans(out.words) == [
        ("One", 0.2, 0.6),
        ("two", 0.8, 1.2),
        ("three", 1.5, 2.0),
        ("four", 2.4, 2.9),
        ("five.", 3.2, 3.9),
    ]
    assert [w.confidence for w in out.words] == [0.9, 1.0, 1.0, 1.0, 0.7]
    assert scripted(answers, STTConfig(max_piece_s=20.0))[0].decode(audio, beam_size=1) == out.text


def test_long_audio_cut_into_pieces_has_each_pieces_words_shifted_by_where_it_begins() -> None:
    audio = np.concatenate([tone(3.0), silence(0.5), tone(3.0)])
    dec, calls = scripted([("a b", None, [W("a", 0.1, 0.5), W("b", 0.6, 1.0)])], STTConfig(max_piece_s=5.0))
    (_, cut), _ = split_quiet(audio, RATE, 5.0)
    at = cut / RATE
    assert 3.0 <= at <= 3.5
    out = dec.decode_timed(audio, beam_size=1)
    assert out.text == "a b a b" and len(calls) == 2
    assert [w.start for w in out.words] == pytest.approx([0.1, 0.6, at + 0.1, at + 0.6])


def test_a_looped_or_unaligned_decode_leaves_the_whole_transcript_untimed() -> None:
    audio = np.concatenate([tone(3.0), silence(0.5), tone(3.0)])
    dec, _ = scripted(
        [("a b", None, [W("a", 0.1, 0.5), W("b", 0.6, 1.0)]), ("c d", None, [])], STTConfig(max_piece_s=5.0)
    )
    assert dec.decode_timed(audio, beam_size=1) == Decoding("a b c d")
