"""Metrics for `voxloop talk` and `voxloop run` (`--metrics-port`): one session's metrics on a
small HTTP server of prometheus_client's, in a thread of its own, for as long as the session runs.
It listens on loopback; the session's log lines carry a session id either way."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from voxloop.agent.providers import Providers
from voxloop.agent.session import VoiceSession
from voxloop.errors import VoxloopError
from voxloop.metrics.logctx import LogContext

log = logging.getLogger("voxloop.metrics")


@asynccontextmanager
async def observed(
    session: VoiceSession, providers: Providers, metrics_port: int | None, host: str = "127.0.0.1"
) -> AsyncIterator[int | None]:
    """Feed the session's events to its log context and, with a port, to metrics served there
    (0: a free port). Yields the port the metrics are served on, or None."""
    session.subscribe(LogContext(uuid.uuid4().hex[:12]))
    if metrics_port is None:
        yield None
        return
    try:
        from prometheus_client import start_http_server

        from voxloop.metrics.observer import MetricsObserver
        from voxloop.metrics.registry import Metrics
    except ImportError:
        raise VoxloopError(
            "--metrics-port needs the Python module prometheus_client, which is not installed",
            'install it with: pip install "voxloop[ops]"',
        ) from None
    models = Metrics.model_count(providers)
    metrics = Metrics(active_sessions=lambda: 1, models_loaded=lambda: models)
    session.subscribe(MetricsObserver(metrics))
    try:
        server, thread = start_http_server(metrics_port, host, registry=metrics.registry)
    except OSError as e:
        raise VoxloopError(
            f"cannot serve metrics on {host}:{metrics_port}: {e.strerror or e}",
            "choose another --metrics-port (0 picks a free one)",
        ) from None
    port = int(server.server_port)
    log.info("metrics at http://%s:%d/metrics", host, port)
    try:
        yield port
    finally:
        await asyncio.to_thread(server.shutdown)  # waits up to its poll interval (0.5 s)
        server.server_close()
        await asyncio.to_thread(thread.join)
