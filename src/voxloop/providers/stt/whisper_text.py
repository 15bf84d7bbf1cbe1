"""Guards on the text Whisper decodes: loops, stutters and repeats the audio does not hold, and
joining decodes that follow each other."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

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


def _unheard(first: Sequence[Word], second: Sequence[Word], audio_end: float) -> int | None:
    """Which of two copies of a phrase (0: the first, 1: the second) the audio does not hold:
    the aligner, finding no sound for a copy, squeezes its words into less than half the time the
    other took, or puts most of the second after `audio_end`, in the silence appended before
    decoding. None: both were heard (a phrase really said twice takes about as long both times)."""
    span = first[-1].end - first[0].start
    again = second[-1].end - second[0].start
    after = second[-1].end - max(audio_end, second[0].start)
    if again < 0.5 * span or after > 0.5 * again:
        return 1
    return 0 if span < 0.5 * again else None


def unheard_repeats(words: Sequence[Word], audio_end: float) -> list[Word]:
    """`words` (aligned to their audio) without a copy of a phrase decoded twice in a row that
    the audio does not hold (`_unheard`): Whisper repeats a short utterance or a clause ("10 of
    clubs 10 of clubs", "the gut and the gut and the gut")."""
    out = list(words)
    norm = _norm([w.word for w in out])
    i = 0
    while i < len(out):
        for k in range(min(6, (len(out) - i) // 2), 0, -1):
            first, second = out[i : i + k], out[i + k : i + 2 * k]
            if norm[i : i + k] != norm[i + k : i + 2 * k] or not any(said(w.word) for w in first):
                continue
            which = _unheard(first, second, audio_end)
            if which is not None:
                at = i + which * k
                del out[at : at + k], norm[at : at + k]
                break
        else:
            i += 1
    return out


def loop_start(words: Sequence[Word], audio_end: float) -> int | None:
    """`looped` for a decode whose words are aligned to its audio: where the loop starts (the
    index of the first word to cut), or None. A run of 4+ words that occurs again is a loop only
    when the audio does not hold its second occurrence (`_unheard`): people say the same four
    words twice in half a minute ("a shop boy ... a shop boy"), and cutting there loses what
    follows."""
    said_words = [w.word for w in words]
    stutter = _first_stutter(said_words)
    if stutter is not None:
        return stutter
    unheard = _first_repeat(
        said_words, lambda first, i: _unheard(words[first : first + 4], words[i : i + 4], audio_end) == 1
    )
    if unheard is not None:
        return unheard
    if not _compresses(" ".join(said_words)):
        return None
    cut = _first_repeat(said_words)  # as `trim_loop` cuts it
    return len(said_words) if cut is None else cut


def _norm(words: list[str]) -> list[str]:
    return [w.strip(".,!?;:").lower() for w in words]


def _first_repeat(words: list[str], counts: Callable[[int, int], bool] | None = None) -> int | None:
    """Index where a run of 4 words occurs a second time (not overlapping the first), if any;
    with `counts`, only a repeat at i of the run at `first` for which `counts(first, i)` holds."""
    norm = _norm(words)
    seen: dict[tuple[str, ...], int] = {}
    for i in range(len(norm) - 3):
        gram = tuple(norm[i : i + 4])
        first = seen.get(gram)
        if first is not None and i - first >= 4 and (counts is None or counts(first, i)):
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
    return _compresses(text)


def _compresses(text: str) -> bool:
    """Text that compresses far better than speech does ("5 5 5 5 ...")."""
    raw = text.encode()
    return len(raw) > 24 and len(raw) / len(zlib.compress(raw)) > 2.4


def trim_loop(text: str) -> str:
    """Cut a looped decode before its first repeat (of 4+ words, or of a stuttered phrase)."""
    words = text.split()
    cuts = [c for c in (_first_repeat(words), _first_stutter(words)) if c is not None]
    return text if not cuts else " ".join(words[: min(cuts)])
