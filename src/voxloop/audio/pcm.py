"""PCM samples as numpy arrays. Inside voxloop audio is mono float32 in [-1, 1]."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from voxloop.errors import AudioFormatError

Samples = NDArray[np.float32]


def to_float32(pcm: NDArray[np.generic] | bytes) -> Samples:
    """16-bit PCM (array or little-endian bytes) or float audio -> float32 in [-1, 1]."""
    if isinstance(pcm, bytes | bytearray | memoryview):
        if len(pcm) % 2:
            raise AudioFormatError(
                f"16-bit PCM needs an even number of bytes, got {len(pcm)}",
                "send whole 16-bit little-endian samples",
            )
        pcm = np.frombuffer(pcm, dtype="<i2")
    arr = np.asarray(pcm)
    if arr.dtype == np.int16:
        return (arr.astype(np.float32) / 32768.0).astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32, copy=False)
    raise AudioFormatError(f"unsupported sample type {arr.dtype}", "use int16 or float32 samples")


def to_int16(x: Samples) -> NDArray[np.int16]:
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)


def resample(x: Samples, src_rate: int, dst_rate: int) -> Samples:
    """Band-limited resampling of a whole buffer (libsoxr, high quality)."""
    if src_rate <= 0 or dst_rate <= 0:
        raise AudioFormatError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
    if src_rate == dst_rate or len(x) == 0:
        return x.astype(np.float32, copy=False)
    import soxr

    return np.asarray(soxr.resample(x.astype(np.float32), src_rate, dst_rate, quality="HQ"), np.float32)


class StreamResampler:
    """Resamples a stream block by block with the filter state carried across blocks, so the
    result does not depend on how the audio was cut (no drift, no seams)."""

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        import soxr

        self.src_rate, self.dst_rate = src_rate, dst_rate
        self._stream = soxr.ResampleStream(src_rate, dst_rate, 1, dtype="float32", quality="HQ")

    def __call__(self, x: Samples) -> Samples:
        if self.src_rate == self.dst_rate:
            return x.astype(np.float32, copy=False)
        return np.asarray(self._stream.resample_chunk(x.astype(np.float32)), np.float32)


def normalize_loudness(x: Samples, target_dbfs: float = -20.0, peak: float = 0.89) -> Samples:
    """Scale speech to a consistent RMS level (dBFS), never letting the peak pass `peak`.

    The RMS is taken over the louder half of 20 ms blocks so that pauses do not drag it down.
    """
    if len(x) == 0:
        return x
    block = 320
    n = len(x) // block
    if n >= 2:
        rms_blocks = np.sqrt(np.mean(x[: n * block].reshape(n, block) ** 2, axis=1))
        loud = np.sort(rms_blocks)[n // 2 :]
        rms = float(np.sqrt(np.mean(loud**2)))
    else:
        rms = float(np.sqrt(np.mean(x**2)))
    if rms < 1e-6:
        return x
    gain = 10 ** (target_dbfs / 20) / rms
    top = float(np.max(np.abs(x)))
    if top * gain > peak:
        gain = peak / top
    return (x * gain).astype(np.float32)


def rms_dbfs(x: Samples) -> float:
    if len(x) == 0:
        return -120.0
    return float(20 * np.log10(max(float(np.sqrt(np.mean(x**2))), 1e-6)))


class FrameBuffer:
    """Collects samples of any length and hands them back in fixed-size frames."""

    def __init__(self, frame_samples: int) -> None:
        self.frame_samples = frame_samples
        self._buf = np.zeros(0, np.float32)

    def push(self, x: Samples) -> list[Samples]:
        self._buf = np.concatenate([self._buf, x]) if len(self._buf) else x.astype(np.float32)
        n = len(self._buf) // self.frame_samples
        frames = [self._buf[i * self.frame_samples : (i + 1) * self.frame_samples] for i in range(n)]
        self._buf = self._buf[n * self.frame_samples :]
        return frames

    def clear(self) -> None:
        self._buf = np.zeros(0, np.float32)
