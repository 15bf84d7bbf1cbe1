"""The Whisper provider's guards on decoded text (no model needed): loops and stutters."""

from __future__ import annotations

import pytest

from voxloop.providers.stt.whisper_text import looped, trim_loop


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
