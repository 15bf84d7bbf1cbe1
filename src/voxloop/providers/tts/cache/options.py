"""The TTS cache's command-line options, for the commands that speak (serve, talk, run, demo)."""

from __future__ import annotations

import argparse

from voxloop.config import TTSCacheConfig
from voxloop.errors import VoxloopError
from voxloop.providers.tts.cache.policy import REPLIES


def add_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("TTS cache")
    g.add_argument(
        "--tts-cache",
        default="disk",
        metavar="WHERE",
        help="where spoken lines are kept: disk (default: $XDG_CACHE_HOME/voxloop/tts or "
        "~/.cache/voxloop/tts), a folder, redis://host:port/db, or off",
    )
    g.add_argument(
        "--tts-cache-mb",
        type=float,
        default=TTSCacheConfig.max_bytes / 2**20,
        help="the disk cache's size bound in MiB (least recently used lines go first)",
    )
    g.add_argument(
        "--tts-cache-replies",
        choices=REPLIES,
        default=TTSCacheConfig.replies,
        help="reply lines: cached when said a second time (repeated), always (all), or never "
        "(off: only fillers and --tts-cache-line); lines that may hold personal data never are",
    )
    g.add_argument(
        "--tts-cache-line",
        action="append",
        default=[],
        metavar="TEXT",
        help="a fixed line (a greeting) to have ready in the cache from the start (repeatable)",
    )


def from_args(a: argparse.Namespace) -> TTSCacheConfig:
    """The cache settings of a command given `add_options` (any other command: off)."""
    if not hasattr(a, "tts_cache"):
        return TTSCacheConfig()
    where = a.tts_cache.strip()
    if ":/" in where and not where.startswith(("redis://", "rediss://", "unix://")):
        raise VoxloopError(
            f"--tts-cache {where} is neither a folder nor a Redis URL",
            "give redis://HOST:PORT/DB (rediss:// for TLS), a folder, disk or off",
        )
    if a.tts_cache_mb <= 0:
        raise VoxloopError(f"--tts-cache-mb {a.tts_cache_mb} is out of range", "give a size above 0 MiB")
    return TTSCacheConfig(
        location=where,
        max_bytes=int(a.tts_cache_mb * 2**20),
        replies=a.tts_cache_replies,
        fixed_lines=tuple(a.tts_cache_line),
    )
