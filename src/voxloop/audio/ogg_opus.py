"""Ogg Opus as it streams in (a browser's or a phone gateway's encoder), decoded as it arrives.

The Ogg pages are split into packets here (RFC 3533: a 27-byte header, a segment table, lacing
values of 255 carry a packet on), the first two packets are the Opus headers (RFC 7845), and every
other packet goes to PyAV's Opus decoder (FFmpeg, installed with faster-whisper). Audio comes out
mono at 48 kHz, Opus's own rate, in pieces of whatever length the pages held.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from voxloop.audio.pcm import Samples
from voxloop.errors import AudioFormatError

RATE = 48000
_CAPTURE = b"OggS"
MAX_BUFFER = 1 << 20  # bytes of an unfinished page (Ogg pages are at most ~64 KB)


def available() -> bool:
    try:
        import av
    except ImportError:
        return False
    return "opus" in av.codecs_available or "libopus" in av.codecs_available


class OggOpusDecoder:
    def __init__(self) -> None:
        import av

        self._av = av
        self._buf = b""
        self._packet = b""  # a packet continued onto the next page
        self._headers = 0  # Opus header packets seen (OpusHead, OpusTags)
        self._ctx: Any = None

    def __call__(self, data: bytes) -> Samples:
        """The audio of every whole packet `data` completes (AudioFormatError if it is not Ogg Opus)."""
        self._buf += data
        out: list[Samples] = []
        while len(self._buf) >= 27:
            if not self._buf.startswith(_CAPTURE):
                raise AudioFormatError("the stream is not Ogg: no page starts where one should")
            n = self._buf[26]
            body = 27 + n
            if len(self._buf) < body:
                break
            lacing = self._buf[27:body]
            end = body + sum(lacing)
            if len(self._buf) < end:
                break
            page, self._buf = self._buf[:end], self._buf[end:]
            at = body
            for lace in lacing:
                self._packet += page[at : at + lace]
                at += lace
                if lace < 255:
                    packet, self._packet = self._packet, b""
                    out += self._decode(packet)
        if len(self._buf) > MAX_BUFFER:
            raise AudioFormatError("an Ogg page longer than any encoder writes")
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def _decode(self, packet: bytes) -> list[Samples]:
        if self._headers == 0:
            if not packet.startswith(b"OpusHead") or len(packet) < 19:
                raise AudioFormatError("the Ogg stream does not carry Opus (no OpusHead)")
            self._ctx = self._av.CodecContext.create("opus", "r")
            self._ctx.extradata = packet
            self._headers = 1
            return []
        if self._headers == 1:  # OpusTags
            self._headers = 2
            return []
        try:
            frames = self._ctx.decode(self._av.Packet(packet))
        except self._av.error.FFmpegError as e:
            raise AudioFormatError(f"an Opus packet could not be decoded: {e}") from None
        return [
            np.asarray(f.to_ndarray(), np.float32).reshape(len(f.layout.channels), -1).mean(axis=0)
            for f in frames
        ]
