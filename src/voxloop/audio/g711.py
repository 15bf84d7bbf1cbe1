"""G.711 companding (mu-law and A-law, 8 bits a sample), both ways, on numpy arrays.

Telephony audio arrives this way (Twilio, SIP). Python's `audioop` is deprecated, so the standard
segment tables are computed here: each byte holds a sign, a 3-bit segment and a 4-bit step.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from voxloop.audio.pcm import Samples

_MU_BIAS, _MU_CLIP = 0x84, 32635


def _bytes(data: bytes | NDArray[np.uint8]) -> NDArray[np.int32]:
    return np.frombuffer(bytes(data), np.uint8).astype(np.int32)


def mulaw_decode(data: bytes | NDArray[np.uint8]) -> Samples:
    """mu-law bytes -> float32 in [-1, 1]."""
    u = ~_bytes(data) & 0xFF
    exponent, mantissa = (u >> 4) & 7, u & 0x0F
    x = (((mantissa << 3) + _MU_BIAS) << exponent) - _MU_BIAS
    x = np.where(u & 0x80, -x, x)
    return (x / 32768.0).astype(np.float32)


def mulaw_encode(x: Samples) -> bytes:
    """float32 in [-1, 1] -> mu-law bytes."""
    s = np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int32)
    sign = np.where(s < 0, 0x80, 0)
    m = np.minimum(np.abs(s), _MU_CLIP) + _MU_BIAS
    exponent = np.clip(np.floor(np.log2(m)).astype(np.int32) - 7, 0, 7)
    mantissa = (m >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def alaw_decode(data: bytes | NDArray[np.uint8]) -> Samples:
    """A-law bytes -> float32 in [-1, 1]."""
    a = _bytes(data) ^ 0x55
    exponent, mantissa = (a >> 4) & 7, a & 0x0F
    x = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    x = np.where(a & 0x80, x, -x)  # in A-law a set sign bit is positive
    return (x / 32768.0).astype(np.float32)


def alaw_encode(x: Samples) -> bytes:
    """float32 in [-1, 1] -> A-law bytes."""
    s = np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int32)
    sign = np.where(s >= 0, 0x80, 0)
    m = np.minimum(np.abs(s), 32767)
    exponent = np.clip(np.floor(np.log2(np.maximum(m, 1))).astype(np.int32) - 7, 0, 7)
    mantissa = np.where(exponent == 0, m >> 4, m >> (exponent + 3)) & 0x0F
    return ((sign | (exponent << 4) | mantissa) ^ 0x55).astype(np.uint8).tobytes()
