"""Prometheus metrics from a session's events: the observer alone, then the server's /metrics over a
real socket after a conversation with fake models (a retried language model among them), the key
it asks for, and talk/run's own small metrics server."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from conftest import make_providers, silence, tone
from fakes import FakeSTT
from fakes.flaky import RetryingLLM
from live_server import agent_client, http_get, live_server
from voxloop.agent import events as ev
from voxloop.metrics.observer import MetricsObserver
from voxloop.metrics.registry import BUCKETS, Metrics, tts_cache_counts, tts_cache_lookup
from voxloop.server.settings import ServerSettings

T = TypeVar("T")
UTTERANCE = np.concatenate([silence(0.3), tone(1.0), silence(0.6)])


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_the_buckets_resolve_50_ms_below_2_s() -> None:
    below = [b for b in BUCKETS if b <= 2.0]
    assert below[0] == 0.05 and below[-1] == 2.0
    assert all(abs((b - a) - 0.05) < 1e-9 for a, b in zip(below, below[1:], strict=False))
    assert BUCKETS[-1] >= 30.0


def test_the_observer_counts_a_sessions_events() -> None:
    m = Metrics(active_sessions=lambda: 3, models_loaded=lambda: 4)
    observe = MetricsObserver(m)
    record = {"v2v_ms": 820.0, "endpoint_ms": 210.0, "stt_final_ms": 95.0, "llm_ttft_ms": 300.0}
    observe(ev.TurnCompleted(t=1.0, record={**record, "tts_first_audio_ms": None, "fillers": 1}))
    observe(ev.TurnCompleted(t=2.0, record={"v2v_ms": None, "fillers": 0}))  # cut off before its voice
    observe(ev.Interrupted(t=2.0, turn_id=2, heard_text=""))
    observe(
        ev.ErrorOccurred(
            t=3.0, code="llm_server", message="503", stage="llm", provider="openai", category="server"
        )
    )
    observe(ev.ErrorOccurred(t=3.0, code="stage_timeout", message="late", stage="tts", category="timeout"))
    observe(
        ev.ProviderRetry(t=3.0, stage="llm", provider="openai", category="server", attempt=1, delay_s=0.5)
    )
    observe(ev.AgentSpeech(t=4.0, turn_id=3, text="not counted"))

    s = samples(m.exposition())
    assert s[("voxloop_turns_total", ())] == 2
    assert s[("voxloop_v2v_seconds_count", ())] == 1 and s[("voxloop_v2v_seconds_sum", ())] == 0.82
    assert s[("voxloop_v2v_seconds_bucket", (("le", "0.8"),))] == 0
    assert s[("voxloop_v2v_seconds_bucket", (("le", "0.85"),))] == 1
    counts = {
        stage: s[("voxloop_stage_seconds_count", (("stage", stage),))]
        for stage in ("endpoint", "stt_final", "llm_ttft", "tts_first_audio")
    }
    assert counts == {"endpoint": 1, "stt_final": 1, "llm_ttft": 1, "tts_first_audio": 0}
    assert s[("voxloop_interruptions_total", ())] == 1
    assert s[("voxloop_fillers_total", ())] == 1
    assert s[("voxloop_retries_total", ())] == 1
    errors = (("category", "server"), ("provider", "openai"), ("stage", "llm"))
    assert s[("voxloop_provider_errors_total", errors)] == 1
    unnamed = (("category", "timeout"), ("provider", "unknown"), ("stage", "tts"))
    assert s[("voxloop_provider_errors_total", unnamed)] == 1
    assert s[("voxloop_active_sessions", ())] == 3 and s[("voxloop_models_loaded", ())] == 4


def test_tts_cache_lookups_are_counted_for_the_whole_process() -> None:
    before = tts_cache_counts()
    a, b = Metrics(), Metrics()  # two apps in one process: no collision, the same totals
    tts_cache_lookup(hit=True)
    tts_cache_lookup(hit=True)
    tts_cache_lookup(hit=False)
    for m in (a, b):
        s = samples(m.exposition())
        assert s[("voxloop_tts_cache_requests_total", (("result", "hit"),))] == before["hit"] + 2
        assert s[("voxloop_tts_cache_requests_total", (("result", "miss"),))] == before["miss"] + 1


def test_the_server_serves_its_conversations_metrics() -> None:
    llm = RetryingLLM(failures=1, backoff_s=0.05)  # one failed attempt, retried (with a filler)

    async def main() -> None:
        async with live_server(make_providers(stt=FakeSTT(["turn on the lamp"]), llm=llm)) as srv:
            status, headers, body = await http_get(srv.port, "/metrics")
            assert status == 200 and headers["content-type"].startswith("text/plain")
            s = samples(body)
            assert s[("voxloop_turns_total", ())] == 0 and s[("voxloop_active_sessions", ())] == 0
            assert s[("voxloop_models_loaded", ())] == 4
            async with agent_client(srv.ws_url, auto_report=True) as c:
                await c.start()
                await c.send_audio(UTTERANCE)
                turn = (await c.event("turn_completed"))["turn"]
                s = samples((await http_get(srv.port, "/metrics"))[2])
                assert s[("voxloop_active_sessions", ())] == 1
            assert s[("voxloop_turns_total", ())] == 1
            assert s[("voxloop_v2v_seconds_count", ())] == 1
            assert abs(s[("voxloop_v2v_seconds_sum", ())] - turn["v2v_ms"] / 1000) < 1e-6
            assert s[("voxloop_stage_seconds_count", (("stage", "llm_ttft"),))] == 1
            assert s[("voxloop_retries_total", ())] == 1 and s[("voxloop_fillers_total", ())] == 1
            labels = (("category", "server"), ("provider", "fake-llm"), ("stage", "llm"))
            assert s[("voxloop_provider_errors_total", labels)] == 1

    run(main())


def test_the_metrics_ask_for_the_servers_key() -> None:
    async def main() -> None:
        async with live_server(make_providers(), ServerSettings(port=0, api_keys=("k1",))) as srv:
            status, _, _ = await http_get(srv.port, "/metrics")
            assert status == 401
            status, _, body = await http_get(srv.port, "/metrics?token=k1")
            assert status == 200 and b"voxloop_v2v_seconds_bucket" in body

    run(main())
