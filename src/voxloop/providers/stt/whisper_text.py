"""Guards on the text Whisper decodes: loops and stutters, and joining decodes that follow each other."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from voxloop.providers.base import Word
from voxloop.providers.stt.decoding import Decoding, said, timed


def repeated(before: list[str], after: list[str]) -> int:
    """How many words at the start of `after` repeat the last words of `before` (at most 4)."""
    tail = _norm(before[-4:])
    for k in range(min(4, len(after), len(tail)), 0, -1):
        if tail[-k:] == _norm(after[:k]):
            return k
    return 0


def stitch(texts: list[str]) -> str:
    """Join the texts of decodes that follow each other, dropping words a continuation repeats
    from the end of the text before it (it started at a timestamp inside the last word or two)."""
    out: list[str] = []
    for text in texts:
        words = text.split()
        out += words[repeated(out, words) :]
    return " ".join(out)


def stitched(parts: Sequence[Decoding]) -> Decoding:
    """`stitch` with the words (on one clock): a word the text drops is dropped from the words."""
    text = stitch([p.text for p in parts])
    if not timed(parts):
        return Decoding(text)
    out: list[Word] = []
    for p in parts:
        out += p.words[repeated([w.word for w in out], [w.word for w in p.words]) :]
    return Decoding(text, tuple(out))


def unheard_repeats(words: Sequence[Word], audio_end: float) -> list[Word]:
    """`words` (aligned to their audio) without the second copy of a phrase said twice in a row
    that the audio does not hold: Whisper repeats a short utterance or a clause ("10 of clubs 10
    of clubs") and the aligner, finding no sound for the copy, squeezes its words into less than
    half the time the other copy took, or puts most of the second after `audio_end`, in the
    silence appended before decoding. A phrase really said twice takes about as long both times
    and stays."""
    out = list(words)
    norm = _norm([w.word for w in out])
    i = 0
    while i < len(out):
        for k in range(min(6, (len(out) - i) // 2), 0, -1):
            first, second = out[i : i + k], out[i + k : i + 2 * k]
            if norm[i : i + k] != norm[i + k : i + 2 * k] or not any(said(w.word) for w in first):
                continue
            span = first[-1].end - first[0].start
            again = second[-1].end - second[0].start
            after = second[-1].end - max(audio_end, second[0].start)
            if again < 0.5 * span or after > 0.5 * again:
                del out[i + k : i + 2 * k], norm[i + k : i + 2 * k]
                break
            if span < 0.5 * again:  # the first copy is the one without sound
                del out[i : i + k], norm[i : i + k]
                break
        else:
            i += 1
    return out


def _norm(words: list[str]) -> list[str]:
    return [w.strip(".,!?;:").lower() for w in words]


def _first_repeat(words: list[str]) -> int | None:
    """Index where a run of 4 words occurs a second time (not overlapping the first), if any."""
    norm = _norm(words)
    seen: dict[tuple[str, ...], int] = {}
    for i in range(len(norm) - 3):
        gram = tuple(norm[i : i + 4])
        if gram in seen and i - seen[gram] >= 4:
            return i
        seen.setdefault(gram, i)
    return None


def _first_stutter(words: list[str]) -> int | None:
    """Index of the second occurrence of a phrase of 2-3 words said three times in a row ("ladies
    and ladies and ladies and"), or of one word said four times ("5, 5, 5, 5"), if any."""
    norm = _norm(words)
    for i in range(len(norm)):
        for k, times in ((1, 4), (2, 3), (3, 3)):
            gram = norm[i : i + k]
            if len(gram) == k and all(norm[i + j * k : i + (j + 1) * k] == gram for j in range(times)):
                return i + k
    return None


def looped(text: str) -> bool:
    """A decode that starts over: a run of 4+ words that occurs twice, a short phrase repeated
    over and over, or text that compresses far better than speech does ("5 5 5 5 ...")."""
    words = text.split()
    if _first_repeat(words) is not None or _first_stutter(words) is not None:
        return True
    raw = text.encode()
    return len(raw) > 24 and len(raw) / len(zlib.compress(raw)) > 2.4


def trim_loop(text: str) -> str:
    """Cut a looped decode before its first repeat (of 4+ words, or of a stuttered phrase)."""
    words = text.split()
    cuts = [c for c in (_first_repeat(words), _first_stutter(words)) if c is not None]
    return text if not cuts else " ".join(words[: min(cuts)])
