"""The agent's voice to a Twilio call: mu-law 8 kHz in 20 ms `media` frames at real-time pace, a
`mark` after each block of speech, and `clear` to silence the call at once.

Twilio plays what it is sent from a buffer of its own, so the voice is sent only a little ahead of
the caller's ear (`lead_s`): what Twilio holds is all a barge-in has to drop, and the voice stays
interruptible. Positions count samples handed to `play` since the sink was made.

What the caller has heard: Twilio echoes each `mark` once the audio before it has played. The
playhead is the last echoed mark, moved on at real time since its echo (or since the voice began
flowing, if that is later), never past the next mark not yet echoed. A `clear` makes Twilio echo
the marks it drops too; those names are forgotten first, so their echoes are ignored.

`pause` clears the call and holds the rest from the playhead; `resume` sends it again from there.
`stop` clears and drops everything not yet heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from voxloop.audio.g711 import mulaw_encode
from voxloop.providers.base import Samples
from voxloop.server.remote_sink import RemotePlayerSink
from voxloop.server.telephony import messages as tm

log = logging.getLogger("voxloop.telephony")
Send = Callable[[dict[str, Any]], None]
RATE = 8000
FRAME = 160  # 20 ms at 8 kHz


class TwilioSink(RemotePlayerSink):
    sample_rate = RATE
    _log = log
    _unconfirmed = "no mark came back for position %d (at %d)"

    def __init__(self, stream_sid: str, send: Send, *, lead_s: float = 0.1, grace_s: float = 1.0) -> None:
        super().__init__()
        self.stream_sid = stream_sid
        self._send = send
        self.lead_s, self.grace_s = lead_s, grace_s
        self._audio = bytearray()  # mu-law from position `_base` up to `_queued`
        self._base = 0
        self._sent = 0  # the next position to send
        self._marks: deque[tuple[int, str]] = deque()  # (position, name) not yet sent
        self._pending: dict[str, int] = {}  # marks sent, not yet echoed: name -> position
        self._count = 0  # marks made (their names)
        self._anchor = (0.0, 0)  # (clock, position): the caller's ear was here then
        self._dry_at = 0.0  # when Twilio's buffer runs out of what was sent
        self._dirty = False  # Twilio may hold audio not yet heard (a `clear` has work to do)
        self._wake = asyncio.Event()
        self._pacer: asyncio.Task[None] | None = None

    # -- AudioSink ---------------------------------------------------------------------------------
    def play(self, audio: Samples) -> None:
        if len(audio) == 0:
            return
        self._audio += mulaw_encode(np.asarray(audio, np.float32))
        self._queued += len(audio)
        self._count += 1
        self._marks.append((self._queued, f"voxloop-{self._count}"))
        if self._pacer is None:
            self._pacer = asyncio.get_running_loop().create_task(self._pace())
        self._wake.set()
        self._progress.set()

    def stop(self) -> None:
        self._drop_unplayed()
        self._clear()
        self._marks.clear()
        self._sent = self._base = self._queued
        self._audio.clear()
        self._anchor, self._dry_at = (self._now(), self._queued), self._now()
        self._wake.set()
        self._progress.set()

    def pause(self) -> None:
        if self._held_at is not None:
            return
        self._held_at = at = self.playhead()
        again = sorted(pos for pos in self._pending.values() if pos > at)
        self._clear()
        for pos in reversed(again):  # sent again after resume, under new names (see `acknowledge`)
            self._count += 1
            self._marks.appendleft((pos, f"voxloop-{self._count}"))
        self._sent = at
        self._dry_at = self._now()
        self._wake.set()

    def _resumed(self, at: int) -> None:
        self._wake.set()

    def _deadline(self) -> float:
        """`grace_s` past when what is queued should have played, for a peer that does not echo
        marks. (`drained` waits for the last mark's echo until then.)"""
        unsent = (self._queued - self._sent) / RATE
        return max(self._dry_at, self._now()) + unsent + self.grace_s

    # -- Twilio's side -----------------------------------------------------------------------------
    def acknowledge(self, name: str) -> bool:
        """A `mark` came back: the caller has heard everything before it. False for a name this
        sink is not waiting for (dropped by a clear, or not ours)."""
        pos = self._pending.pop(name, None)
        if pos is None:
            return False
        self._dirty = self._dirty and pos < self._sent
        if pos >= self._anchor[1]:
            self._anchor = (self._now(), pos)
        self._progress.set()
        return True

    def playhead(self) -> int:
        """The next sample the caller will hear."""
        if self._held_at is not None:
            return self._held_at
        t0, p0 = self._anchor
        cap = min([self._sent, *self._pending.values()])
        return max(self._floor, min(cap, p0 + int((self._now() - t0) * RATE)))

    async def aclose(self) -> None:
        if self._pacer is not None:
            self._pacer.cancel()
            await asyncio.gather(self._pacer, return_exceptions=True)

    # -- sending -----------------------------------------------------------------------------------
    def _clear(self) -> None:
        """Empty Twilio's buffer (when it may hold something); its marks' echoes will not count."""
        if self._dirty:
            self._send(tm.clear(self.stream_sid))
            self._dirty = False
        self._pending.clear()

    async def _pace(self) -> None:
        """Send each frame once it is due: when what Twilio holds is down to `lead_s`."""
        while True:
            if self._held_at is not None or self._sent >= self._queued:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = self._now()
            if self._dry_at <= now:  # Twilio has nothing left: the voice (re)starts with this frame
                self._dry_at = now
                if self._sent >= self._anchor[1]:
                    self._anchor = (now, self._sent)
            if (wait := self._dry_at - self.lead_s - now) > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()  # early for a pause or a stop
                continue
            self._send_frame()

    def _send_frame(self) -> None:
        end = min(self._sent + FRAME, self._queued)
        if self._marks and self._sent < self._marks[0][0] < end:
            end = self._marks[0][0]  # a frame ends at a mark, so the mark means what it says
        chunk = bytes(self._audio[self._sent - self._base : end - self._base])
        self._send(tm.media(self.stream_sid, chunk))
        self._dirty = True
        self._dry_at += (end - self._sent) / RATE
        self._sent = end
        while self._marks and self._marks[0][0] <= end:
            pos, name = self._marks.popleft()
            self._pending[name] = pos
            self._send(tm.mark(self.stream_sid, name))
        heard = self.playhead()
        if heard > self._base + 8 * RATE:  # keep what a resume could need, not the whole call
            del self._audio[: heard - self._base]
            self._base = heard
