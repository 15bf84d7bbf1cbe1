"""How the decodes of one turn join (providers/stt/decoding.py)."""

from __future__ import annotations

from voxloop.providers.base import Word
from voxloop.providers.stt.decoding import Decoding, kept_spelling


def _decoding(text: str, start: float = 0.0) -> Decoding:
    words = tuple(Word(w, start + i, start + i + 0.5, 0.9) for i, w in enumerate(text.split()))
    return Decoding(text, words)


def test_a_second_hearing_keeps_the_first_ones_spelling_where_the_words_are_the_same() -> None:
    old = _decoding("God, as a direct consequence of the sin which man thus punished had given")
    new = _decoding("God as a direct consequence of the sin which man thus punished, had given her", 0.1)
    kept = kept_spelling(old, new)
    # the same words as `new` (its "her" and its times where it differs), `old`'s spelling elsewhere
    assert kept.text == old.text + " her"  # the language model read `old`: it reads only "her" anew
    assert [w.start for w in kept.words][:2] == [0.0, 1.0] and kept.words[-1].start == 14.1


def test_where_the_words_differ_the_second_hearing_stands() -> None:
    old = _decoding("Yet these thoughts affected has to print less with hope")
    new = _decoding("Yet these thoughts affected Hester Prynne less with hope")
    assert kept_spelling(old, new).text == new.text
    assert kept_spelling(Decoding("no times"), new) == new  # nothing to align: the new hearing
