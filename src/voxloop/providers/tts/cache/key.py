"""The cache key: a SHA-256 of everything that changes a line's audio, and of the text.

What changes the audio: the provider (a fallback chain: its members, in order), its voice and
model, the sample rate it speaks at, its pace (the configured speed times the request's), its
loudness target, and Piper's prosody variation. The text is taken with its whitespace runs
collapsed (a voice reads "One  moment." and "One moment." alike). The key holds no text: the
stores see only the hash. `KEY_VERSION` changes when the audio a key stands for would.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from voxloop.config import TTSConfig
from voxloop.providers.base import TTS

KEY_VERSION = 1


def normalize(text: str) -> str:
    return " ".join(text.split())


def voice_identity(tts: TTS) -> dict[str, Any]:
    """What a voice's audio depends on, apart from the text and the request's speed."""
    members = getattr(getattr(tts, "chain", None), "members", None)
    if members:  # a fallback chain: its members' own identities, in order
        return {"chain": [voice_identity(m) for m in members], "rate": tts.sample_rate}
    ident: dict[str, Any] = {"provider": tts.name, "rate": tts.sample_rate}
    config = getattr(tts, "config", None)
    if isinstance(config, TTSConfig):
        ident.update(
            voice=config.voice,
            speed=config.speed,
            loudness=config.loudness_dbfs,
            variation=config.variation if tts.name == "piper" else None,
            model=config.deepgram.tts_model if tts.name == "deepgram" else None,
        )
    return ident


def cache_key(identity: dict[str, Any], text: str, speed: float = 1.0) -> str:
    """Hex SHA-256 of the voice's identity, the request's speed and the normalized text."""
    doc = {"v": KEY_VERSION, "voice": identity, "speed": round(speed, 4), "text": normalize(text)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
