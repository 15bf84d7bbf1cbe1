"""A second recogniser socket racing one that went quiet while the user speaks, or gave no final
after the turn's Finalize (the hedge).

When the current socket has answered nothing to `stall_hedge_after_s` of speech (less than the
stall deadline), or no final came `final_hedge_after_s` after Finalize, the link opens a `Hedge`:
a new socket that replays the audio no final result has confirmed yet (from `origin`) and then
follows the live audio, Finalize included, while the first socket is KEPT and goes on as before.
The link decides the race (deepgram_race.py): the first `Results` from either socket wins; the
winner's results are placed by its own origin, the loser's never reach the stream, and the loser
is closed. A hedge that won is handed over whole (its socket, reader and how much it sent) and
its task ends after the send in flight. A hedge is not a failure: no incident, only counters
(hedge, hedge_won, hedge_lost, hedge_failed; hedge_final for those started after Finalize).

The stall deadline stays the last resort: when it passes (or the first socket fails) while a hedge
is connected, the hedge takes over without having answered, and its own silence is then timed
from its opening; a hedge that cannot connect or fails is dropped quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from voxloop.errors import ProviderError
from voxloop.providers.deepgram_net import PROVIDER, close_quietly, open_socket, send
from voxloop.providers.stt.deepgram_wire import FINALIZE, listen_params

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from voxloop.providers.stt.deepgram_link import Link

log = logging.getLogger("voxloop.stt.deepgram")


class Hedge:
    """The second socket of a race; its task (connect, then send) is owned by the link."""

    def __init__(self, link: Link, chunk: int) -> None:
        self.link, self.chunk = link, chunk
        self.origin = self.sent = link.confirmed  # its audio begins where no final covers
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[ProviderError] | None = None
        self.opened_at = 0.0  # loop time the socket opened
        self.finalized: int | None = None  # the mark Finalize went out for, on this socket
        self.finalize_sent_at: float | None = None
        self.speech = 0  # samples sent while the user spoke (not paused)
        self.done = False  # decided: won or lost; the task stops sending
        self.won = False  # handed over: the socket and reader are the link's now
        self.error: ProviderError | None = None  # the socket failed (after winning: the link's to handle)
        self.wake = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    def lose(self) -> None:
        """The race is over and it did not serve: it stops and closes its socket."""
        self.done = True
        self.wake.set()

    def hand_over(self) -> None:
        self.done = self.won = True
        self.wake.set()

    async def stop(self) -> None:
        """Cancel it (the link is closing, or gave the race up)."""
        self.lose()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    # -- its task -------------------------------------------------------------------------------------
    async def _run(self) -> None:
        link = self.link
        loop = asyncio.get_running_loop()
        try:
            url = link.endpoint.ws_url("/v1/listen", listen_params(link.cfg, link.rate, link.terms))
            try:
                ws = await open_socket(url, link.endpoint, link.cfg, "stt")
            except ProviderError as e:
                link.race.failed(self, e.message)
                return
            if self.done:
                await close_quietly(ws)
                return
            self.ws, self.opened_at = ws, loop.time()
            self.reader = loop.create_task(link.read(ws, self.origin))
            try:
                await self._pump(ws)
            except ProviderError as e:
                self.error = e
                if not self.done:
                    link.race.failed(self, e.message)
        finally:
            if not self.won:
                await self._close()

    async def _pump(self, ws: ClientConnection) -> None:
        """The replay, then the live audio and Finalize, until the race is decided."""
        link, loop = self.link, asyncio.get_running_loop()
        timeout, key = link.cfg.send_timeout_s, link.endpoint.key
        while not self.done:
            self.wake.clear()
            if self.reader is not None and self.reader.done():
                raise self.reader.result()
            if self.sent < link.confirmed:
                raise ProviderError(
                    "Deepgram stt: the audio the second socket was replaying is no longer kept",
                    provider=PROVIDER,
                )
            mark = link.finalize_mark
            limit = link.pushed
            if mark is not None and self.finalized != mark:
                limit = min(limit, max(mark, self.sent))
            if self.sent < limit:
                n = min(limit - self.sent, self.chunk)
                await send(ws, link.audio_at(self.sent, n), timeout, "stt", key)
                self.sent += n
                if not link.quiet:
                    self.speech += n
            elif mark is not None and self.finalized != mark:
                await send(ws, FINALIZE, timeout, "stt", key)
                self.finalized, self.finalize_sent_at = mark, loop.time()
                link.changed.set()
            else:
                await self.wake.wait()

    async def _close(self) -> None:
        reader, ws = self.reader, self.ws
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(reader, return_exceptions=True)
        await close_quietly(ws)
