"""`GET /metrics` on `voxloop serve`: the app's own registry, fed by an observer per session.

The route asks for the server's API key when it has keys, like `/readyz`'s details (Prometheus
presents it with `authorization: {credentials_file: ...}` in its scrape config). Without the `ops`
extra the route answers 503 with the command that installs it; the log context works regardless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from voxloop.agent.events import Event
from voxloop.metrics.logctx import LogContext
from voxloop.server.compat.auth import authorized

if TYPE_CHECKING:
    from voxloop.server.state import ServerState

SessionObserver = Callable[[str], Callable[[Event], None]]  # made for a session id: its events' listener


def metrics_routes(state: ServerState, observers: list[SessionObserver]) -> list[Route]:
    """The `/metrics` route; adds to `observers` what each new session's events should feed."""
    observers.append(LogContext)
    try:
        from voxloop.metrics.observer import MetricsObserver
        from voxloop.metrics.registry import Metrics
    except ImportError:
        return [Route("/metrics", _missing_extra)]
    models = Metrics.model_count(state.providers)
    metrics = Metrics(
        active_sessions=lambda: state.active,
        models_loaded=lambda: models if state.ready.is_set() else 0,
    )
    observers.append(lambda _session_id: MetricsObserver(metrics))

    async def endpoint(request: Request) -> Response:
        if not authorized(request, state.settings):
            body = {"error": {"code": "unauthorized", "message": "the metrics need the server's API key"}}
            return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="voxloop"'})
        text = await asyncio.to_thread(metrics.exposition)  # a few ms of formatting: off the loop
        return Response(text, headers={"Cache-Control": "no-store"}, media_type=CONTENT_TYPE)

    return [Route("/metrics", endpoint)]


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes


async def _missing_extra(request: Request) -> Response:
    message = "metrics need prometheus_client: pip install 'voxloop[ops]'"
    return JSONResponse({"error": {"code": "metrics_unavailable", "message": message}}, status_code=503)
