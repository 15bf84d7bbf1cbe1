"""Whisper's log-mel spectrogram, as Smart Turn v3 reads it: written here from the definition.

16 kHz audio, the last 8 s (128,000 samples; shorter audio gets zeros in front), the waveform
scaled to zero mean and unit variance, a periodic Hann window of 400 samples every 160 (the frames
centred: 200 reflected samples each side), the power spectrum's 201 bins through 80 triangular
mel filters on the Slaney scale (area-normalised, 0-8 kHz), log10 (floored at 1e-10), clamped to
8 below the maximum, then (x + 4) / 4. The last of the 801 frames is dropped: [80, 800].
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

RATE = 16_000
WINDOW_S = 8
N_FFT = 400
HOP = 160
N_MELS = 80
FRAMES = WINDOW_S * RATE // HOP  # 800

_F_SP = 200.0 / 3  # Slaney: linear below 1 kHz, 200/3 Hz a mel
_LOG_START_HZ = 1000.0
_LOG_START_MEL = _LOG_START_HZ / _F_SP  # 15
_LOG_STEP = np.log(6.4) / 27.0  # logarithmic above 1 kHz


def hz_to_mel(hz: npt.ArrayLike) -> npt.NDArray[np.float64]:
    f = np.asarray(hz, dtype=np.float64)
    above = _LOG_START_MEL + np.log(np.maximum(f, _LOG_START_HZ) / _LOG_START_HZ) / _LOG_STEP
    return np.where(f >= _LOG_START_HZ, above, f / _F_SP)


def mel_to_hz(mel: npt.ArrayLike) -> npt.NDArray[np.float64]:
    m = np.asarray(mel, dtype=np.float64)
    above = _LOG_START_HZ * np.exp(_LOG_STEP * (m - _LOG_START_MEL))
    return np.where(m >= _LOG_START_MEL, above, m * _F_SP)


@cache
def mel_filters() -> npt.NDArray[np.float64]:
    """[80, 201]: each mel band a triangle over the FFT bins' frequencies, its area normalised."""
    bins_hz = np.linspace(0.0, RATE / 2, N_FFT // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(RATE / 2), N_MELS + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins_hz[None, :] - lo) / (mid - lo)
    falling = (hi - bins_hz[None, :]) / (hi - mid)
    tri = np.maximum(0.0, np.minimum(rising, falling))
    return tri * (2.0 / (hi - lo))


@cache
def _hann() -> npt.NDArray[np.float64]:
    n = np.arange(N_FFT)
    return 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)  # periodic: N in the denominator, not N - 1


def last_window(audio: npt.NDArray[np.floating], seconds: int = WINDOW_S) -> npt.NDArray[np.float32]:
    """The last `seconds` of 16 kHz audio, zeros in front when it is shorter."""
    n = seconds * RATE
    x = np.asarray(audio, dtype=np.float32)[-n:]
    return np.concatenate([np.zeros(n - len(x), np.float32), x])


def log_mel(audio: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """[80, 800] features of the last 8 s of `audio` (mono, 16 kHz)."""
    x = last_window(audio)
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    starts = np.arange(FRAMES) * HOP  # the 801st frame (the one past the end) is never used
    frames = padded[starts[:, None] + np.arange(N_FFT)[None, :]] * _hann()
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # [800, 201]
    mel = np.log10(np.maximum(mel_filters() @ power.T, 1e-10))
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).astype(np.float32)
