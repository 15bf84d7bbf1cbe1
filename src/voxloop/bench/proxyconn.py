"""One connection through `FaultProxy` (faultproxy.py): two pumps, and the faults acting on it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["up", "down", "both"]  # up: client -> upstream
Kind = Literal["drop", "stall", "delay", "truncate", "reset"]
Scope = Literal["now", "next", "first"]
UP, DOWN = "up", "down"
CHUNK = 65536


@dataclass(eq=False)
class Fault:
    kind: Kind
    direction: Direction = "both"
    seconds: float | None = None  # stall: how long (None: until release()); delay: per chunk
    nbytes: int = 0  # truncate: bytes still forwarded
    after_bytes: int | None = None  # trigger: after this many more bytes in `direction` (or `watch`)
    on_response: bool = False  # trigger: after the first upstream->client bytes
    scope: Scope = "now"
    watch: Direction | None = None  # the direction `after_bytes` counts (None: `direction`)
    before: bool = False  # on_response: act before those first bytes are forwarded
    fired: asyncio.Event = field(default_factory=asyncio.Event)
    fired_at: float | None = None
    hits: int = 0  # connections it acted on

    def covers(self, d: str) -> bool:
        return self.direction in ("both", d)

    def counts(self, d: str) -> bool:
        return (self.watch or self.direction) in ("both", d)

    @property
    def immediate(self) -> bool:
        return self.after_bytes in (None, 0) and not self.on_response


@dataclass(eq=False)
class _Armed:
    fault: Fault
    seen: int = 0  # bytes in its direction since it was attached


def _linger0(w: asyncio.StreamWriter) -> None:
    sock = w.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def close_writer(w: asyncio.StreamWriter, reset: bool) -> None:
    if reset:
        _linger0(w)
        w.transport.abort()
    else:
        w.close()


class Conn:
    """One proxied connection: two pumps, and the faults acting on it."""

    def __init__(
        self,
        forget: Callable[[Fault], None],
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.forget = forget
        (self.cr, self.cw), (self.ur, self.uw) = client, upstream
        self.flowing = {UP: asyncio.Event(), DOWN: asyncio.Event()}
        for e in self.flowing.values():
            e.set()
        self.delay = {UP: 0.0, DOWN: 0.0}
        self.budget: dict[str, int | None] = {UP: None, DOWN: None}
        self.armed: list[_Armed] = []
        self.timers: list[asyncio.TimerHandle] = []
        self.pumps: list[asyncio.Task[None]] = []
        self.closed = False
        self.faulted = False  # a fault acted on it

    async def run(self) -> None:
        if self.closed:  # a fault for the next connection closed it at once
            return
        loop = asyncio.get_running_loop()
        self.pumps = [
            loop.create_task(self._pump(UP, self.cr, self.uw)),
            loop.create_task(self._pump(DOWN, self.ur, self.cw)),
        ]
        try:
            await asyncio.gather(*self.pumps, return_exceptions=True)
        finally:
            self.close(reset=False)
            await asyncio.gather(*self.pumps, return_exceptions=True)

    def attach(self, fault: Fault) -> None:
        if fault.immediate:
            self._fire(fault)
        else:
            self.armed.append(_Armed(fault))

    async def _pump(self, d: str, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while not self.closed:
                data = await r.read(CHUNK)
                if not data:
                    if w.can_write_eof():
                        w.write_eof()  # half close: the other direction goes on
                    return
                await self._forward(d, data, w)
        except (ConnectionError, OSError):
            self.close(reset=True)  # one side broke: the other hears a reset too

    async def _forward(self, d: str, data: bytes, w: asyncio.StreamWriter) -> None:
        while data and not self.closed:
            if d == DOWN:
                for a in [a for a in self.armed if a.fault.on_response and a.fault.before]:
                    self._trip(a)
                if self.closed:
                    return
            cut = len(data)
            for a in self.armed:
                if a.fault.after_bytes is not None and a.fault.counts(d):
                    cut = min(cut, max(1, a.fault.after_bytes - a.seen))
            head, data = data[:cut], data[cut:]
            await self._send(d, head, w)
            for a in list(self.armed):
                if a.fault.counts(d):
                    a.seen += len(head)
                after = a.fault.after_bytes
                if (after is not None and a.seen >= after) or (a.fault.on_response and d == DOWN):
                    self._trip(a)

    def _trip(self, a: _Armed) -> None:
        if a in self.armed:
            self.armed.remove(a)
            self._fire(a.fault)

    async def _send(self, d: str, data: bytes, w: asyncio.StreamWriter) -> None:
        if self.delay[d] > 0:
            await asyncio.sleep(self.delay[d])  # the injected latency itself
        await self.flowing[d].wait()
        budget = self.budget[d]
        if budget is not None:
            data = data[:budget]
            self.budget[d] = budget - len(data)
        if data:
            w.write(data)
            await w.drain()
        if self.budget[d] == 0:
            self.close(reset=False)

    def _fire(self, f: Fault) -> None:
        if f.scope == "first":
            if f.fired.is_set():
                return
            self.forget(f)
        f.hits += 1
        self.faulted = True
        if f.fired_at is None:
            f.fired_at = asyncio.get_running_loop().time()
        f.fired.set()
        dirs = [x for x in (UP, DOWN) if f.covers(x)]
        if f.kind in ("drop", "reset"):
            self.close(reset=f.kind == "reset")
        elif f.kind == "stall":
            for x in dirs:
                self.flowing[x].clear()
            if f.seconds is not None:
                loop = asyncio.get_running_loop()
                self.timers.append(loop.call_later(f.seconds, self.unstall, dirs))
        elif f.kind == "delay":
            for x in dirs:
                self.delay[x] = f.seconds or 0.0
        elif f.kind == "truncate":
            for x in dirs:
                self.budget[x] = f.nbytes
            if f.nbytes == 0:
                self.close(reset=False)

    def unstall(self, dirs: list[str] | None = None) -> None:
        for x in dirs or (UP, DOWN):
            self.flowing[x].set()

    def release(self) -> None:
        self.unstall()
        self.delay = {UP: 0.0, DOWN: 0.0}
        self.armed.clear()

    def close(self, reset: bool) -> None:
        if self.closed:
            return
        self.closed = True
        for h in self.timers:
            h.cancel()
        for w in (self.cw, self.uw):
            close_writer(w, reset)
        me = asyncio.current_task()
        for t in self.pumps:
            if t is not me:
                t.cancel()
