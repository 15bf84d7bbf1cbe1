"""`voxloop bench wer --opus-kbps N`: each clip heard through the wire's Opus codec (20 ms packets
at 16 kHz, N kbit/s, as a client's encoder sends them) instead of as PCM."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from voxloop.audio import opus
from voxloop.bench.corpus import Clip
from voxloop.providers.base import Samples

RATE = 16000  # the recogniser's rate: a client encodes the microphone at it (wideband Opus)


@dataclass(frozen=True, eq=False)
class OpusClip(Clip):
    """`inner`'s audio through the Opus encoder and decoder at `bitrate` bits per second."""

    inner: Clip | None = None
    bitrate: int = 24000

    def audio(self) -> Samples:
        assert self.inner is not None
        return opus.roundtrip(self.inner.audio(), RATE, self.bitrate)


def through_opus(clips: Sequence[Clip], kbps: int) -> list[Clip]:
    return [OpusClip(c.id, c.path, c.transcript, c, kbps * 1000) for c in clips]


def wire_bytes_per_s(clips: Sequence[Clip], kbps: int) -> float:
    """The microphone's bytes per second on the wire: the clips' Opus packets over their length
    (PCM16 at 16 kHz: 32000)."""
    total, seconds = 0, 0.0
    for c in clips:
        x = c.inner.audio() if isinstance(c, OpusClip) and c.inner is not None else c.audio()
        enc = opus.OpusEncoder(RATE, kbps * 1000)
        total += sum(map(len, enc.encode(x) + enc.flush()))
        seconds += len(x) / RATE
    return total / max(seconds, 1e-9)
