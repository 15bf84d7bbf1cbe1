"""PCM helpers: conversions, resampling, loudness, fixed-size framing and WAV files."""

from voxloop.audio.pcm import (
    FrameBuffer,
    normalize_loudness,
    resample,
    to_float32,
    to_int16,
)
from voxloop.audio.wav import read_wav, write_wav

__all__ = [
    "FrameBuffer",
    "normalize_loudness",
    "read_wav",
    "resample",
    "to_float32",
    "to_int16",
    "write_wav",
]
