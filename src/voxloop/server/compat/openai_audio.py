"""Audio files in and out for the OpenAI-compatible endpoints.

In: an uploaded recording (WAV, FLAC, OGG, MP3 through libsndfile; M4A, WebM, MP4 and the rest
through PyAV, part of the `server` extra; without it, a clear error) -> mono float32 at 16 kHz.
Out: speech as it is synthesized, encoded chunk by chunk: `pcm` (16-bit little-endian, 24 kHz, mono,
as OpenAI sends it), `wav` (the same with a header whose sizes say "unknown", since the length is
not known when it is sent), and `mp3`, `opus` (Ogg), `aac` (ADTS), `flac` through PyAV's encoders.
Blocking work here runs in worker threads (the callers' concern), never on the event loop.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import numpy as np

from voxloop.audio.pcm import StreamResampler, resample, to_int16
from voxloop.providers.base import Samples

OUT_RATE = 24000  # OpenAI's speech is 24 kHz
MEDIA_TYPES = {
    "pcm": "audio/pcm",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
}
# format -> (PyAV container, codec, codec sample rate)
_AV_FORMATS = {
    "mp3": ("mp3", "libmp3lame", OUT_RATE),
    "opus": ("ogg", "libopus", 48000),
    "aac": ("adts", "aac", OUT_RATE),
    "flac": ("flac", "flac", OUT_RATE),
}


class AudioDecodeError(ValueError):
    pass


# -- in --------------------------------------------------------------------------------------------
def decode_upload(data: bytes, rate: int = 16000) -> Samples:
    """An uploaded recording as mono float32 at `rate`. Blocking: call it in a thread."""
    import soundfile as sf

    try:
        x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        mono = x.mean(axis=1).astype(np.float32)
    except (RuntimeError, sf.LibsndfileError, TypeError):
        mono, sr = _decode_av(data)
    return resample(mono, int(sr), rate) if sr != rate else mono


def _decode_av(data: bytes) -> tuple[Samples, int]:
    try:
        import av
    except ImportError:
        raise AudioDecodeError(
            "the audio file could not be decoded (WAV, FLAC, OGG and MP3 can be; install PyAV for more)"
        ) from None
    try:
        opened: Any = av.open(io.BytesIO(data))
        with opened as container:
            if not container.streams.audio:
                raise AudioDecodeError("the file has no audio stream")
            rate = container.streams.audio[0].rate or 16000
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            parts = [
                out.to_ndarray().reshape(-1)
                for frame in container.decode(audio=0)
                for out in resampler.resample(frame)
            ]
            parts += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except (av.error.FFmpegError, ValueError, IndexError) as e:
        if isinstance(e, AudioDecodeError):
            raise
        raise AudioDecodeError(f"the audio file could not be decoded: {e}") from None
    audio = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    return audio, int(rate)


# -- out -------------------------------------------------------------------------------------------
def encoder_available(fmt: str) -> bool:
    if fmt in ("pcm", "wav"):
        return True
    if fmt not in _AV_FORMATS:
        return False
    try:
        import av
    except ImportError:
        return False
    return _AV_FORMATS[fmt][1] in av.codecs_available


class SpeechEncoder:
    """Float32 chunks at the voice's rate in, bytes of `fmt` out, chunk by chunk."""

    def __init__(self, fmt: str, voice_rate: int) -> None:
        self.fmt = fmt
        self._resample = StreamResampler(voice_rate, OUT_RATE)
        self._started = False
        self._av: _AVEncoder | None = _AVEncoder(fmt) if fmt in _AV_FORMATS else None

    def push(self, audio: Samples) -> bytes:
        pcm = to_int16(self._resample(audio))
        if self._av is not None:
            return self._av.push(pcm)
        head = b""
        if self.fmt == "wav" and not self._started:
            head = wav_header(OUT_RATE)
        self._started = True
        return head + pcm.astype("<i2").tobytes()

    def finish(self) -> bytes:
        if self._av is not None:
            return self._av.finish()
        return b"" if self._started or self.fmt != "wav" else wav_header(OUT_RATE)


def wav_header(rate: int) -> bytes:
    """A 16-bit mono WAV header for a stream of unknown length (sizes 0xFFFFFFFF)."""
    unknown = 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", unknown)
    )


class _Sink:
    """Where PyAV writes the encoded stream; not seekable, so nothing is rewritten afterwards."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


class _AVEncoder:
    def __init__(self, fmt: str) -> None:
        import av

        container, codec, rate = _AV_FORMATS[fmt]
        self._av = av
        self._sink = _Sink()
        self._out: Any = av.open(self._sink, mode="w", format=container)
        stream: Any = self._out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        self._stream = stream

    def push(self, pcm: np.ndarray) -> bytes:
        if len(pcm):
            frame = self._av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = OUT_RATE
            for packet in self._stream.encode(frame):
                self._out.mux(packet)
        return self._sink.take()

    def finish(self) -> bytes:
        for packet in self._stream.encode(None):
            self._out.mux(packet)
        self._out.close()
        return self._sink.take()
