"""A real Prometheus scraping a real `voxloop serve` app (real models on corpus speech): after one
spoken turn, the voice-to-voice histogram comes back through Prometheus's HTTP API as the turn
measured it; the alert rules load and evaluate; every dashboard query runs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from live_server import agent_client, live_server
from prometheus_server import PROMETHEUS, prometheus_server
from voxloop.agent.providers import Providers
from voxloop.metrics.registry import BUCKETS

from .conftest import LAMP, Arun, Corpus

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (apt install prometheus)"),
]
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_prometheus_scrapes_a_conversations_voice_to_voice(
    arun: Arun[Any], providers: Providers, corpus: Corpus, tmp_path: Path
) -> None:
    audio = corpus.audio(LAMP)
    mic = np.concatenate([np.zeros(8000, np.float32), audio, np.zeros(20 * 16000, np.float32)])
    dashboard = json.loads((DEPLOY / "grafana" / "voxloop.json").read_text())

    async def main() -> None:
        async with live_server(providers) as srv:
            target = f"127.0.0.1:{srv.port}"
            rules = [DEPLOY / "prometheus" / "alerts.yml"]
            async with prometheus_server(tmp_path, [target], rules) as prom:
                await prom.until('up{job="voxloop"}', lambda v: v == 1)
                assert await prom.until("voxloop_models_loaded", lambda v: v == 4) == 4
                async with agent_client(srv.ws_url) as c:
                    await c.start()
                    streaming = asyncio.get_running_loop().create_task(c.stream(mic))
                    try:
                        turn = (await c.event("turn_completed", within=90))["turn"]
                        # the session is still open: Prometheus sees it
                        await prom.until("voxloop_active_sessions", lambda v: v == 1)
                    finally:
                        streaming.cancel()
                        await asyncio.gather(streaming, return_exceptions=True)
                v2v = turn["v2v_ms"] / 1000
                assert await prom.until("voxloop_v2v_seconds_count", lambda n: n > 0) == 1
                assert await prom.until("voxloop_turns_total", lambda n: n > 0) == 1
                total = await prom.until("voxloop_v2v_seconds_sum", lambda s: s > 0)
                assert abs(total - v2v) < 1e-6, (total, v2v)

                # the histogram, queried back: one turn, in the 50 ms bucket that holds its v2v
                upper = min(b for b in BUCKETS if b >= v2v)
                lower = max((b for b in BUCKETS if b < upper), default=0.0)
                expr = 'histogram_quantile(0.5, sum by (le) (voxloop_v2v_seconds_bucket{job="voxloop"}))'
                median = float((await prom.query(expr))[0]["value"][1])
                assert lower < median <= upper, (lower, median, upper, v2v)
                print(f"\nv2v of the turn {v2v * 1000:.0f} ms; Prometheus's median {median * 1000:.0f} ms")
                for stage in ("endpoint", "stt_final", "llm_ttft", "tts_first_audio"):
                    series = f'voxloop_stage_seconds_count{{stage="{stage}"}}'
                    assert float((await prom.query(series))[0]["value"][1]) == 1, stage

                # the alert rules load and evaluate on the live data
                groups = (await prom.api("rules"))["groups"]
                loaded = {r["name"]: r for g in groups for r in g["rules"]}
                assert {"VoxloopVoiceToVoiceSlow", "VoxloopProviderErrors", "VoxloopSessionsStuck"} <= set(
                    loaded
                )
                assert all(r["health"] != "err" for r in loaded.values()), loaded

                # every dashboard query runs (Grafana's variables filled in as it would)
                for panel in dashboard["panels"]:
                    for t in panel["targets"]:
                        await prom.query(t["expr"].replace("$__rate_interval", "1m").replace("$job", ".*"))

    arun(main())
