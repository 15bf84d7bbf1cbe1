"""Any audio file as mono float32 at a chosen rate: libsndfile first (WAV, FLAC, OGG, MP3), then
PyAV (FFmpeg: M4A, AAC, Opus, WebM, AMR, ...). Blocking: call it in a worker thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from voxloop.audio.pcm import Samples, resample
from voxloop.errors import AudioFormatError


def read_audio(path: str | Path, rate: int = 16000) -> Samples:
    """The file's audio, mixed to mono and resampled to `rate` (AudioFormatError if it cannot be
    decoded, with what to do next)."""
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise AudioFormatError(f"no audio file at {p}", "check the path")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
        mono = data.mean(axis=1).astype(np.float32)
    except (RuntimeError, sf.LibsndfileError, TypeError):
        mono, sr = _decode_av(p)
    return resample(mono, int(sr), rate) if sr != rate else mono


def _decode_av(p: Path) -> tuple[Samples, int]:
    hint = "check the file plays; re-encode it as WAV or FLAC (ffmpeg -i IN -ar 16000 -ac 1 OUT.wav)"
    try:
        import av
    except ImportError:
        raise AudioFormatError(
            f"cannot decode {p}: libsndfile cannot read it and PyAV is not installed",
            "pip install av (FFmpeg's decoders), or convert it to WAV",
        ) from None
    try:
        opened: Any = av.open(str(p))
        with opened as container:
            if not container.streams.audio:
                raise AudioFormatError(f"cannot decode {p}: it has no audio stream", hint)
            rate = int(container.streams.audio[0].rate or 16000)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            parts = [
                out.to_ndarray().reshape(-1)
                for frame in container.decode(audio=0)
                for out in resampler.resample(frame)
            ]
            parts += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except (av.error.FFmpegError, ValueError, IndexError, OSError) as e:
        raise AudioFormatError(f"cannot decode {p}: {e}", hint) from None
    if not parts:
        raise AudioFormatError(f"cannot decode {p}: no audio in it", hint)
    return np.concatenate(parts).astype(np.float32), rate


def duration_s(path: str | Path) -> float:
    """The file's length in seconds from its header, without decoding it (0.0 when the header does
    not tell: decoding will say what is wrong)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
        return float(info.frames) / float(info.samplerate)
    except (RuntimeError, sf.LibsndfileError, TypeError):
        pass
    try:
        import av

        opened: Any = av.open(str(path))
        with opened as container:
            return float(container.duration or 0) / 1_000_000  # AV_TIME_BASE
    except Exception:  # noqa: BLE001 - any failure here means "unknown"; decoding reports it
        return 0.0
