"""Graceful shutdown of `voxloop serve`: SIGTERM drains the live sessions before the process exits.

On SIGTERM the server goes unready (`/readyz` answers 503, so a load balancer sends new callers to
another server), refuses new sessions with `shutting_down`, and tells each live session to end once
it is idle: a reply under way is finished and played, a user's turn under way is heard and
answered. Each then gets the `shutting_down` error and a close with 1012 (service restart: connect
again). Whatever is still talking after the drain time is cut off (the reply recorded as
interrupted), and the server stops and exits 0. A second SIGTERM cuts off at once; Ctrl+C (SIGINT)
stops as before, without a drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Generator
from typing import Any, Protocol

import uvicorn

log = logging.getLogger("voxloop.server")
GOODBYE = "the server is shutting down: connect again to reach another server"  # shutting_down's text
CUT_WAIT_S = 5.0  # after the cut, how long sessions get to send their last messages


class Drainable(Protocol):
    def drain(self) -> None:
        """End the session once it is idle."""

    def cut(self) -> None:
        """End the session now."""


class Sessions:
    """The live voice sessions, and whether the server is draining them."""

    def __init__(self) -> None:
        self.live: set[Drainable] = set()
        self.draining = False
        self._empty = asyncio.Event()
        self._empty.set()

    def add(self, conn: Drainable) -> None:
        self.live.add(conn)
        self._empty.clear()
        if self.draining:  # it got past the door just as the drain began
            conn.drain()

    def discard(self, conn: Drainable) -> None:
        self.live.discard(conn)
        if not self.live:
            self._empty.set()

    def cut(self) -> None:
        for conn in list(self.live):
            conn.cut()

    async def drain(self, seconds: float) -> None:
        """Refuse new sessions, let the live ones finish (at most `seconds`), then cut the rest."""
        self.draining = True
        log.info(
            "shutting down: new sessions are refused; %d live session(s) finish their replies (at most %g s)",
            len(self.live),
            seconds,
        )
        for conn in list(self.live):
            conn.drain()
        if await self._wait_empty(seconds):
            log.info("shutting down: every session has ended")
            return
        log.warning("shutting down: %d session(s) still talking after %g s: cut off", len(self.live), seconds)
        self.cut()
        if not await self._wait_empty(CUT_WAIT_S):
            log.warning("shutting down: %d session(s) did not end; closing their sockets", len(self.live))

    async def _wait_empty(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._empty.wait()
        except TimeoutError:
            return False
        return True


class GracefulServer(uvicorn.Server):
    """uvicorn, with SIGTERM handed to `on_term` (called on the event loop) instead of stopping at
    once. uvicorn's own handling would also raise the signal again after the server stopped, and so
    end the process with SIGTERM's status rather than 0."""

    def __init__(self, config: uvicorn.Config, on_term: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_term = on_term

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()

        def term(sig: int, frame: Any) -> None:
            loop.call_soon_threadsafe(self.on_term)

        old_term = signal.getsignal(signal.SIGTERM) or signal.SIG_DFL
        try:
            with super().capture_signals():  # SIGINT: uvicorn's (and Ctrl+C's KeyboardInterrupt after)
                signal.signal(signal.SIGTERM, term)  # uvicorn took SIGTERM too: take it back
                yield
        finally:
            signal.signal(signal.SIGTERM, old_term)


class Shutdown:
    """What SIGTERM starts: the drain, then the server's stop. Owns the drain task."""

    def __init__(self, sessions: Sessions, drain_s: float) -> None:
        self.sessions, self.drain_s = sessions, drain_s
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    def __call__(self) -> None:
        if self.task is None:
            log.info("SIGTERM: draining")
            self.task = asyncio.get_running_loop().create_task(self._run())
        else:
            log.info("SIGTERM again: cutting the live sessions off now")
            self.sessions.cut()

    async def _run(self) -> None:
        try:
            await self.sessions.drain(self.drain_s)
        finally:
            if self.server is not None:
                self.server.should_exit = True

    async def aclose(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
