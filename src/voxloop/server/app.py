"""The voice server as an ASGI app: the page, health checks, and one voice session per WebSocket.

    GET  /          the browser page (served from the package, nothing external)
    GET  /healthz   200 while the process is serving
    GET  /metrics   Prometheus metrics (voxloop.metrics; the key, if the server has one)
    GET  /readyz    200 once the models are loaded and a new session would be admitted (a slot is
                    free and the measured load allows it: admission.py), else 503 (also while
                    shutting down: drain.py; with the key: why, the sessions in use and the load)
    WS   /v1/agent  a voice session (docs/protocol.md)
    WS   /v1/telephony/twilio  a phone call through Twilio Media Streams (docs/telephony.md)

The models are loaded once, in the background after start-up, and shared by every session; each
session keeps its own state (VAD and recogniser streams, history, speaker).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from voxloop.agent.providers import Providers
from voxloop.config import AgentConfig
from voxloop.metrics.serving import metrics_routes
from voxloop.server import protocol as p
from voxloop.server.compat.auth import authorized, key_valid
from voxloop.server.compat.deepgram_routes import deepgram_routes
from voxloop.server.compat.openai_routes import openai_routes
from voxloop.server.connection import AgentConnection
from voxloop.server.hosts import HostGuard, host_allowed
from voxloop.server.logs import refusals
from voxloop.server.settings import ServerSettings
from voxloop.server.socket_session import open_session
from voxloop.server.state import Refusal, ServerState
from voxloop.server.telephony import telephony_routes

log = logging.getLogger("voxloop.server")


def server_state(app: Starlette) -> ServerState:
    state: ServerState = app.state.voxloop
    return state


def create_app(providers: Providers, config: AgentConfig, settings: ServerSettings) -> Starlette:
    """The app. It loads `providers` in the background once it starts (loading is idempotent, so
    models loaded beforehand are fine); it never closes them: that is the owner's job."""
    state = ServerState(providers, config, settings)
    page = (resources.files("voxloop.server") / "static" / "index.html").read_text("utf-8")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(state.load())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def index(request: Request) -> Response:
        host = request.headers.get("host", "")
        csp = (
            "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
            f"connect-src 'self' ws://{host} wss://{host}; frame-ancestors 'none'"
        )
        headers = {
            "Content-Security-Policy": csp,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",  # the address may hold a token
            "X-Content-Type-Options": "nosniff",
        }
        return HTMLResponse(page, headers=headers)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """Ready: the models are loaded and a session is free (a load balancer sends callers
        elsewhere otherwise). The details only to a caller with the key, if the server has one."""
        ready = (
            state.ready.is_set()
            and not state.sessions.draining
            and state.admission.decide(state.active).admit
        )
        body: dict[str, Any] = {"ready": ready, "auth_required": settings.auth_required}
        if authorized(request, settings):
            body["protocol"] = p.VERSION
            body["loaded"] = state.ready.is_set()
            body["draining"] = state.sessions.draining
            body["sessions"] = {"active": state.active, "max": settings.max_sessions}
            body["load"] = state.admission.report(state.active)
            if state.load_error is not None:
                body["error"] = str(state.load_error)
        return JSONResponse(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    async def agent(ws: WebSocket) -> None:
        if not origin_allowed(ws.headers.get("origin"), ws.headers.get("host"), settings):
            await _deny(ws, 403, "forbidden_origin", "this page's origin may not use the voice server")
            return
        if settings.auth_required and not key_valid(presented_key(ws), settings.api_keys):
            await _deny(
                ws,
                401,
                "unauthorized",
                "a valid API key is needed (Authorization: Bearer KEY, or ?token=KEY)",
            )
            return

        def make(session_id: str, release: Callable[[], None]) -> AgentConnection:
            client = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
            log.info("session %s: connection from %s", session_id, client)
            return AgentConnection(ws, providers, config, settings, session_id, release)

        async def refuse(no: Refusal) -> None:
            # with --busy-503 a balancer in front tries another worker (nginx: http_503); the
            # models loading is always said on the open socket
            if settings.busy_503 and no.code != p.NOT_READY:
                await _deny(ws, 503, no.code, no.message)
            else:
                await _refuse(ws, no.code, no.message, no.close)

        await open_session(state, ws, make, refuse)

    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/favicon.ico", favicon),
        Mount("/static", StaticFiles(packages=[("voxloop.server", "static")]), name="static"),
        WebSocketRoute("/v1/agent", agent),
        *openai_routes(state),  # OpenAI-compatible (docs/compatible-apis.md)
        *deepgram_routes(state),  # Deepgram-compatible (docs/compatible-apis.md)
        *metrics_routes(state, state.observers),  # GET /metrics (voxloop.metrics)
        *telephony_routes(state),  # Twilio Media Streams (docs/telephony.md)
    ]
    guard = Middleware(HostGuard, allowed_hosts=settings.allowed_hosts)  # before any route
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[guard])
    app.state.voxloop = state
    return app


# -- who may connect -------------------------------------------------------------------------------
def origin_allowed(origin: str | None, host: str | None, settings: ServerSettings) -> bool:
    """Browsers send an Origin: the server's own page is allowed, others only if listed. The own
    page is one served under a Host this server answers to (a name rebound to this machine by
    another site is not). Clients that are not browsers send none; the API key (if any) guards them."""
    if origin is None:
        return True
    origin = origin.rstrip("/").lower()
    allowed = settings.allowed_origins
    if "*" in allowed or origin in {o.rstrip("/").lower() for o in allowed}:
        return True
    if host is None or not host_allowed(host, settings.allowed_hosts):
        return False
    return origin in (f"http://{host.lower()}", f"https://{host.lower()}")


def presented_key(ws: WebSocket) -> str | None:
    scheme, _, value = ws.headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    return ws.query_params.get("token")


async def _deny(ws: WebSocket, status: int, code: str, message: str) -> None:
    """Refuse the handshake with an HTTP status (browsers only see that it failed)."""
    refusals.log(logging.INFO, "refused a connection (%d): %s", status, message)
    body = {"error": {"code": code, "message": message}}
    headers = {"WWW-Authenticate": 'Bearer realm="voxloop"'} if status == 401 else None
    try:
        await ws.send_denial_response(JSONResponse(body, status_code=status, headers=headers))
    except RuntimeError:  # the ASGI server cannot send a response: a plain refusal (403)
        await ws.close(code=1008)


async def _refuse(ws: WebSocket, code: str, message: str, close: int = p.CLOSE_TRY_LATER) -> None:
    """Accept, say why in an error event, and close: a browser can show the reason."""
    refusals.log(logging.INFO, "refused a session: %s", message)
    try:
        await ws.accept()
        await ws.send_text(p.dumps(p.error_message(code, message, fatal=True)))
        await ws.close(close, code)
    except Exception:  # the client did not wait for the answer
        log.debug("the refused client left first", exc_info=True)
