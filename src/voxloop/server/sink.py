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

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from voxloop.providers.base import Samples
from voxloop.server.remote_sink import RemotePlayerSink
from voxloop.server.wire_audio import Pcm16Out, VoiceEncoder

log = logging.getLogger("voxloop.server")
Send = Callable[[bytes | dict[str, Any]], None]


class SocketSink(RemotePlayerSink):
    _log = log
    _unconfirmed = "the client did not confirm playing to %d (at %d)"

    def __init__(
        self, sample_rate: int, send: Send, *, grace_s: float = 1.0, encoder: VoiceEncoder | None = None
    ) -> None:
        super().__init__()  # `_queued`: samples sent since the session began (all at once: none wait)
        self.sample_rate = sample_rate
        self._send = send
        self._encoder = encoder or Pcm16Out(sample_rate)  # PCM16 in 100 ms frames, or Opus packets
        self._grace_s = grace_s
        self._reported: int | None = None  # the client's last playhead report, if it reports
        self._anchor = (0.0, 0)  # (clock, position): the modelled speaker plays on from here ...
        self._end = 0.0  # ... until this clock time, when what was sent runs out
        self._notified = 0  # position of the last audio_stop sent

    # -- AudioSink ---------------------------------------------------------------------------------
    def play(self, audio: Samples) -> None:
        if len(audio) == 0:
            return
        now = self._now()
        if self._held_at is None and self._end <= now:  # the modelled speaker ran dry: this starts now
            self._anchor, self._end = (now, self._queued), now
        self._put(self._encoder.encode(np.asarray(audio, np.float32)))

    def _put(self, frames: list[tuple[bytes, int]]) -> None:
        n = 0
        for payload, samples in frames:
            self._send(payload)
            n += samples
        self._queued += n
        if self._held_at is None:
            self._end += n / self.sample_rate
        self._progress.set()

    def stop(self) -> None:
        self._stop(always=False)

    def pause(self) -> None:
        if self._held_at is None:
            self._held_at = self._modelled()
            self._send({"type": "audio_pause"})

    def _resumed(self, at: int) -> None:
        now = self._now()
        self._anchor, self._end = (now, at), now + (self._queued - at) / self.sample_rate
        self._send({"type": "audio_resume"})

    async def drained(self) -> None:
        """Everything sent has been played: confirmed by the client's reports if it sends them (up
        to `grace_s` past the expected end), else by the real-time model. While paused, it waits;
        after a stop it waits to be cancelled (`RemotePlayerSink.drained` says why)."""
        self._put(self._encoder.flush())  # the utterance's last milliseconds (Opus: a whole packet)
        await super().drained()

    def _deadline(self) -> float:
        return self._end + (self._grace_s if self._reported is not None else 0.0)

    # -- the client's side -------------------------------------------------------------------------
    def report(self, position: int) -> None:
        """The client's playhead: the next sample it will play (never beyond what was sent)."""
        position = min(position, self._queued)
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
        return min(self._queued, p0 + int(round((self._now() - t0) * self.sample_rate)))

    def _stop(self, *, always: bool) -> None:
        self._encoder.drop()
        now = self._now()
        self._drop_unplayed()
        self._anchor, self._end = (now, self._queued), now
        if always or self._notified < self._queued:
            self._notified = self._queued
            self._send({"type": "audio_stop", "position": self._queued})
