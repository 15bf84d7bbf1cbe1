"""The link's side of hedging its recogniser socket: when to hedge, who wins, the hand-over.

`Race` belongs to one `Link` (deepgram_link.py) and reads and sets its current socket's state
(the socket, its reader, origin, samples sent, Finalize, and how long it has been silent): it is
the part of the link about a second socket, kept in a file of its own.

- `due_in`/`check`: `stall_hedge_after_s` of the user's speech sent (not paused, no Finalize out)
  and as long with no message on the current socket, and less than the stall deadline: a `Hedge`
  (deepgram_hedge.py) starts, once per silence.
- `hedge_final`: the stream waited `final_hedge_after_s` after Finalize with no final (its clock,
  deepgram.py): a `Hedge` replays the turn, Finalize included, once a turn.
- `may_hand`: a `Results` on either socket decides the race: the current socket's, the hedge is
  closed; the hedge's, it becomes the current socket and the first one is aborted.
- `promote`: the current socket failed (its stall deadline passed, it dropped) while a connected
  hedge races it: the hedge takes over with its replay under way, its silence timed from its
  opening and not hedged again; this is a failure of the first socket (an incident), not of the
  hedge.
- `settle` (the link's owner task, after a hand-over): the hedge's send in flight counted, the
  replaced sockets closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from voxloop.errors import ProviderError
from voxloop.providers.deepgram_net import PROVIDER, close_quietly
from voxloop.providers.recovery import Incident, report
from voxloop.providers.stt.deepgram_hedge import Hedge

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from voxloop.providers.stt.deepgram_link import Link

log = logging.getLogger("voxloop.stt.deepgram")
Retired = tuple["ClientConnection | None", "asyncio.Task[ProviderError] | None"]


class Race:
    def __init__(self, link: Link, chunk: int) -> None:
        self.link, self.chunk = link, chunk
        self.hedge: Hedge | None = None  # a second socket racing the current one
        self._hedged_at: float | None = None  # the link's `_heard_at` when the last hedge began
        self._handover: Hedge | None = None  # a hedge that took over, not settled yet
        self._retired: list[Retired] = []
        self._ending: list[Hedge] = []  # hedges that lost or failed, closing their sockets

    def _end(self, hedge: Hedge) -> None:
        hedge.lose()
        self._ending = [h for h in self._ending if not h.task.done()] + [hedge]

    def wake(self) -> None:
        if self.hedge is not None:
            self.hedge.wake.set()

    # -- when ----------------------------------------------------------------------------------------
    def due_in(self, now: float) -> float:
        """Seconds until the current socket is hedged (inf: not while this silence lasts)."""
        link = self.link
        after, cfg = link.cfg.stall_hedge_after_s, link.cfg
        if after <= 0 or after >= cfg.stall_timeout_s or self.hedge is not None:
            return float("inf")  # (no stall deadline: no hedge either)
        if self._hedged_at == link._heard_at or link.quiet or link.finalize_sent_at is not None:
            return float("inf")  # hedged once this silence; the user paused; Finalize is out
        if link._unanswered < after * link.rate or link._stalls >= cfg.retry.max_retries:
            return float("inf")
        return max(0.0, link._heard_at + after - now)

    def check(self, now: float) -> None:
        if self.due_in(now) > 0:
            return
        link = self.link
        self._hedged_at = link._heard_at
        self._start(f"no answer to {link._unanswered / link.rate:.2f} s of speech")

    def hedge_final(self) -> bool:
        """Finalize went out and no final came within `final_hedge_after_s` (the stream's clock): a
        second socket replays the turn's unconfirmed audio, sends Finalize and races the first.
        False: none started (one races already, or the link is between sockets and replays anyway)."""
        link = self.link
        if self.hedge is not None or link.socket is None or link.finalize_sent_at is None:
            return False
        link.counters["hedge_final"] += 1
        self._start(f"no final {link.cfg.final_hedge_after_s:g} s after Finalize")
        return True

    def _start(self, why: str) -> None:
        link = self.link
        self.hedge = Hedge(link, self.chunk)
        owed = (link.pushed - link.confirmed) / link.rate
        link.counters["hedge"] += 1
        link.counters["hedge_replayed_ms"] += round(owed * 1000)
        log.info(
            "Deepgram stt: %s; a second socket replays the %.2f s not yet confirmed and races this"
            " one (the first to answer serves)",
            why,
            owed,
        )

    # -- who wins --------------------------------------------------------------------------------------
    def may_hand(self, ws: ClientConnection) -> bool:
        """A `Results` came on `ws`: may it be handed on? (It decides a race under way.)"""
        link, hedge = self.link, self.hedge
        if hedge is None:
            return ws is link.socket
        if ws is link.socket:
            self.hedge = None
            self._end(hedge)
            link.counters["hedge_lost"] += 1
            log.info("Deepgram stt: the first socket answered first and serves; the second is closed")
            return True
        if ws is hedge.ws:
            self._switch(hedge, answered=True)
            link.counters["hedge_won"] += 1
            log.info("Deepgram stt: the second socket answered first and serves; the first is closed")
            return True
        return False

    def promote(self, e: ProviderError) -> bool:
        """The current socket failed while a connected hedge races it: the hedge takes over."""
        hedge = self.hedge
        if hedge is None or hedge.ws is None or hedge.done or not e.retryable:
            return False
        self._switch(hedge, answered=False)
        self.link.counters["reconnect"] += 1
        self.link.counters["hedge_took_over"] += 1
        message = f"{e.message}; the second socket, replaying since the hedge, takes over"
        report(Incident("retry", "stt", PROVIDER, e.category, message, attempt=1))
        return True

    def failed(self, hedge: Hedge, reason: str) -> None:
        """The hedge could not connect, or its socket failed, before it won: the first goes on."""
        if self.hedge is hedge:
            self.hedge = None
            self._end(hedge)
            self.link.counters["hedge_failed"] += 1
            log.info("Deepgram stt: the second socket failed (%s); the first goes on", reason)

    def _switch(self, hedge: Hedge, *, answered: bool) -> None:
        """The hedge becomes the current socket; the first is aborted (`settle` closes it)."""
        link = self.link
        self.hedge = None
        hedge.hand_over()
        old = link.socket
        self._retired.append((old, link._reader))
        if old is not None:
            old.transport.abort()  # a send blocked on it ends now
        link.socket, link._reader, link._origin, link._sent = hedge.ws, hedge.reader, hedge.origin, hedge.sent
        link._drop = None  # a recycle asked for meant the replaced socket (`promote`), not this one
        link.finalize_sent_at = hedge.finalize_sent_at if hedge.finalized == link.finalize_mark else None
        if answered:
            link._heard_at, link._unanswered, link._stalls = asyncio.get_running_loop().time(), 0, 0
        else:  # its own silence, timed from its opening; not hedged again (the deadline rules)
            link._heard_at, link._unanswered = hedge.opened_at, hedge.speech
            self._hedged_at = link._heard_at
        self._handover = hedge
        link._wake.set()
        link.changed.set()

    # -- the owner task's part ---------------------------------------------------------------------------
    async def settle(self) -> None:
        """After a hand-over: the hedge's last send counted, the replaced sockets closed."""
        link = self.link
        hedge, self._handover = self._handover, None
        if hedge is not None:
            await asyncio.gather(hedge.task, return_exceptions=True)  # its send in flight
            if link.socket is hedge.ws:
                link._sent = hedge.sent
                if hedge.error is not None:
                    await link._dropped(hedge.error)
        retired, self._retired = self._retired, []
        for ws, reader in retired:
            if reader is not None:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            await close_quietly(ws)

    async def give_up(self) -> None:
        """The current socket is dropped and no hedge can take over: a racing one is stopped."""
        hedge, self.hedge = self.hedge, None
        if hedge is not None:
            self.link.counters["hedge_failed"] += 1
            await hedge.stop()

    async def stop(self) -> None:
        hedge, self.hedge = self.hedge, None
        for h in [*self._ending, *([hedge] if hedge is not None else [])]:
            await h.stop()
        self._ending = []
        await self.settle()
