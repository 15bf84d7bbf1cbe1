"""Observability: Prometheus metrics and JSON log lines, fed by the session's events.

    registry.py   every metric in one place (`Metrics`, one CollectorRegistry per app), and the
                  process-wide TTS cache counts (`tts_cache_lookup`)
    observer.py   a session's events -> the metrics (no metrics code in the conversation loop)
    logctx.py     the session and turn ids of a log line (context variables), JSON log lines
    serving.py    `GET /metrics` on `voxloop serve`, and a small HTTP server for talk/run

`prometheus_client` comes with the `ops` extra; only registry.py and serving.py need it.
"""

from __future__ import annotations
