"""Plain helpers for the integration tests: word matching that tolerates spelled-out numbers, and
loudness measured over speech only."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from voxloop.audio.pcm import rms_dbfs
from voxloop.bench.corpus import normalize
from voxloop.providers.base import Samples

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty"
)
_NUMBERS = {w: str(i) for i, w in enumerate(_UNITS.split(" "))}
_NUMBERS |= {
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "sixty": "60",
    "seventy": "70",
    "eighty": "80",
    "ninety": "90",
}


def words(text: str) -> list[str]:
    """voxloop's WER normalisation, with curly apostrophes straightened and number words as digits
    ("twelve" and "12" are the same word here)."""
    return [_NUMBERS.get(w, w) for w in normalize(text.replace("\u2019", "'"))]


def missing_words(text: str, expected: Iterable[str]) -> list[str]:
    """The expected words (normalised) that `text` does not hold."""
    have = set(words(text))
    return [w for e in expected for w in words(e) if w not in have]


def has_phrase(text: str, phrase: str) -> bool:
    """`phrase` (normalised) occurs in `text` as consecutive words."""
    hay, needle = words(text), words(phrase)
    return bool(needle) and any(hay[i : i + len(needle)] == needle for i in range(len(hay) - len(needle) + 1))


def speech_dbfs(x: Samples, rate: int, gate_dbfs: float = -45.0) -> float:
    """RMS level (dBFS) over the 20 ms blocks louder than `gate_dbfs`: speech, not the pauses."""
    block = rate // 50
    n = len(x) // block
    if n == 0:
        return rms_dbfs(x)
    blocks = x[: n * block].reshape(n, block)
    level = 20 * np.log10(np.maximum(np.sqrt(np.mean(blocks**2, axis=1)), 1e-9))
    return rms_dbfs(blocks[level > gate_dbfs].ravel())
