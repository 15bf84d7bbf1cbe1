"""A fault-injecting TCP proxy on loopback, for tests and `voxloop bench faults`.

`FaultProxy` forwards a listening port to an upstream host:port, byte for byte (HTTP, SSE, WebSocket
alike: it understands none of them). `inject(Fault(kind, ...))` acts on its connections:

    drop      close both sides (FIN) mid-stream
    stall     stop forwarding (direction "up", "down" or "both") for `seconds`, or until `release()`
    delay     add `seconds` of latency to every chunk
    truncate  forward `nbytes` more, then close both sides
    reset     close both sides with a RST (SO_LINGER 0)

and `refuse()` turns new connections away (reset, closed, or not listened for at all) until
`admit()`. A fault's `scope` says where it goes: "now" (every open connection), "next" (the next
connection accepted) or "first" (once: the first connection, open or new, that reaches its
trigger). Its trigger: at once, after `after_bytes` more bytes in its direction (or in `watch`:
a stall of the replies once a request is sent), or `on_response`: after the first upstream->client
bytes from then on (a reply or a stream that has begun; `before`: just before they pass).
`Fault.fired` is an event, set with `fired_at` (loop time) when it acts: tests and the benchmark
wait on it instead of sleeping.

    async with FaultProxy(("127.0.0.1", 8000)) as proxy:
        stall = proxy.inject(Fault("stall", "down", 2.0, on_response=True, scope="first"))
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

from voxloop.bench.proxyconn import Conn, Direction, Fault, Kind, Scope, close_writer

__all__ = ["Direction", "Fault", "FaultProxy", "Kind", "Scope"]


class FaultProxy:
    """Loopback `host:port` -> `upstream`. Use `async with FaultProxy(...) as proxy:`."""

    def __init__(
        self,
        upstream: tuple[str, int],
        host: str = "127.0.0.1",
        port: int = 0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.upstream, self.host, self._port, self.connect_timeout_s = upstream, host, port, connect_timeout_s
        self.accepted = 0  # connections accepted and forwarded, ever
        self.refused = 0  # connections turned away by refuse()
        self._refusing: Literal["", "reset", "close"] = ""
        self._conns: set[Conn] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._next: list[Fault] = []
        self._first: list[Fault] = []
        self._server: asyncio.Server | None = None
        self._unbound = False
        self._changed = asyncio.Condition()

    @property
    def port(self) -> int:
        return self._port

    def url(self, scheme: str = "http", path: str = "") -> str:
        return f"{scheme}://{self.host}:{self._port}{path}"

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._serve, self.host, self._port, reuse_address=True)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for c in list(self._conns):
            c.close(reset=False)
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    # -- faults ------------------------------------------------------------------------------------
    def inject(self, fault: Fault) -> Fault:
        if fault.scope == "next":
            self._next.append(fault)
            return fault
        if fault.scope == "first":
            self._first.append(fault)
        for c in list(self._conns):
            c.attach(fault)
        return fault

    def forget(self, fault: Fault) -> None:
        """A "first" fault has acted: no other connection takes it."""
        if fault in self._first:
            self._first.remove(fault)
        for c in self._conns:
            c.armed = [a for a in c.armed if a.fault is not fault]

    def release(self) -> None:
        """Every stall and delay ends; faults not yet fired are withdrawn."""
        self._next.clear()
        self._first.clear()
        for c in self._conns:
            c.release()

    def close_faulted(self) -> None:
        """Close every connection a fault acted on (one a stall held is of no use to anyone after:
        its held bytes must not meet the next fault)."""
        for c in list(self._conns):
            if c.faulted:
                c.close(reset=False)

    def refuse(self, how: Literal["reset", "close", "unbind"] = "reset") -> None:
        """New connections are reset, closed at once, or (unbind) not listened for at all."""
        if how == "unbind":
            if self._server is not None:
                self._server.close()  # the open connections live on
                self._server = None
                self._unbound = True
        else:
            self._refusing = how

    async def admit(self) -> None:
        """Undo `refuse()`: connections are accepted and forwarded again (on the same port)."""
        self._refusing = ""
        if self._unbound:
            self._unbound = False
            await self.start()

    async def until(self, check: Callable[[], bool]) -> None:
        """Wait until `check()` (re-checked whenever a connection opens or closes) is true."""
        async with self._changed:
            await self._changed.wait_for(check)

    # -- connections -------------------------------------------------------------------------------
    async def _serve(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        conn: Conn | None = None
        try:
            if self._refusing:
                self.refused += 1
                close_writer(cw, self._refusing == "reset")
                return
            try:
                ur, uw = await asyncio.wait_for(
                    asyncio.open_connection(*self.upstream), self.connect_timeout_s
                )
            except (OSError, TimeoutError):
                close_writer(cw, reset=True)  # the upstream is down: so is the proxy, for this client
                return
            conn = Conn(self.forget, (cr, cw), (ur, uw))
            self._conns.add(conn)
            self.accepted += 1
            faults, self._next = self._next, []
            for f in [*faults, *self._first]:
                conn.attach(f)
            await self._notify()
            await conn.run()
        finally:
            if conn is not None:
                self._conns.discard(conn)
            self._handlers.discard(task)
            await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
