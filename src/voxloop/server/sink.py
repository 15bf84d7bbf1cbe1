"""The agent's voice to a WebSocket client, and an honest count of what the client has played.

Audio is sent as soon as it is made (the client buffers it, so playback is gapless). What has been
*played* is what barge-in needs ("what did the user hear?"), and there are two ways to know it:

- the client reports its playhead (`playback` messages): the position of the next sample it will
  play, counted over every sample sent in this session, skipped ones included;
- a client that never reports is modelled as a speaker that plays in real time from the moment the
  audio is sent (like `transports.timeline.TimelineSink`).

The sink tells the client what to do with what it holds: `audio_pause` (hold the sound, keep the
rest: user sound over the agent, not yet judged), `audio_resume`, and `audio_stop` (drop everything
not yet played, and go on from `position`). What was not played by a stop counts as dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from voxloop.providers.base import Samples
from voxloop.server.wire_audio import Pcm16Out, VoiceEncoder
from voxloop.transports.base import AudioSink

log = logging.getLogger("voxloop.server")
Send = Callable[[bytes | dict[str, Any]], None]


class SocketSink(AudioSink):
    def __init__(
        self, sample_rate: int, send: Send, *, grace_s: float = 1.0, encoder: VoiceEncoder | None = None
    ) -> None:
        self.sample_rate = sample_rate
        self._send = send
        self._encoder = encoder or Pcm16Out(sample_rate)  # PCM16 in 100 ms frames, or Opus packets
        self._grace_s = grace_s
        self._sent = 0  # samples sent since the session began
        self._skipped = 0  # samples sent but dropped by a stop before they were played
        self._floor = 0  # the playhead is at least here (everything before the last stop is passed)
        self._reported: int | None = None  # the client's last playhead report, if it reports
        self._anchor = (0.0, 0)  # (clock, position): the modelled speaker plays on from here ...
        self._end = 0.0  # ... until this clock time, when what was sent runs out
        self._held_at: int | None = None  # the modelled playhead while paused
        self._notified = 0  # position of the last audio_stop sent
        self._stops = 0
        self._progress = asyncio.Event()

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    # -- AudioSink ---------------------------------------------------------------------------------
    def play(self, audio: Samples) -> None:
        if len(audio) == 0:
            return
        now = self._now()
        if self._held_at is None and self._end <= now:  # the modelled speaker ran dry: this starts now
            self._anchor, self._end = (now, self._sent), now
        self._put(self._encoder.encode(np.asarray(audio, np.float32)))

    def _put(self, frames: list[tuple[bytes, int]]) -> None:
        n = 0
        for payload, samples in frames:
            self._send(payload)
            n += samples
        self._sent += n
        if self._held_at is None:
            self._end += n / self.sample_rate
        self._progress.set()

    def stop(self) -> None:
        self._stop(always=False)

    def pause(self) -> None:
        if self._held_at is None:
            self._held_at = self._modelled()
            self._send({"type": "audio_pause"})

    def resume(self) -> None:
        if self._held_at is not None:
            now, at = self._now(), self._held_at
            self._held_at = None
            self._anchor, self._end = (now, at), now + (self._sent - at) / self.sample_rate
            self._send({"type": "audio_resume"})
            self._progress.set()

    def played_samples(self) -> int:
        return self.playhead() - self._skipped

    def queued_samples(self) -> int:
        return self._sent

    def busy(self) -> bool:
        return self._held_at is not None or self.playhead() < self._sent

    async def drained(self) -> None:
        """Everything sent has been played: confirmed by the client's reports if it sends them (up
        to `grace_s` past the expected end), else by the real-time model. While paused, it waits.

        After a stop it does not return: whoever stops the voice cancels the reply waiting here.
        Returning would race that cancellation, which `asyncio.wait_for` (Python 3.11) can lose
        when the awaited call finishes on the same turn of the loop: the reply would then end as
        if it had been heard in full."""
        self._put(self._encoder.flush())  # the utterance's last milliseconds (Opus: a whole packet)
        stops = self._stops
        while True:
            if self._stops != stops:
                await asyncio.Event().wait()  # until cancelled (the caller has its own deadline)
            left: float | None = None  # paused: no deadline of our own
            if self._held_at is None:
                if self.playhead() >= self._sent:
                    return
                deadline = self._end + (self._grace_s if self._reported is not None else 0.0)
                left = deadline - self._now()
                if left <= 0:
                    log.debug("the client did not confirm playing to %d (at %d)", self._sent, self.playhead())
                    return
            self._progress.clear()
            # asyncio.timeout rather than wait_for, for the reason above
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._progress.wait()

    # -- the client's side -------------------------------------------------------------------------
    def report(self, position: int) -> None:
        """The client's playhead: the next sample it will play (never beyond what was sent)."""
        position = min(position, self._sent)
        self._reported = position if self._reported is None else max(self._reported, position)
        self._progress.set()

    def cut(self) -> None:
        """The client asked to stop: drop what is unplayed and always answer with `audio_stop`."""
        self._stop(always=True)

    def playhead(self) -> int:
        """The position of the next sample the client will play."""
        if self._reported is not None:
            return max(self._floor, self._reported)
        return max(self._floor, self._modelled())

    def _modelled(self) -> int:
        if self._held_at is not None:
            return self._held_at
        t0, p0 = self._anchor
        return min(self._sent, p0 + int(round((self._now() - t0) * self.sample_rate)))

    def _stop(self, *, always: bool) -> None:
        self._encoder.drop()
        now = self._now()
        self._skipped += self._sent - self.playhead()
        self._floor = self._sent
        self._held_at = None
        self._anchor, self._end = (now, self._sent), now
        self._stops += 1
        if always or self._notified < self._sent:
            self._notified = self._sent
            self._send({"type": "audio_stop", "position": self._sent})
