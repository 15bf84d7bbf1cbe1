"""WAV files in and out, with clear errors for what cannot be read."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voxloop.audio.pcm import Samples, resample
from voxloop.errors import AudioFormatError


def read_wav(path: str | Path, rate: int | None = None) -> tuple[Samples, int]:
    """Read an audio file as mono float32; resample to `rate` when given. Returns (samples, rate)."""
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise AudioFormatError(f"no audio file at {p}", "check the path")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise AudioFormatError(f"cannot read {p} as audio: {e}", "use a WAV, FLAC or OGG file") from e
    x = data.mean(axis=1).astype(np.float32)
    if rate is not None and sr != rate:
        x, sr = resample(x, sr, rate), rate
    return x, int(sr)


def write_wav(path: str | Path, x: Samples, rate: int) -> Path:
    """Write 16-bit PCM; `x` is (n,) for mono or (n, channels)."""
    import soundfile as sf

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(p), np.clip(x, -1.0, 1.0), rate, subtype="PCM_16")
    return p
