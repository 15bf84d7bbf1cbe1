"""Audio on the socket in either codec the protocol offers (`start`'s `codec`, or `input_codec` /
`output_codec` for one direction): 16-bit PCM, or raw 20 ms Opus packets (`audio/opus.py`).

In: one binary frame -> float32 samples at `rate` for the session, and its length in seconds for
the rate limiter (read from an Opus packet's TOC byte without decoding). Out: the voice's samples
-> binary frames and how many samples each carries (an Opus packet always 20 ms; `flush` pads the
last few milliseconds of an utterance into one, `drop` forgets them on a stop).
"""

from __future__ import annotations

from typing import Protocol

from voxloop.audio import opus
from voxloop.audio.pcm import Samples, to_float32, to_int16
from voxloop.errors import AudioFormatError

PCM16, OPUS = "pcm16", "opus"
CODECS = (PCM16, OPUS)
VOICE_BITRATE = 24000  # the agent's voice in Opus (VBR around it); the microphone's is the client's


class MicDecoder(Protocol):
    rate: int  # of the samples `decode` returns

    def seconds(self, data: bytes) -> float:
        """The audio time this frame claims (what the rate limiter counts; never raises)."""
        ...

    def decode(self, data: bytes) -> Samples:
        """The frame's samples at `rate` (AudioFormatError, with what to send instead)."""
        ...


class Pcm16In:
    def __init__(self, rate: int) -> None:
        self.rate = rate

    def seconds(self, data: bytes) -> float:
        return len(data) / 2 / self.rate

    def decode(self, data: bytes) -> Samples:
        if not data or len(data) % 2:
            raise AudioFormatError(f"an audio frame must hold whole 16-bit samples, got {len(data)} bytes")
        return to_float32(data)


class OpusIn:
    """One Opus packet per binary frame, decoded at 48 kHz (the session resamples as for PCM)."""

    rate = opus.DECODE_RATE

    def __init__(self) -> None:
        self._decoder = opus.OpusDecoder()

    def seconds(self, data: bytes) -> float:
        try:
            return opus.packet_duration_s(data)
        except AudioFormatError:
            return opus.FRAME_MS / 1000  # a malformed packet costs a packet's worth

    def decode(self, data: bytes) -> Samples:
        try:
            return self._decoder.decode(data)
        except AudioFormatError as e:
            raise AudioFormatError(
                f"{e.message}; send one whole Opus packet (20 ms) per binary frame, as the encoder wrote it"
            ) from None


def mic_decoder(codec: str, rate: int) -> MicDecoder:
    return OpusIn() if codec == OPUS else Pcm16In(rate)


class VoiceEncoder(Protocol):
    def encode(self, audio: Samples) -> list[tuple[bytes, int]]:
        """Binary frames for `audio`, each with the number of samples it carries."""
        ...

    def flush(self) -> list[tuple[bytes, int]]:
        """What is held back for a whole frame, padded with silence (the utterance has ended)."""
        ...

    def drop(self) -> None:
        """Forget what is held back (the voice was stopped)."""


class Pcm16Out:
    def __init__(self, rate: int, frame_ms: int = 100) -> None:
        self._frame = max(1, rate * frame_ms // 1000)

    def encode(self, audio: Samples) -> list[tuple[bytes, int]]:
        pcm = to_int16(audio)
        return [
            (pcm[i : i + self._frame].tobytes(), len(pcm[i : i + self._frame]))
            for i in range(0, len(pcm), self._frame)
        ]

    def flush(self) -> list[tuple[bytes, int]]:
        return []

    def drop(self) -> None:
        pass


class OpusOut:
    def __init__(self, rate: int, bitrate: int = VOICE_BITRATE) -> None:
        self._encoder = opus.OpusEncoder(rate, bitrate)
        self._frame = self._encoder.frame

    def encode(self, audio: Samples) -> list[tuple[bytes, int]]:
        return [(p, self._frame) for p in self._encoder.encode(audio)]

    def flush(self) -> list[tuple[bytes, int]]:
        return [(p, self._frame) for p in self._encoder.flush()]

    def drop(self) -> None:
        self._encoder.drop()


def voice_encoder(codec: str, rate: int) -> VoiceEncoder:
    return OpusOut(rate) if codec == OPUS else Pcm16Out(rate)
