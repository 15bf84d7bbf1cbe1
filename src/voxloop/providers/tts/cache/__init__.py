"""The TTS cache: a line's audio kept by voice, settings and text, and played at once next time.

`with_cache(tts, config)` wraps the voice `Providers.from_config` builds, as `config.tts.cache`
says: `location` "off", "disk" (the default folder), a folder, or `redis://host:port/db`.
- `cached.py`: `CachedTTS`, the wrapper (hits at once, misses streamed and then stored)
- `key.py`: what the key is made of; `entry.py`: the stored bytes
- `disk.py`, `redis_store.py`: the two backends; `memory.py`: the most used lines in the process
- `policy.py`: which lines are cached
- `stats.py`: counts and listeners; `options.py`: the command-line options
"""

from __future__ import annotations

from pathlib import Path

from voxloop.config import AgentConfig, TTSCacheConfig
from voxloop.providers.base import TTS
from voxloop.providers.tts.cache.cached import CachedTTS, Store
from voxloop.providers.tts.cache.disk import DiskStore, default_dir
from voxloop.providers.tts.cache.entry import CorruptEntry, Entry
from voxloop.providers.tts.cache.policy import LinePolicy, looks_personal
from voxloop.providers.tts.cache.stats import CacheStats, subscribe

__all__ = [
    "CacheStats",
    "CachedTTS",
    "CorruptEntry",
    "DiskStore",
    "Entry",
    "LinePolicy",
    "Store",
    "looks_personal",
    "open_store",
    "subscribe",
    "with_cache",
]


def open_store(config: TTSCacheConfig) -> Store | None:
    """The backend `config.location` names (None: "off"). Nothing is read or connected yet."""
    where = config.location.strip()
    if where in ("", "off"):
        return None
    if where.startswith(("redis://", "rediss://", "unix://")):
        from voxloop.providers.tts.cache.redis_store import RedisStore

        return RedisStore(where, ttl_s=config.redis_ttl_s)
    root = default_dir() if where == "disk" else Path(where).expanduser()
    return DiskStore(root, config.max_bytes)


def with_cache(tts: TTS, config: AgentConfig) -> TTS:
    """`tts` behind the cache `config.tts.cache` describes (or `tts` itself when it is off).
    The fixed lines: the watchdog's fillers and `config.tts.cache.fixed_lines`."""
    store = open_store(config.tts.cache)
    if store is None:
        return tts
    c = config.tts.cache
    fixed = (config.turn.filler_text, config.turn.retry_filler_text, *c.fixed_lines)
    policy = LinePolicy(fixed, replies=c.replies, max_chars=c.max_chars)
    return CachedTTS(tts, store, policy, memory_bytes=c.memory_bytes)
