"""Scripted status faults in front of an ASGI app (voxloop's server), for tests and `bench faults`.

`ScriptedFaults(app)` passes every request through to `app`, except that `fail(path, status,
count)` makes the next `count` requests whose path starts with `path` get `status` instead: 5xx,
429 with `Retry-After`, any 4xx. The body carries both OpenAI's error shape and Deepgram's
(`err_code`, `err_msg`), so either client reads it as its own. A WebSocket handshake on that path
is refused with the status (the ASGI denial-response extension, as uvicorn offers it; else a
plain close, which the client sees as a 403). Each rule keeps when it answered (`answered_at`,
loop time) and an event (`answered`) set at its first answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
CODES = {429: "rate_limit_exceeded", 500: "server_error", 502: "bad_gateway", 503: "service_unavailable"}


@dataclass(eq=False)
class Rule:
    path: str  # a path prefix, such as /v1/chat/completions
    status: int
    count: int | None = 1  # requests it answers (None: until cleared)
    retry_after: float | None = None  # seconds, sent as Retry-After
    message: str = "a scripted fault"
    answered_at: list[float] = field(default_factory=list)
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def spent(self) -> bool:
        return self.count is not None and len(self.answered_at) >= self.count

    def headers(self) -> list[tuple[bytes, bytes]]:
        h = [(b"content-type", b"application/json")]
        if self.retry_after is not None:
            h.append((b"retry-after", f"{self.retry_after:g}".encode()))
        return h

    def body(self) -> bytes:
        code = CODES.get(self.status, "invalid_request_error" if self.status < 500 else "server_error")
        return json.dumps(
            {
                "error": {"message": self.message, "type": code, "code": code},
                "err_code": code.upper(),
                "err_msg": self.message,
            }
        ).encode()


class ScriptedFaults:
    """ASGI middleware: the app, with status faults on command (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.rules: list[Rule] = []
        self.passed = 0  # requests and sockets that reached the app

    def fail(
        self,
        path: str,
        status: int,
        count: int | None = 1,
        retry_after: float | None = None,
        message: str = "a scripted fault",
    ) -> Rule:
        rule = Rule(path, status, count, retry_after, message)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def _take(self, path: str) -> Rule | None:
        for rule in self.rules:
            if path.startswith(rule.path) and not rule.spent:
                rule.answered_at.append(asyncio.get_running_loop().time())
                rule.answered.set()
                if rule.spent:
                    self.rules.remove(rule)
                return rule
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = self._take(scope["path"]) if scope["type"] in ("http", "websocket") else None
        if rule is None:
            if scope["type"] != "lifespan":
                self.passed += 1
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await self._answer_http(rule, receive, send)
        else:
            await self._refuse_socket(rule, scope, receive, send)

    @staticmethod
    async def _answer_http(rule: Rule, receive: Receive, send: Send) -> None:
        while True:  # read the request body first, as a server would
            msg = await receive()
            if msg["type"] != "http.request" or not msg.get("more_body"):
                break
        await send({"type": "http.response.start", "status": rule.status, "headers": rule.headers()})
        await send({"type": "http.response.body", "body": rule.body()})

    @staticmethod
    async def _refuse_socket(rule: Rule, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            start = {
                "type": "websocket.http.response.start",
                "status": rule.status,
                "headers": rule.headers(),
            }
            await send(start)
            await send({"type": "websocket.http.response.body", "body": rule.body()})
        else:
            await send({"type": "websocket.close", "code": 1008})
