"""Counts of what the TTS cache did, and listeners for them (a metrics module subscribes here).

Results: "hit" and "miss" are lookups (a line the policy lets the cache serve, found or not);
"bypass" a line the policy keeps out (a reply with personal data, too long, replies off);
"stored" a line written; "prewarmed" a fixed line synthesized into the cache at load.

Hits and misses also go to `voxloop_tts_cache_requests_total{result}` (voxloop.metrics'
process-wide `tts_cache_lookup`), when prometheus_client (the `ops` extra) is installed.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable

log = logging.getLogger("voxloop.tts.cache")
Listener = Callable[[str], None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call `listener(result)` on every count of every TTS cache in this process; returns the
    function that unsubscribes it. A listener must be quick and must not raise (one that does
    is logged and dropped)."""
    _listeners.append(listener)

    def unsubscribe() -> None:
        if listener in _listeners:
            _listeners.remove(listener)

    return unsubscribe


@functools.cache
def _metrics() -> Callable[[bool], None] | None:
    try:
        from voxloop.metrics.registry import tts_cache_lookup
    except ImportError:  # no prometheus_client: no metrics to feed
        return None
    return tts_cache_lookup


class CacheStats:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    @property
    def hits(self) -> int:
        return self.counts["hit"]

    @property
    def misses(self) -> int:
        return self.counts["miss"]

    def count(self, result: str) -> None:
        self.counts[result] += 1
        if result in ("hit", "miss") and (lookup := _metrics()) is not None:
            lookup(result == "hit")
        for listener in list(_listeners):
            try:
                listener(result)
            except Exception:
                log.exception("tts cache: a stats listener failed; it is dropped")
                _listeners.remove(listener)
