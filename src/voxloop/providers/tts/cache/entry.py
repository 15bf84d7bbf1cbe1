"""One cached line's audio as bytes: a 20-byte header, then 16-bit little-endian PCM.

Header: magic `VXTC`, format version, sample rate, sample count and the CRC-32 of the PCM. A blob
whose header, length or checksum does not add up (a file cut short by a crash, a foreign value
under our Redis key) is `CorruptEntry`, and the stores treat it as a miss and drop it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from voxloop.providers.base import Samples

MAGIC = b"VXTC"
VERSION = 1
_HEADER = struct.Struct("<4sBxxxIII")  # magic, version, sample rate, samples, crc32


class CorruptEntry(ValueError):
    """A stored blob that is not a whole, valid entry."""


@dataclass(frozen=True)
class Entry:
    audio: Samples  # mono float32
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


def encode(entry: Entry) -> bytes:
    pcm = (np.clip(entry.audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
    header = _HEADER.pack(MAGIC, VERSION, entry.sample_rate, len(pcm) // 2, zlib.crc32(pcm))
    return header + pcm


def decode(blob: bytes) -> Entry:
    if len(blob) < _HEADER.size:
        raise CorruptEntry(f"{len(blob)} bytes is shorter than an entry's header")
    magic, version, rate, samples, crc = _HEADER.unpack_from(blob)
    if magic != MAGIC or version != VERSION:
        raise CorruptEntry(f"not a voxloop TTS cache entry (magic {magic!r}, version {version})")
    pcm = memoryview(blob)[_HEADER.size :]
    if len(pcm) != 2 * samples or rate <= 0:
        raise CorruptEntry(f"{len(pcm)} bytes of audio where the header says {2 * samples} (cut short?)")
    if zlib.crc32(pcm) != crc:
        raise CorruptEntry("the audio's checksum does not match its header")
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / np.float32(32767.0)
    return Entry(audio, rate)
