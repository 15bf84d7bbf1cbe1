"""Every metric voxloop exports, on a registry of its own (one per app, so several apps or tests
in one process never collide).

Histograms resolve 50 ms steps up to 2 s (the range a conversation's latency should live in) and
coarser steps beyond, up to 30 s. The TTS cache is shared by the whole process, so its lookups are
counted process-wide (`tts_cache_lookup`) and every registry reports those totals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

# 0.05, 0.10, ... 2.00, then 2.5 ... 30 s
BUCKETS = (*(round(0.05 * i, 2) for i in range(1, 41)), 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0)
STAGES = ("endpoint", "stt_final", "llm_ttft", "tts_first_audio")


class Metrics:
    """The metrics of one app (a server, or a talk/run session). `active_sessions` and
    `models_loaded` are read when scraped, from whoever owns those numbers."""

    def __init__(
        self,
        active_sessions: Callable[[], float] = lambda: 0.0,
        models_loaded: Callable[[], float] = lambda: 0.0,
    ) -> None:
        r = self.registry = CollectorRegistry()
        self.v2v = Histogram(
            "voxloop_v2v_seconds",
            "Voice to voice: the end of the user's speech to the agent's first sample out.",
            buckets=BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "voxloop_stage_seconds",
            "Each stage of a turn: endpoint (speech end to turn decided), stt_final (to the final "
            "transcript), llm_ttft (request to first token), tts_first_audio (text to first audio).",
            ["stage"],
            buckets=BUCKETS,
            registry=r,
        )
        for s in STAGES:
            self.stage.labels(s)  # every stage shows from the start, at zero
        self.turns = Counter(
            "voxloop_turns", "Turns completed (answered, interrupted or failed).", registry=r
        )
        self.interruptions = Counter("voxloop_interruptions", "Replies the user interrupted.", registry=r)
        self.fillers = Counter("voxloop_fillers", "Fillers said while a reply was late.", registry=r)
        self.provider_errors = Counter(
            "voxloop_provider_errors",
            "Errors reported in conversations, by stage (stt, llm, tts, reply), provider and category.",
            ["stage", "provider", "category"],
            registry=r,
        )
        self.retries = Counter("voxloop_retries", "Provider requests tried again.", registry=r)
        self.active_sessions = Gauge("voxloop_active_sessions", "Voice sessions open now.", registry=r)
        self.active_sessions.set_function(active_sessions)
        self.models_loaded = Gauge("voxloop_models_loaded", "Models loaded and serving.", registry=r)
        self.models_loaded.set_function(models_loaded)
        r.register(_TTSCacheCollector())

    @staticmethod
    def model_count(providers: object) -> int:
        """The models a `Providers` holds (its VAD, recogniser, language model and voice)."""
        return sum(getattr(providers, kind, None) is not None for kind in ("vad", "stt", "llm", "tts"))

    def exposition(self) -> bytes:
        """The metrics in Prometheus's text format."""
        return generate_latest(self.registry)


# -- the TTS cache, process-wide -------------------------------------------------------------------
_cache_lock = threading.Lock()
_cache_counts = {"hit": 0, "miss": 0}


def tts_cache_lookup(hit: bool) -> None:
    """Count one TTS cache lookup (thread-safe; call it from any thread, once per lookup)."""
    with _cache_lock:
        _cache_counts["hit" if hit else "miss"] += 1


def tts_cache_counts() -> dict[str, int]:
    with _cache_lock:
        return dict(_cache_counts)


class _TTSCacheCollector(Collector):
    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "voxloop_tts_cache_requests", "TTS cache lookups in this process, by result.", labels=["result"]
        )
        for result, n in tts_cache_counts().items():
            family.add_metric([result], n)
        yield family
