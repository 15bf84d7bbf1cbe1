"""Cutting long audio into pieces a recogniser decodes whole, at the quietest moments.

A recogniser that sees one window at a time (Whisper's 30 s, Moonshine's few tens of seconds)
loses words when a long turn is cut at an arbitrary sample or handed over in one piece that is
too long. These helpers choose cut points between words: the middle of the quietest stretch
(`QUIET_S`, smoothed frame energy) in the second half of each stretch of at most `max_s`.
"""

from __future__ import annotations

import numpy as np

from voxloop.providers.base import Samples

FRAME_S = 0.02  # energy resolution
QUIET_S = 0.2  # the quiet stretch a cut looks for (a pause between words or sentences)


def frame_energy(audio: Samples, rate: int) -> np.ndarray:
    """Mean square per `FRAME_S` frame (the last, partial frame included)."""
    n = max(1, int(FRAME_S * rate))
    frames = -(-len(audio) // n)
    padded = np.zeros(frames * n, np.float32)
    padded[: len(audio)] = audio
    return np.asarray((padded.reshape(frames, n) ** 2).mean(axis=1))


def quietest_point(audio: Samples, rate: int, lo: int, hi: int) -> int:
    """The sample in [lo, hi) at the middle of the quietest `QUIET_S` stretch of `audio`."""
    n = max(1, int(FRAME_S * rate))
    lo, hi = max(0, lo), min(len(audio), hi)
    if hi - lo <= n:
        return (lo + hi) // 2
    energy = frame_energy(audio[lo:hi], rate)
    width = max(1, min(len(energy), int(QUIET_S / FRAME_S)))
    smooth = np.convolve(energy, np.ones(width) / width, mode="valid")
    best = int(np.argmin(smooth))
    return min(hi, lo + (best + width // 2) * n + n // 2)


def split_quiet(audio: Samples, rate: int, max_s: float) -> list[tuple[int, int]]:
    """Sample ranges that cover all of `audio` in order, each at most `max_s` long, cut at the
    quietest stretch of the second half of each `max_s` span."""
    limit = max(int(max_s * rate), 2 * int(QUIET_S * rate))
    pieces: list[tuple[int, int]] = []
    start = 0
    while len(audio) - start > limit:
        cut = quietest_point(audio, rate, start + limit // 2, start + limit)
        pieces.append((start, cut))
        start = cut
    pieces.append((start, len(audio)))
    return pieces


def speech_after(audio: Samples, rate: int, sample: int, floor_ratio: float = 0.1) -> float:
    """Seconds of sound after `sample` loud enough to be speech: frames whose energy reaches
    `floor_ratio` of the clip's loud frames (its 90th percentile). Tells whether a decode that
    stopped at `sample` left words behind."""
    return speech_between(audio, rate, sample / rate, len(audio) / rate, floor_ratio)


def speech_between(
    audio: Samples, rate: int, start_s: float, end_s: float, floor_ratio: float = 0.1
) -> float:
    """Seconds of speech-loud sound (as in `speech_after`) between `start_s` and `end_s`."""
    energy = frame_energy(audio, rate)
    if not len(energy):
        return 0.0
    loud = float(np.percentile(energy, 90))
    if loud <= 1e-8:
        return 0.0
    first, last = int(start_s / FRAME_S), int(np.ceil(end_s / FRAME_S))
    return float((energy[first:last] >= floor_ratio * loud).sum()) * FRAME_S
