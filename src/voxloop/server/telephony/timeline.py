"""The caller's audio on the call's own clock: media Twilio never delivered becomes silence.

Each `media` message carries a `timestamp` (ms since the stream began). When one is more than
two frames (40 ms) past where the audio so far ends, the missing time (at most 1 s a gap) is
filled with silence, so the session's clock, and with it the end-of-turn silence, keeps to the
call's. A message that arrives early or late by less is taken as it is (jitter)."""

from __future__ import annotations

import numpy as np

from voxloop.providers.base import Samples

SLACK_MS, MAX_GAP_MS = 40.0, 1000.0


class CallerTimeline:
    def __init__(self, rate: int = 8000) -> None:
        self.rate = rate
        self.samples = 0  # given to the session since the first media message (gaps filled)
        self.filled_ms = 0.0  # silence put in for lost media
        self._first_ms: int | None = None

    @property
    def seconds(self) -> float:
        return self.samples / self.rate

    def place(self, timestamp_ms: int, audio: Samples) -> Samples:
        """`audio` stamped `timestamp_ms`, after silence for whatever before it never came."""
        if self._first_ms is None:
            self._first_ms = timestamp_ms
        missing_ms = timestamp_ms - (self._first_ms + self.samples * 1000 / self.rate)
        missing = int(min(missing_ms, MAX_GAP_MS) * self.rate / 1000) if missing_ms > SLACK_MS else 0
        self.samples += missing + len(audio)
        if not missing:
            return audio
        self.filled_ms += missing * 1000 / self.rate
        return np.concatenate([np.zeros(missing, np.float32), audio])
