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
import uuid
from collections.abc import AsyncIterator
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

from voxloop.agent import events as ev
from voxloop.agent.providers import Providers
from voxloop.config import AgentConfig
from voxloop.metrics.serving import SessionObserver, metrics_routes
from voxloop.server import protocol as p
from voxloop.server.admission import Admission
from voxloop.server.compat.auth import authorized, key_valid
from voxloop.server.compat.deepgram_routes import deepgram_routes
from voxloop.server.compat.openai_routes import openai_routes
from voxloop.server.connection import AgentConnection
from voxloop.server.drain import GOODBYE, Sessions
from voxloop.server.hosts import HostGuard, host_allowed
from voxloop.server.logs import refusals
from voxloop.server.settings import ServerSettings
from voxloop.server.telephony import telephony_routes

log = logging.getLogger("voxloop.server")


class ServerState:
    """What the app shares between requests: the models, whether they are loaded, the sessions."""

    def __init__(self, providers: Providers, config: AgentConfig, settings: ServerSettings) -> None:
        self.providers, self.config, self.settings = providers, config, settings
        self.ready = asyncio.Event()  # the models are loaded
        self.settled = asyncio.Event()  # loading finished, one way or the other
        self.load_error: Exception | None = None
        self.active = 0  # sessions open now
        self.sessions = Sessions()  # the live voice sessions, drained on SIGTERM (drain.py)
        self.observers: list[SessionObserver] = []  # made for each session: metrics, log ids
        self.admission = Admission(settings.max_sessions, settings.latency_budget_ms)

    def observe(self, event: ev.Event) -> None:
        """Every session's events: finished turns teach admission control the load it can serve."""
        if isinstance(event, ev.TurnCompleted):
            self.admission.note_turn(event.record, self.active)

    async def load(self) -> None:
        try:
            await self.providers.load()
        except Exception as e:
            self.load_error = e
            log.error("the models could not be loaded: %s", e)
        else:
            self.ready.set()
        finally:
            self.settled.set()


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
        if state.sessions.draining:  # (with --busy-503 a balancer in front tries another worker)
            if settings.busy_503:
                await _deny(ws, 503, p.SHUTTING_DOWN, GOODBYE)
            else:
                await _refuse(ws, p.SHUTTING_DOWN, GOODBYE, p.CLOSE_RESTART)
            return
        if not state.ready.is_set():
            await _refuse(ws, p.NOT_READY, "the models are still loading: try again shortly")
            return
        if not (admitted := state.admission.decide(state.active)).admit:
            if settings.busy_503:  # a balancer in front tries another worker (nginx: http_503)
                await _deny(ws, 503, p.SERVER_BUSY, admitted.reason)
            else:
                await _refuse(ws, p.SERVER_BUSY, admitted.reason)
            return
        state.active += 1
        held = True

        def release() -> None:  # the slot is free once the session has ended
            nonlocal held
            if held:
                held = False
                state.active -= 1

        try:
            await ws.accept()
            client = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
            conn = AgentConnection(ws, providers, config, settings, uuid.uuid4().hex[:12], release)
            conn.observers.append(state.observe)
            conn.observers += [make(conn.session_id) for make in state.observers]
            log.info("session %s: connection from %s", conn.session_id, client)
            state.sessions.add(conn)
            try:
                await conn.run()
            finally:
                state.sessions.discard(conn)
        finally:
            release()

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
