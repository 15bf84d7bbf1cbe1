"""What the sinks whose audio plays on a remote player (a browser over the socket, a phone call)
share: the player's playhead is known only from its reports or a real-time model of it, so the sink
counts what a stop dropped unplayed, holds a position while paused, and wakes `drained` on progress.

A subclass gives `playhead` (the next sample the player will play, never past `_queued`, at least
`_floor`) and `_deadline` (the clock time by which it should have played everything), keeps
`_queued` (samples handed to `play` so far) and sets `_progress` when the playhead may have moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import abstractmethod

from voxloop.transports.base import AudioSink


class RemotePlayerSink(AudioSink):
    _log = logging.getLogger("voxloop.server")
    _unconfirmed = "the player did not confirm playing to %d (at %d)"  # `drained` gave up waiting

    def __init__(self) -> None:
        self._queued = 0  # samples handed to `play`
        self._floor = 0  # everything before this position is over (played or dropped)
        self._skipped = 0  # samples dropped by a stop before they were played
        self._held_at: int | None = None  # the playhead while paused
        self._stops = 0
        self._progress = asyncio.Event()

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    @abstractmethod
    def playhead(self) -> int:
        """The position of the next sample the player will play."""

    @abstractmethod
    def _deadline(self) -> float:
        """The clock time by which everything queued should have played (not paused)."""

    def _resumed(self, at: int) -> None:  # noqa: B027 - optional: what else a resume from `at` does
        """Play on from position `at` (the playhead `pause` held)."""

    # -- AudioSink ---------------------------------------------------------------------------------
    def resume(self) -> None:
        if self._held_at is not None:
            at, self._held_at = self._held_at, None
            self._resumed(at)
            self._progress.set()

    def played_samples(self) -> int:
        return self.playhead() - self._skipped

    def queued_samples(self) -> int:
        return self._queued

    def busy(self) -> bool:
        return self._held_at is not None or self.playhead() < self._queued

    async def drained(self) -> None:
        """Everything queued has been played, as far as the playhead tells, or `_deadline` has
        passed. While paused, it waits.

        After a stop it does not return: whoever stops the voice cancels the reply waiting here.
        Returning would race that cancellation, which `asyncio.wait_for` (Python 3.11) can lose
        when the awaited call finishes on the same turn of the loop: the reply would then end as
        if it had been heard in full."""
        stops = self._stops
        while True:
            if self._stops != stops:
                await asyncio.Event().wait()  # until cancelled (the caller has its own deadline)
            left: float | None = None  # paused: no deadline of our own
            if self._held_at is None:
                if self.playhead() >= self._queued:
                    return
                left = self._deadline() - self._now()
                if left <= 0:
                    self._log.debug(self._unconfirmed, self._queued, self.playhead())
                    return
            self._progress.clear()
            # asyncio.timeout rather than wait_for, for the reason above
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._progress.wait()

    # -- for a stop --------------------------------------------------------------------------------
    def _drop_unplayed(self) -> None:
        """Count what the player had not played as dropped, and end any pause: the player is
        to go on from `_queued`, with nothing left to play."""
        self._skipped += self._queued - self.playhead()
        self._floor = self._queued
        self._held_at = None
        self._stops += 1
