"""What a final decode of the streaming recogniser gives: its text and, when the decoder aligns
them to the audio (Whisper), its words with times; and how the decodes of one turn join.

Word times are seconds from the start of the audio decoded. A decode of part of that audio (a
piece of the turn, a continuation) shifts its words by where the part begins (`shift`), so a
turn's words are on the clock of the turn's audio as it was pushed into the stream. A transcript
has every word's time or none: when a decode with words said has no times (a looped decode, a
decoder that does not align), the joined words are empty and a consumer estimates them instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from difflib import SequenceMatcher

from voxloop.providers.base import Word


@dataclass(frozen=True)
class Decoding:
    text: str
    words: tuple[Word, ...] = ()  # with times, when the decoder aligns them (else empty)


def join_texts(texts: list[str]) -> str:
    return " ".join(t.strip() for t in texts if t and t.strip())


def said(text: str) -> bool:
    """Whether `text` holds a word (a letter or a digit), not only punctuation."""
    return any(ch.isalnum() for ch in text)


def whole_words(tokens: Sequence[Word]) -> list[Word]:
    """The aligner's words (Whisper's: " Hello", ",", " world", ".") as a transcript's words
    ("Hello,", "world."): a token with no letter or digit, or that starts without a space, joins
    the word before it. Punctuation keeps that word's times and confidence (its own times are
    unreliable); a piece of the word itself ends it and lowers its confidence to its own.
    Punctuation before the first word joins the word after it."""
    out: list[Word] = []
    lead = ""
    for t in tokens:
        text = t.word.strip()
        if not text:
            continue
        joins = not said(text) or not t.word[:1].isspace()
        if out and joins:
            w = out[-1]
            if said(text):
                w = replace(w, end=max(w.end, t.end), confidence=min(w.confidence, t.confidence))
            out[-1] = replace(w, word=w.word + text)
        elif not said(text):
            lead += text
        else:
            out.append(replace(t, word=lead + text))
            lead = ""
    return out


def shift(words: Sequence[Word], seconds: float) -> tuple[Word, ...]:
    """`words` of audio that begins `seconds` later on the clock they are wanted on."""
    return tuple(replace(w, start=w.start + seconds, end=w.end + seconds) for w in words)


def timed(parts: Sequence[Decoding]) -> bool:
    """Every part that said a word has its words' times."""
    return all(p.words or not said(p.text) for p in parts)


def joined(parts: Sequence[Decoding]) -> Decoding:
    """Decodes of audio that follow each other (their words on one clock): the texts joined, the
    words in order (none unless every part has its own)."""
    words = tuple(w for p in parts for w in p.words) if timed(parts) else ()
    return Decoding(join_texts([p.text for p in parts]), words)


def _key(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())


def kept_spelling(old: Decoding, new: Decoding) -> Decoding:
    """`new`, a second hearing of the audio `old` was decoded from, with `old`'s words wherever the
    two hear the same words (only case or punctuation differ): so the text changes only where the
    words do, and a reader of `old` (the language model, fed the partials) reads again only from
    there. `new` as it is when either has no word times."""
    if not old.words or not new.words:
        return new
    a, b = [_key(w.word) for w in old.words], [_key(w.word) for w in new.words]
    out: list[Word] = []
    for tag, i, j, k, m in SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        out += old.words[i:j] if tag == "equal" else new.words[k:m]
    return Decoding(" ".join(w.word for w in out), tuple(out))
