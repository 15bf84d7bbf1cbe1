"""Which Host names the server answers to: a guard against DNS rebinding.

A web page on another site can make its own name resolve to 127.0.0.1 and then talk to a server
on this machine as if it were its own origin. Its requests still carry its name in `Host`, so the
server answers only requests addressed to a loopback name, an IP address (a rebinding needs a
name), or a name it was told to expect (`--allow-host`); the rest are refused with 403 before any
route sees them."""

from __future__ import annotations

import ipaddress
import logging

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from voxloop.server.logs import refusals


def host_name(host: str) -> str:
    """The name in a Host header, without its port: `[::1]:8000` -> `::1`, `Example.:80` -> `example`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def host_allowed(host: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a request addressed to `host` (its Host header) may be served."""
    if host is None:  # HTTP/1.0 without a Host: not a browser, which always sends one
        return True
    name = host_name(host)
    if "*" in allowed or name in {host_name(a) for a in allowed}:
        return True
    if name == "localhost" or name.endswith(".localhost"):  # browsers resolve these to loopback
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostGuard:
    """ASGI middleware: requests and WebSocket handshakes to any other Host get 403."""

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...] = ()) -> None:
        self.app, self.allowed = app, allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host")
        if host_allowed(host, self.allowed):
            await self.app(scope, receive, send)
            return
        message = "this server does not answer to that Host name (see voxloop serve --allow-host)"
        refusals.log(logging.INFO, "refused a request for host %r: not an allowed host", (host or "")[:100])
        response = JSONResponse({"error": {"code": "forbidden_host", "message": message}}, status_code=403)
        if scope["type"] == "http":
            await response(scope, receive, send)
            return
        ws = WebSocket(scope, receive, send)
        try:
            await ws.send_denial_response(response)
        except RuntimeError:  # the ASGI server cannot send a response: a plain refusal (403)
            await ws.close(code=1008)
