"""Short non-speech sounds for `bench turns`, synthesised at 16 kHz (seeded, so runs compare).

cough  one or two bursts of band-limited noise (200-4000 Hz), 5 ms attack, ~120 ms decay,
       peaking near -6 dBFS: as loud as close speech
clicks 3-6 sharp 3 ms transients 60-160 ms apart (a keyboard, a pen)
burst  100-300 ms of broadband noise at about -20 dBFS RMS (a rustle, a door)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from voxloop.providers.base import Samples

RATE = 16000


def _band(noise: np.ndarray, lo: float, hi: float) -> np.ndarray:
    spec = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(len(noise), 1 / RATE)
    spec[(freqs < lo) | (freqs > hi)] = 0
    return np.fft.irfft(spec, len(noise))


def cough(rng: np.random.Generator) -> Samples:
    parts = []
    for _ in range(int(rng.integers(1, 3))):
        n = int(rng.uniform(0.18, 0.3) * RATE)
        t = np.arange(n) / RATE
        env = np.minimum(t / 0.005, 1.0) * np.exp(-t / rng.uniform(0.08, 0.15))
        burst = _band(rng.normal(0, 1, n), 200, 4000) * env
        parts += [burst / np.abs(burst).max() * 0.5, np.zeros(int(rng.uniform(0.05, 0.15) * RATE))]
    return np.concatenate(parts).astype(np.float32)


def clicks(rng: np.random.Generator) -> Samples:
    out = np.zeros(int(0.9 * RATE))
    pos = 0
    for _ in range(int(rng.integers(3, 7))):
        pos += int(rng.uniform(0.06, 0.16) * RATE)
        n = int(0.003 * RATE)
        if pos + n >= len(out):
            break
        out[pos : pos + n] += rng.normal(0, 0.4, n) * np.exp(-np.arange(n) / (0.0008 * RATE))
    return out.astype(np.float32)


def burst(rng: np.random.Generator) -> Samples:
    n = int(rng.uniform(0.1, 0.3) * RATE)
    ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.01 * RATE))
    return (rng.normal(0, 0.1, n) * ramp).astype(np.float32)


NOISES: dict[str, Callable[[np.random.Generator], Samples]] = {
    "cough": cough,
    "clicks": clicks,
    "burst": burst,
}
