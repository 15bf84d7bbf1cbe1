"""Per-connection rate limits: frames per second, and audio that may not outrun real time."""

from __future__ import annotations


class RateLimiter:
    """A token bucket for frames (holding one second's worth), and an audio clock that may run at
    most `audio_ahead_s` ahead of the wall clock. A client that fell behind may catch up, but only
    by the same amount: after a long silence its largest burst is twice `audio_ahead_s`."""

    def __init__(self, frames_per_s: float, audio_ahead_s: float) -> None:
        self.frames_per_s = frames_per_s
        self.audio_ahead_s = audio_ahead_s
        self._tokens = frames_per_s
        self._last: float | None = None
        self._audio_t0: float | None = None
        self._audio_s = 0.0
        self.dropped = 0  # frames refused since the last `take_dropped`
        self._reported_at: float | None = None

    def frame(self, now: float) -> bool:
        if self._last is not None:
            self._tokens = min(self.frames_per_s, self._tokens + (now - self._last) * self.frames_per_s)
        self._last = now
        if self._tokens < 1.0 - 1e-9:  # (a float's rounding must not cost a frame)
            self.dropped += 1
            return False
        self._tokens -= 1.0
        return True

    def audio(self, seconds: float, now: float) -> bool:
        if self._audio_t0 is None:
            self._audio_t0 = now
        elapsed = now - self._audio_t0
        self._audio_s = max(self._audio_s, elapsed - self.audio_ahead_s)  # credit for lost time is capped
        if self._audio_s + seconds > elapsed + self.audio_ahead_s:
            self.dropped += 1
            return False
        self._audio_s += seconds
        return True

    def delay(self, seconds: float, now: float) -> float:
        """How long until a frame holding `seconds` of audio would be allowed (0: now); nothing
        is taken. For a client that is made to wait rather than refused."""
        frame_wait = 0.0
        if self._last is not None:
            tokens = min(self.frames_per_s, self._tokens + (now - self._last) * self.frames_per_s)
            frame_wait = max(0.0, (1.0 - tokens) / self.frames_per_s)
        audio_wait = 0.0
        if seconds and self._audio_t0 is not None:
            elapsed = now - self._audio_t0
            audio_s = max(self._audio_s, elapsed - self.audio_ahead_s)
            audio_wait = max(0.0, audio_s + seconds - elapsed - self.audio_ahead_s)
        return max(frame_wait, audio_wait)

    def should_report(self, now: float, every_s: float = 1.0) -> bool:
        """At most one rate-limit error a second, however many frames are refused."""
        if self._reported_at is not None and now - self._reported_at < every_s:
            return False
        self._reported_at = now
        return True

    def take_dropped(self) -> int:
        n, self.dropped = self.dropped, 0
        return n
