"""Per-connection rate limits, with audio and control messages budgeted apart.

Audio is budgeted in audio *time*: a client may send as many seconds of audio as pass on the wall
clock (a little more, for clocks that drift), plus a burst of `audio_burst_s`, so a client that
stalled for a few seconds may send its backlog at once. How many frames carry that audio does not
matter, except that every frame costs at least `MIN_FRAME_S` (thousands of one-sample frames are
no cheaper to handle than real audio). Control messages (text frames: playback reports, pings)
have a bucket of their own, so a well-behaved client's reports never cost it any speech.
"""

from __future__ import annotations

AUDIO_RATE = 1.02  # audio seconds a client may send per wall-clock second, on average
MIN_FRAME_S = 0.002  # the least a binary frame costs, however little audio it holds


class Bucket:
    """A token bucket: `rate` tokens a second up to `capacity`; it starts full."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity = rate, capacity
        self.level = capacity
        self._last: float | None = None

    def _refill(self, now: float) -> float:
        if self._last is None:
            return self.level
        return min(self.capacity, self.level + max(0.0, now - self._last) * self.rate)

    def take(self, cost: float, now: float) -> bool:
        level = self._refill(now)
        self._last, self.level = now, level
        if level + 1e-9 < cost:  # (a float's rounding must not cost a frame)
            return False
        self.level = level - cost
        return True

    def wait(self, cost: float, now: float) -> float:
        """Seconds until `cost` could be taken (0: now); nothing is taken."""
        return max(0.0, (min(cost, self.capacity) - self._refill(now)) / self.rate)


class DropCount:
    """What was dropped since the last report, said at most once every `every_s`: a report
    waits for the episode to end (the next message let through) or for `every_s` to pass, so it
    carries the true count rather than the first drop's."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s = every_s
        self.frames = 0
        self.seconds = 0.0  # of audio
        self._since: float | None = None  # the last report, or the first drop after it
        self._reported: float | None = None

    def drop(self, now: float, seconds: float = 0.0) -> None:
        if self.frames == 0:
            self._since = now  # after the last report, so the later of the two
        self.frames += 1
        self.seconds += seconds

    def due(self, now: float, *, passed: bool) -> bool:
        """Whether to report now: a message was just let through (`passed`) or dropped."""
        if not self.frames:
            return False
        if passed:
            return self._reported is None or now - self._reported >= self.every_s
        return self._since is not None and now - self._since >= self.every_s

    def take(self, now: float) -> tuple[int, float]:
        frames, seconds = self.frames, self.seconds
        self.frames, self.seconds = 0, 0.0
        self._reported = self._since = now
        return frames, seconds


class RateLimiter:
    """The limits of one connection: `messages_per_s` control messages (a burst of one second's
    worth), and audio at real time plus a burst of `audio_burst_s` seconds."""

    def __init__(self, messages_per_s: float, audio_burst_s: float) -> None:
        self.messages = Bucket(messages_per_s, messages_per_s)
        self.audio_time = Bucket(AUDIO_RATE, audio_burst_s)
        self.dropped = DropCount()

    def control(self, now: float) -> bool:
        """May a control (text) message be handled now? (Counted as dropped if not.)"""
        if self.messages.take(1.0, now):
            return True
        self.dropped.drop(now)
        return False

    def audio(self, seconds: float, now: float) -> bool:
        """May a frame holding `seconds` of audio be handled now? (Counted as dropped if not.)"""
        if self.audio_time.take(max(seconds, MIN_FRAME_S), now):
            return True
        self.dropped.drop(now, seconds)
        return False

    def delay(self, seconds: float | None, now: float) -> float:
        """How long until a frame holding `seconds` of audio (None: a control message) would be
        let through (0: now); nothing is taken. For a client made to wait rather than refused."""
        if seconds is None:
            return self.messages.wait(1.0, now)
        return self.audio_time.wait(max(seconds, MIN_FRAME_S), now)

    def report(self, now: float, *, passed: bool, final: bool = False) -> str | None:
        """What to tell the client about dropped messages, when that is due (else None);
        `final`: the connection ends, whatever was dropped is said now."""
        if not (self.dropped.due(now, passed=passed) or (final and self.dropped.frames)):
            return None
        frames, seconds = self.dropped.take(now)
        audio = f" ({seconds:.2f} s of audio)" if seconds else ""
        return f"dropped {frames} message(s){audio}"
