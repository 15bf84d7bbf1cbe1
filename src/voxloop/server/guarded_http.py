"""uvicorn's HTTP/1.1 protocol with the limits a server facing the network needs.

- A cap on open connections (`max_connections`, WebSockets included), so silent sockets cannot use
  up the process's file descriptors. At the cap, a new connection takes the place of the one that
  has waited longest for a request (one that says nothing is the likeliest abuser); when every
  connection is busy with a request or a WebSocket, the new one is answered 503 and closed.
- A deadline for a request's headers (`handshake_timeout_s`), from the connection's start and
  again after every response: a client that connects and says nothing (or trickles its headers)
  is closed. uvicorn itself only times out a keep-alive connection between requests.
- Headers larger than `max_header_bytes` are answered 431 (uvicorn says 400), and the rest of
  what the client is sending is read and dropped for a moment before the close, so the client
  gets the answer rather than a reset.

Each of these is logged at most once a second (`logs.refusals`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from voxloop.server.logs import refusals
from voxloop.server.settings import ServerSettings

LINGER_S = 2.0  # how long a refused client may go on sending before the close
LINGER_BYTES = 1024 * 1024


def _response(status: int, reason: str, text: str, extra: str = "") -> bytes:
    body = text.encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n{extra}\r\n"
    )
    return head.encode() + body


BUSY = _response(
    503, "Service Unavailable", "too many open connections: try again shortly\n", "retry-after: 1\r\n"
)
TOO_LARGE = _response(431, "Request Header Fields Too Large", "the request's headers are too large\n")


class GuardedH11Protocol(H11Protocol):
    limits = ServerSettings()  # replaced per server by `guarded_protocol`

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._deadline: asyncio.TimerHandle | None = None  # armed while a request is awaited
        self._lingering = -1  # bytes dropped since a refusal; -1: not refused

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._make_room():
            refusals.log(
                logging.WARNING, "refused a connection: %d are open and busy", self.limits.max_connections
            )
            self._refuse(BUSY, linger=False)  # nothing was sent yet: closed at once
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering >= 0:  # refused: what is still coming is dropped
            self._lingering += len(data)
            if self._lingering > LINGER_BYTES:
                self.transport.close()
            return
        if self._deadline is not None and self._head_too_large(data):  # awaiting a request's headers
            refusals.log(
                logging.INFO,
                "refused a request whose headers are over %d bytes",
                self.limits.max_header_bytes,
            )
            self._refuse(TOO_LARGE, linger=True)
            return
        scope = self.scope
        super().data_received(data)
        if self.scope is not scope:  # a request's headers are in: the deadline is met
            self._disarm()

    def on_response_complete(self) -> None:
        scope = self.scope
        super().on_response_complete()
        if self.scope is scope and not self.transport.is_closing():
            self._arm()  # the next request's headers are due within the deadline too

    # -- helpers -----------------------------------------------------------------------------------
    def _make_room(self) -> bool:
        """Close the connection that has waited longest for a request, if any does."""
        waiting = [
            c
            for c in self.connections
            if isinstance(c, GuardedH11Protocol) and c is not self and c._deadline is not None
        ]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c._deadline.when() if c._deadline else 0.0)
        refusals.log(logging.INFO, "closed the connection idle longest to make room for a new one")
        oldest._disarm()
        oldest.transport.close()
        return True

    def _head_too_large(self, data: bytes) -> bool:
        """Whether the request's headers, with `data`, are over the limit. (h11's own limit holds
        only while the headers are incomplete: a large head that arrives whole passes it.)"""
        head = self.conn.trailing_data[0] + data
        end = head.find(b"\r\n\r\n")
        return (end + 4 if end >= 0 else len(head)) > self.limits.max_header_bytes

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.limits.handshake_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return  # closed already, or now a WebSocket's
        refusals.log(
            logging.INFO,
            "closed a connection that sent no request within %g s",
            self.limits.handshake_timeout_s,
        )
        self.transport.close()

    def _refuse(self, response: bytes, *, linger: bool) -> None:
        """Answer and stop reading requests; `linger`: close once the client is done sending (or
        soon), so that the answer is not lost to a reset."""
        self._disarm()
        self._lingering = 0
        self.transport.write(response)
        if not linger:
            self.transport.close()
            return
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)


def guarded_protocol(settings: ServerSettings) -> type[GuardedH11Protocol]:
    """The protocol class for uvicorn's `http=` with these limits."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": settings})
