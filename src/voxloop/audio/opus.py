"""Raw Opus packets (RFC 6716), 20 ms each, as the socket protocol carries them: no container.

Encoding and decoding go through PyAV (FFmpeg's libopus wrapper, in PyAV's wheels; the same
library as Debian's libopus0). `OpusEncoder` takes float32 audio of any length at one of Opus's
input rates (8, 12, 16, 24 or 48 kHz) and returns whole 20 ms packets, holding what does not fill
one; `flush` pads that rest with silence into a last packet. `OpusDecoder` turns one packet into
mono float32 at 48 kHz, Opus's own rate. `packet_duration_s` reads a packet's length from its
table-of-contents byte without decoding it (what the rate limiter counts).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from voxloop.audio.pcm import Samples, to_int16
from voxloop.errors import AudioFormatError, MissingExtra, VoxloopError

RATES = (8000, 12000, 16000, 24000, 48000)  # the sample rates an Opus encoder takes
DECODE_RATE = 48000
FRAME_MS = 20
LOOKAHEAD_S = 0.006375  # 306 samples at 48 kHz, measured (see _delay)
MAX_PACKET_S = 0.120  # RFC 6716 3.2.5: at most 120 ms of audio in one packet
# TOC config -> frame length in ms: SILK 10/20/40/60 (0-11), hybrid 10/20 (12-15), CELT 2.5-20 (16-31)
_FRAME_MS = [10, 20, 40, 60] * 3 + [10, 20] * 2 + [2.5, 5, 10, 20] * 4


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise MissingExtra("server", "av") from None
    return av


def available() -> bool:
    try:
        av = _av()
    except MissingExtra:
        return False
    return "libopus" in av.codecs_available


def packet_duration_s(packet: bytes) -> float:
    """Seconds of audio in one Opus packet, from its TOC byte (and frame count byte); raises
    AudioFormatError for what cannot be an Opus packet."""
    if not packet:
        raise AudioFormatError("an empty Opus packet", "send one Opus packet per binary frame")
    toc = packet[0]
    frame_ms = _FRAME_MS[toc >> 3]
    code = toc & 3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
        if code == 1 and (len(packet) - 1) % 2:
            raise AudioFormatError("a malformed Opus packet: two equal frames of odd total length")
    else:
        if len(packet) < 2:
            raise AudioFormatError("a malformed Opus packet: its frame count byte is missing")
        frames = packet[1] & 0x3F
        if frames == 0:
            raise AudioFormatError("a malformed Opus packet: it says it holds no frames")
    seconds = frames * frame_ms / 1000
    if seconds > MAX_PACKET_S + 1e-9:
        raise AudioFormatError(f"a malformed Opus packet: {seconds * 1000:g} ms, over Opus's 120 ms")
    return seconds


class OpusEncoder:
    """Float32 audio at `rate` in, 20 ms Opus packets out. `application`: "voip" (speech
    intelligibility first) or "audio"; `bitrate` in bits per second (VBR, around it)."""

    def __init__(self, rate: int, bitrate: int = 24000, application: str = "voip") -> None:
        if rate not in RATES:
            raise AudioFormatError(
                f"Opus cannot encode at {rate} Hz", f"use one of {', '.join(map(str, RATES))} Hz"
            )
        av = _av()
        if "libopus" not in av.codecs_available:
            raise VoxloopError(
                "this PyAV was built without libopus, so it cannot encode Opus",
                "pip install --force-reinstall av (its wheels carry libopus), or use PCM16",
            )
        self.rate, self.bitrate = rate, bitrate
        self.frame = rate * FRAME_MS // 1000
        ctx: Any = av.CodecContext.create("libopus", "w")
        ctx.sample_rate, ctx.layout, ctx.format = rate, "mono", "s16"
        ctx.bit_rate = bitrate
        ctx.time_base = Fraction(1, rate)
        ctx.options = {"frame_duration": str(FRAME_MS), "application": application}
        ctx.open()
        self._ctx = ctx
        self._av = av
        self._rest = np.zeros(0, np.int16)  # samples that do not fill a packet yet
        self._pts = 0

    @property
    def pending(self) -> int:
        """Samples held until a whole 20 ms frame is there."""
        return len(self._rest)

    def encode(self, audio: Samples) -> list[bytes]:
        """Packets for every whole 20 ms `audio` completes (with what was held before it)."""
        pcm = np.concatenate([self._rest, to_int16(np.asarray(audio, np.float32))])
        n = len(pcm) // self.frame * self.frame
        self._rest = pcm[n:]
        return [p for i in range(0, n, self.frame) for p in self._encode(pcm[i : i + self.frame])]

    def flush(self) -> list[bytes]:
        """The held samples, padded with silence to a whole frame, as a last packet (none held:
        nothing). The stream goes on: more audio may follow."""
        if not len(self._rest):
            return []
        frame = np.concatenate([self._rest, np.zeros(self.frame - len(self._rest), np.int16)])
        self._rest = np.zeros(0, np.int16)
        return self._encode(frame)

    def drop(self) -> None:
        """Forget the held samples (the voice was stopped)."""
        self._rest = np.zeros(0, np.int16)

    def _encode(self, frame: np.ndarray) -> list[bytes]:
        f = self._av.AudioFrame.from_ndarray(frame[None, :], format="s16", layout="mono")
        f.sample_rate, f.pts = self.rate, self._pts
        self._pts += len(frame)
        return [bytes(p) for p in self._ctx.encode(f)]


class OpusDecoder:
    """One Opus packet at a time -> mono float32 at 48 kHz. A packet that cannot be decoded
    raises AudioFormatError; the decoder goes on with the next one."""

    rate = DECODE_RATE

    def __init__(self) -> None:
        av = _av()
        ctx: Any = av.CodecContext.create("libopus" if "libopus" in av.codecs_available else "opus", "r")
        ctx.sample_rate, ctx.layout = DECODE_RATE, "mono"
        self._ctx, self._av = ctx, av

    def decode(self, packet: bytes) -> Samples:
        packet_duration_s(packet)  # what is not even shaped like a packet never reaches FFmpeg
        try:
            frames = self._ctx.decode(self._av.Packet(packet))
        except self._av.error.FFmpegError as e:
            raise AudioFormatError(
                f"an Opus packet of {len(packet)} bytes could not be decoded ({e.strerror or e})",
                "give the decoder whole packets, as the encoder wrote them",
            ) from None
        parts = [_mono(f) for f in frames]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _mono(frame: Any) -> Samples:
    """A decoded frame as mono float32 in [-1, 1]: libopus gives 16-bit samples, FFmpeg's own
    decoder floats."""
    x = frame.to_ndarray()
    scale = 32768.0 if np.issubdtype(x.dtype, np.integer) else 1.0
    return (x.astype(np.float32).reshape(len(frame.layout.channels), -1).mean(axis=0) / scale).astype(
        np.float32
    )


def roundtrip(audio: Samples, rate: int, bitrate: int) -> Samples:
    """`audio` at `rate` (an Opus rate) through the encoder and decoder, back at `rate`, the same
    length (the codec's delay removed): what a listener at the far end of the wire gets."""
    from voxloop.audio.pcm import resample

    enc, dec = OpusEncoder(rate, bitrate), OpusDecoder()
    packets = enc.encode(audio) + enc.flush() + enc.encode(np.zeros(enc.frame * 2, np.float32))
    out = np.concatenate([dec.decode(p) for p in packets] or [np.zeros(0, np.float32)])
    back = resample(out, DECODE_RATE, rate)
    delay = _delay(enc)
    return np.asarray(back[delay : delay + len(audio)], np.float32)


def _delay(enc: OpusEncoder) -> int:
    """The encoder's lookahead in samples at its rate: the decoder's output starts this late.
    libopus reports 312 samples at 48 kHz (6.5 ms); the round trip here lines up best at 306
    (cross-correlation at 16, 24 and 48 kHz, voice and a synthetic vowel alike)."""
    return round(LOOKAHEAD_S * enc.rate)
