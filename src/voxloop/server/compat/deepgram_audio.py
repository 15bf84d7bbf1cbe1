"""Audio as Deepgram's APIs carry it: raw `linear16` (16-bit little-endian), `mulaw` or `alaw`
at a stated sample rate, or a file whose header says what it holds (decoded as the OpenAI
endpoints decode an upload: libsndfile, then PyAV)."""

from __future__ import annotations

import io

import numpy as np

from voxloop.audio.g711 import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode
from voxloop.audio.pcm import Samples, to_float32, to_int16
from voxloop.server.compat.deepgram_errors import DeepgramError
from voxloop.server.compat.openai_audio import AudioDecodeError, decode_upload

FILE_MAGIC = (b"RIFF", b"fLaC", b"OggS")  # a file says what it holds, whatever the query says
FILE_RATE = 16000  # files are decoded to the recogniser's rate


class RawDecoder:
    """Raw audio in messages of any length: a 16-bit sample split across two messages is
    joined, not lost."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._carry = b""

    def __call__(self, data: bytes) -> Samples:
        if self.encoding == "mulaw":
            return mulaw_decode(data)
        if self.encoding == "alaw":
            return alaw_decode(data)
        data = self._carry + data
        whole = len(data) - len(data) % 2
        self._carry = data[whole:]
        return to_float32(data[:whole]) if whole else np.zeros(0, np.float32)


def decode_body(body: bytes, encoding: str | None, rate: int | None) -> tuple[Samples, int]:
    """A prerecorded request's audio as mono float32 and its rate: a file read by its header
    (WAV, FLAC, OGG, MP3, and through PyAV M4A, WebM, Opus...; channels mixed down), else raw
    audio in the `encoding` and `rate` given. Blocking: call it in a worker thread."""
    if not body:
        raise DeepgramError(400, "Bad Request: the request body holds no audio")
    raw = encoding in ("linear16", "mulaw", "alaw")
    if raw and encoding is not None and rate is not None and not body.startswith(FILE_MAGIC):
        return RawDecoder(encoding)(body), rate
    try:
        return decode_upload(body, FILE_RATE), FILE_RATE
    except AudioDecodeError:
        raise DeepgramError(
            400,
            "Bad Request: failed to process audio: corrupt or unsupported data (send an audio file, "
            "or raw audio with encoding and sample_rate)",
        ) from None


def encode(x: Samples, encoding: str) -> bytes:
    if encoding == "mulaw":
        return mulaw_encode(x)
    if encoding == "alaw":
        return alaw_encode(x)
    return to_int16(x).astype("<i2").tobytes()


def wav_file(x: Samples, rate: int, encoding: str) -> bytes:
    """A WAV file of `x` in `encoding` (16-bit PCM, or G.711 mu-law / A-law)."""
    import soundfile as sf

    subtype = {"linear16": "PCM_16", "mulaw": "ULAW", "alaw": "ALAW"}[encoding]
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1.0, 1.0), rate, subtype=subtype, format="WAV")
    return buf.getvalue()
