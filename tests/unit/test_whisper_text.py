"""The Whisper provider's guards on decoded text (no model needed): loops, stutters, and repeats the
audio does not hold."""

from __future__ import annotations

import pytest

from voxloop.providers.base import Word
from voxloop.providers.stt.whisper_text import loop_start, looped, trim_loop, unheard_repeats


@pytest.mark.parametrize(
    ("text", "loops", "trimmed"),
    [
        ("ten of clubs, ten of clubs, ten of clubs", True, "ten of clubs,"),
        ("if you understand it Ladies and Ladies and Ladies and", True, "if you understand it Ladies and"),
        ("5, 5, 5, 5,", True, "5,"),
        ("a b c d e f a b c d", True, "a b c d e f"),
        ("Hold on. Hold fast. Hold out.", False, None),
        ("five five", False, None),
        ("no, no, no!", False, None),  # three times one word: people say that
        ("Ask not what your country can do for you, ask what you can do for your country.", False, None),
    ],
)
def test_loops_and_stutters(text: str, loops: bool, trimmed: str | None) -> None:
    assert looped(text) is loops
    if loops:
        assert trim_loop(text) == trimmed


def _aligned(*words: tuple[str, float, float]) -> list[Word]:
    return [Word(w, start, end, 0.9) for w, start, end in words]


def _said(words: list[Word]) -> str:
    return " ".join(w.word for w in words)


def test_a_repeat_squeezed_into_no_time_is_dropped() -> None:
    # "The gut and the gullet" decoded with the phrase twice: the aligner finds ~0.3 s for a copy
    # whose first hearing took 1.1 s
    words = _aligned(
        ("The", 0.0, 0.78), ("gut", 0.78, 0.92), ("and", 0.92, 1.12),
        ("the", 1.12, 1.3), ("gut", 1.3, 1.42), ("and", 1.42, 1.42),
        ("the", 1.42, 1.42), ("gut", 1.42, 1.44), ("being", 1.44, 1.8), ("cut", 1.8, 2.12),
    )  # fmt: skip
    assert _said(unheard_repeats(words, audio_end=8.3)) == "The gut and the gut being cut"


def test_a_repeat_after_the_audio_ends_is_dropped() -> None:
    # a 1.1 s command decoded twice: the second copy lies mostly in the silence appended after it
    words = _aligned(
        ("10", 0.0, 0.4), ("of", 0.4, 0.62), ("clubs", 0.62, 0.9),
        ("10", 0.9, 1.48), ("of", 1.48, 1.48), ("clubs", 1.48, 1.48),
    )  # fmt: skip
    assert _said(unheard_repeats(words, audio_end=1.1)) == "10 of clubs"


def test_a_first_copy_without_sound_is_the_one_dropped() -> None:
    words = _aligned(("no", 0.0, 0.02), ("way,", 0.02, 0.04), ("no", 0.1, 0.5), ("way.", 0.5, 0.9))
    assert _said(unheard_repeats(words, audio_end=1.2)) == "no way."


@pytest.mark.parametrize(
    "words",
    [
        # said twice, each copy with its own time: "Thou also, thou also."
        [("Thou", 0.0, 0.3), ("also,", 0.3, 0.8), ("thou", 1.0, 1.3), ("also.", 1.3, 1.7)],
        # one word said twice, both heard
        [("very", 0.0, 0.3), ("very", 0.3, 0.55), ("good", 0.55, 0.9)],
        # no repeat at all, some words squeezed (the aligner does that to short words)
        [("the", 4.3, 4.3), ("stomach", 4.3, 4.54), ("may", 4.54, 4.84)],
    ],
)
def test_words_the_audio_holds_stay(words: list[tuple[str, float, float]]) -> None:
    aligned = _aligned(*words)
    assert unheard_repeats(aligned, audio_end=2.0) == aligned


def _timed_words(text: str, seconds_each: float, start: float = 0.0) -> list[tuple[str, float, float]]:
    return [(w, start + i * seconds_each, start + (i + 1) * seconds_each) for i, w in enumerate(text.split())]


def test_four_words_said_twice_in_a_long_turn_are_not_a_loop() -> None:
    # "a shop boy" twice, half a minute apart, each time with its own sound: the text rule alone
    # calls that a loop and would cut the turn there
    text = (
        "made his confession of having been a shop boy. His statement of having been a shop boy was the thing"
    )
    words = _aligned(*_timed_words(text, 0.3))
    assert looped(text)
    assert loop_start(words, audio_end=10.0) is None


def test_a_loop_the_audio_does_not_hold_is_cut_where_it_starts() -> None:
    # the decoder starts over after 3 s of speech: the copy gets no time of its own
    heard = _timed_words("he asked himself what was there to do", 0.4)
    again = [(w, 3.2, 3.2) for w in "he asked himself what was".split()]
    words = _aligned(*heard, *again)
    assert loop_start(words, audio_end=3.3) == len(heard)


def test_a_stutter_is_a_loop_whatever_its_times() -> None:
    words = _aligned(*_timed_words("ladies and ladies and ladies and", 0.3))
    assert loop_start(words, audio_end=3.0) == 2
