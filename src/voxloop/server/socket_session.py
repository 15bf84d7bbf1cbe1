"""Opening a session for a WebSocket, and the socket glue every session shares.

`open_session` is the door of /v1/agent and /v1/telephony/twilio once the caller has been let
through (keys, origin, signature): it refuses while the server drains, the models load or
admission control says no (`ServerState.refusal`, answered by the route in its protocol's words),
else holds a `max_sessions` slot until the session has ended, accepts, gives the session its
observers (admission's load, metrics, log ids), keeps it on the drain list while it runs, and frees
everything however it ends.

`Outbox` is one queue and one sender task per socket, so what is sent leaves in the order it was
made; `receive` reads the next message within an idle timeout; `first_of` runs a socket's loops
(receiving, and hearing or draining) until one ends; `voice_session` starts the voice session a
socket feeds. (Deepgram's /v1/listen and /v1/speak use the outbox and `receive` too.)
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from starlette.types import Message
from starlette.websockets import WebSocket

from voxloop.agent import events as ev
from voxloop.agent.providers import Providers
from voxloop.agent.session import VoiceSession
from voxloop.config import AgentConfig
from voxloop.transports.base import AudioSink

if TYPE_CHECKING:
    from voxloop.server.state import Refusal, ServerState

Listener = Callable[[ev.Event], None]


class Served(Protocol):
    """A socket's session as `open_session` runs it (drain.py's `Drainable`, and its events)."""

    observers: list[Listener]

    async def run(self) -> None: ...

    def drain(self) -> None: ...

    def cut(self) -> None: ...


async def open_session(
    state: ServerState,
    ws: WebSocket,
    make: Callable[[str, Callable[[], None]], Served],
    refuse: Callable[[Refusal], Awaitable[None]],
) -> None:
    """Serve `ws` with `make(session_id, release)`'s session (which calls `release` once it has
    ended, to free its slot before its socket closes), or `refuse` it."""
    if (refusal := state.refusal()) is not None:
        await refuse(refusal)
        return
    slot = state.take_slot()
    try:
        await ws.accept()
        session_id = uuid.uuid4().hex[:12]
        served = make(session_id, slot.release)
        served.observers += [state.observe, *(observer(session_id) for observer in state.observers)]
        state.sessions.add(served)
        try:
            await served.run()
        finally:
            state.sessions.discard(served)
    finally:
        slot.release()


def voice_session(
    providers: Providers, sink: AudioSink, config: AgentConfig, listeners: Iterable[Listener]
) -> VoiceSession:
    """A voice session speaking into `sink`, its events to each of `listeners`."""
    session = VoiceSession(providers, sink, config)
    for listener in listeners:
        session.subscribe(listener)
    return session


@asynccontextmanager
async def first_of(*work: Coroutine[Any, Any, Any]) -> AsyncIterator[list[asyncio.Task[Any]]]:
    """Run `work` as tasks until the first ends; the block then reads them (`done`, `result`),
    and on leaving it the others are cancelled and waited for."""
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(w) for w in work]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def receive(ws: WebSocket, idle_s: float | None) -> Message | None:
    """The socket's next message, or None when nothing came for `idle_s` seconds (None: no limit)."""
    try:
        async with asyncio.timeout(idle_s):
            return await ws.receive()
    except TimeoutError:
        return None


class Outbox:
    """What a socket sends, in order, by one sender task (`start`); once the client has gone
    (`gone`, also set by whoever sees it leave) the rest is dropped. An item `put` with `stale`
    is dropped if that says so when its turn comes (audio cleared while queued)."""

    def __init__(self, ws: WebSocket, name: Callable[[], str], log: logging.Logger) -> None:
        self.ws, self._name, self._log = ws, name, log  # `name`: the socket, in log lines
        self.gone = False
        self._queue: asyncio.Queue[tuple[bytes | str, Callable[[], bool] | None] | None] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sender = asyncio.get_running_loop().create_task(self._send_loop())

    def put(self, item: bytes | str, stale: Callable[[], bool] | None = None) -> None:
        self._queue.put_nowait((item, stale))

    async def _send_loop(self) -> None:
        while (entry := await self._queue.get()) is not None:
            item, stale = entry
            if self.gone or (stale is not None and stale()):
                continue
            try:
                if isinstance(item, bytes):
                    await self.ws.send_bytes(item)
                else:
                    await self.ws.send_text(item)
            except Exception:  # the client went away: what is left has nowhere to go
                self._log.debug("%s: send failed", self._name(), exc_info=True)
                self.gone = True

    async def close(self, code: int, reason: str = "") -> None:
        """What is still queued goes out (5 s at most), then the close frame with its reason,
        unless the client has gone."""
        self._queue.put_nowait(None)
        if self._sender is not None:
            try:
                await asyncio.wait_for(self._sender, timeout=5.0)
            except TimeoutError:
                self._log.warning("%s: the client did not take its last messages", self._name())
        if not self.gone:
            try:
                await self.ws.close(code, reason)
            except Exception:  # the client went away meanwhile
                self._log.debug("%s: close failed", self._name(), exc_info=True)
