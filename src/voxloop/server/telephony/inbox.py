"""Twilio's frames as they arrive: checked, parsed and rate-limited, the rest logged and skipped.

A binary frame, an oversized one, one that is not a Twilio message, or one over the rate limits
(audio by its length, at real time plus a burst; other messages by count) is logged, at most one
line a second, and skipped: the call goes on. `next` returns the next usable message, or, as
text, why the stream ended (Twilio left, or sent nothing for the idle timeout)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.websockets import WebSocket

from voxloop.server.limits import RateLimiter
from voxloop.server.logs import Refusals
from voxloop.server.settings import ServerSettings
from voxloop.server.socket_session import receive
from voxloop.server.telephony import messages as tm

log = logging.getLogger("voxloop.telephony")
noise = Refusals(log)  # bad messages, in words, at most one line a second
CLOSE_POLICY = 1008


class Inbox:
    def __init__(self, ws: WebSocket, settings: ServerSettings, name: Callable[[], str]) -> None:
        self.ws, self.settings, self._name = ws, settings, name
        self.rate = 8000  # the caller's audio (set from `start`), to budget media by its length
        self.gone = False  # Twilio closed the socket
        self.close: tuple[int, str] | None = None  # how to close, when the stream ended here
        self._limits = RateLimiter(settings.max_frames_per_s, settings.max_audio_ahead_s)

    async def next(self) -> tm.Message | str:
        idle = self.settings.idle_timeout_s
        while True:
            if (msg := await receive(self.ws, idle)) is None:
                self.close = (CLOSE_POLICY, "idle")
                return f"nothing received for {idle:g} s"
            if msg["type"] == "websocket.disconnect":
                self.gone = True
                return "Twilio closed the stream"
            if (parsed := self._usable(msg.get("text"))) is not None:
                return parsed

    def _usable(self, text: str | None) -> tm.Message | None:
        if text is None:
            noise.log(logging.WARNING, "%s: ignored a binary frame (Twilio sends JSON text)", self._name())
            return None
        if len(text) > self.settings.max_frame_bytes:
            noise.log(logging.WARNING, "%s: ignored a %d-character message", self._name(), len(text))
            return None
        try:
            parsed = tm.parse(text)
        except tm.TwilioMessageError as e:
            noise.log(logging.WARNING, "%s: ignored a message: %s", self._name(), e)
            return None
        now = asyncio.get_running_loop().time()
        if isinstance(parsed, tm.Media):
            passed = self._limits.audio(len(parsed.audio) / self.rate, now)
        else:
            passed = self._limits.control(now)
        if not passed:
            kind = type(parsed).__name__.lower()
            noise.log(logging.WARNING, "%s: over the rate limit; dropped a %s message", self._name(), kind)
            return None
        return parsed
