"""One Twilio call: the caller's audio into a voice session, the agent's voice back (sink.py).

Twilio sends `connected`, `start`, then a `media` message every 20 ms until `stop`. A message
this server cannot use is logged and ignored: the call goes on. A call that cannot be served
(a format it cannot decode, a missing key) is closed with a reason, which Twilio logs in the
call's debugger. Everything sent goes through one queue and one sender task, in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket

from voxloop.agent import events as ev
from voxloop.agent.providers import Providers
from voxloop.agent.session import VoiceSession
from voxloop.audio.g711 import mulaw_decode
from voxloop.config import AgentConfig
from voxloop.errors import AudioFormatError
from voxloop.server import protocol as p
from voxloop.server.compat.auth import key_valid
from voxloop.server.settings import ServerSettings
from voxloop.server.socket_session import Outbox, first_of, voice_session
from voxloop.server.telephony import messages as tm
from voxloop.server.telephony.inbox import Inbox, noise
from voxloop.server.telephony.params import SETTINGS, session_config
from voxloop.server.telephony.sink import TwilioSink
from voxloop.server.telephony.timeline import CallerTimeline

log = logging.getLogger("voxloop.telephony")
CLOSE_NORMAL, CLOSE_UNSUPPORTED, CLOSE_POLICY, CLOSE_RESTART = 1000, 1003, 1008, 1012


class TwilioCall:
    def __init__(
        self,
        ws: WebSocket,
        providers: Providers,
        config: AgentConfig,
        settings: ServerSettings,
        *,
        key_needed: bool = False,
        on_end: Callable[[], None] = lambda: None,
    ) -> None:
        self.ws, self.providers, self.config, self.settings = ws, providers, config, settings
        self.key_needed = key_needed  # the server has API keys and the handshake carried none
        self._on_end = on_end
        self.start: tm.Start | None = None
        self.session: VoiceSession | None = None
        self.sink: TwilioSink | None = None
        self.digits: list[str] = []  # DTMF keys the caller pressed
        self.observers: list[Callable[[ev.Event], None]] = []  # the session's events, for the server
        self._drain_asked = False  # the server is shutting down: end once idle (drain.py)
        self._cutting = False  # ... or now
        self.timeline = CallerTimeline()  # the caller's audio on the call's clock (set at start)
        self.transfer_reason: str | None = None  # the agent hands the caller to a person
        self.out = Outbox(ws, lambda: self.name, log)
        self.inbox = Inbox(ws, settings, lambda: self.name)
        self._close = (CLOSE_NORMAL, "")

    @property
    def name(self) -> str:
        return f"call {self.start.call_sid or self.start.stream_sid}" if self.start else "call (not started)"

    async def run(self) -> None:
        self.out.start()
        why = "Twilio left"
        try:
            why = await self._serve()
        finally:
            turns = await self._end_session()
            self._on_end()
            await self.out.close(*self._close)
            log.info(
                "%s ended (%s) after %d turn(s); keys pressed: %s",
                self.name,
                why,
                turns,
                "".join(self.digits) or "none",
            )

    async def _end_session(self) -> int:
        session, self.session = self.session, None
        if session is not None:
            await session.aclose()
        if self.sink is not None:
            await self.sink.aclose()
        return len(session.records) if session is not None else 0

    # -- shutdown (drain.py): checked on every message, and Twilio sends one every 20 ms -------------
    def drain(self) -> None:
        """End the call once the session is idle (the reply under way heard, the caller's turn answered)."""
        self._drain_asked = True

    def cut(self) -> None:
        """End the call now."""
        self._drain_asked = self._cutting = True

    def _drained(self) -> bool:
        return self._drain_asked and (self._cutting or self.session is None or self.session.idle)

    def transfer(self, reason: str) -> None:
        """Hand the caller to a person: once the agent has said so (the session is idle), the
        stream ends with close reason `transfer`, and Twilio goes on with the TwiML after
        `<Connect>` (a `<Dial>`: docs/telephony.md)."""
        self.transfer_reason = reason
        log.info("%s: to be transferred to a person (%s)", self.name, reason)

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.Transfer):
            self.transfer(event.reason)

    # -- out ---------------------------------------------------------------------------------------
    def send(self, msg: dict[str, Any]) -> None:
        self.out.put(tm.dumps(msg))

    # -- in ----------------------------------------------------------------------------------------
    async def _serve(self) -> str:
        """Read and act apart: a reader takes each message as it arrives and answers marks at once,
        so the time a mark came back is right even while the session is busy with the caller's
        audio, which a worker feeds it in order. Returns why the call ended."""
        work: asyncio.Queue[tm.Message] = asyncio.Queue()
        async with first_of(self._receive_loop(work), self._work_loop(work)) as (reader, worker):
            result: str = (reader if reader.done() else worker).result()
            return result

    async def _work_loop(self, work: asyncio.Queue[tm.Message]) -> str:
        while True:
            msg = await work.get()
            try:
                done = await self._on_message(msg)
            except Exception:  # a bug must not end the call
                log.exception("%s: a message failed; the call goes on", self.name)
                continue
            if done is not None:
                return done

    async def _receive_loop(self, work: asyncio.Queue[tm.Message]) -> str:
        while True:
            if self._drained():
                self._close = (CLOSE_RESTART, "the server is shutting down")
                return "the server is shutting down"
            if self.transfer_reason is not None and (self.session is None or self.session.idle):
                self._close = (CLOSE_NORMAL, "transfer")
                return f"transferred to a person ({self.transfer_reason})"
            got = await self.inbox.next()
            if isinstance(got, str):
                self.out.gone = self.inbox.gone
                self._close = self.inbox.close or self._close
                return got
            start, sink = self.start, self.sink
            if isinstance(got, tm.Mark) and sink and start and got.stream_sid == start.stream_sid:
                if not sink.acknowledge(got.name):
                    log.debug("%s: mark %s was dropped by a clear", self.name, got.name)
                continue
            work.put_nowait(got)

    async def _on_message(self, msg: tm.Message) -> str | None:
        """Act on one message; returns why the call ends, if it does."""
        if isinstance(msg, tm.Connected):
            log.debug("Twilio connected (protocol %s %s)", msg.protocol, msg.version)
            return None
        if isinstance(msg, tm.Start):
            return self._start(msg)
        if self.start is None or self.session is None or self.sink is None:
            noise.log(logging.WARNING, "%s: ignored %s before start", self.name, type(msg).__name__.lower())
            return None
        if msg.stream_sid != self.start.stream_sid:
            noise.log(
                logging.WARNING, "%s: ignored a message for another stream %s", self.name, msg.stream_sid
            )
            return None
        if isinstance(msg, tm.Media):
            if msg.track == "inbound" and msg.audio:
                audio = self.timeline.place(msg.timestamp_ms, mulaw_decode(msg.audio))
                try:
                    await self.session.push_audio(audio, self.start.sample_rate)
                except AudioFormatError as e:
                    noise.log(logging.WARNING, "%s: ignored media: %s", self.name, e.message)
        elif isinstance(msg, tm.Mark):
            if not self.sink.acknowledge(msg.name):
                log.debug("%s: mark %s was dropped by a clear", self.name, msg.name)
        elif isinstance(msg, tm.Dtmf):
            self.digits.append(msg.digit)
            log.info("%s: the caller pressed %s", self.name, msg.digit)
        elif isinstance(msg, tm.Stop):
            return "Twilio stopped the stream"
        return None

    @property
    def caller_s(self) -> float:
        """Seconds of the caller's audio given to the session, lost media filled in."""
        return self.timeline.seconds

    def _start(self, msg: tm.Start) -> str | None:
        if self.start is not None:
            noise.log(logging.WARNING, "%s: ignored a second start", self.name)
            return None
        self.start = msg
        if msg.encoding != tm.MULAW or msg.channels != 1 or not 8000 <= msg.sample_rate <= 48000:
            why = f"unsupported media format {msg.encoding} {msg.sample_rate} Hz x{msg.channels}"
            self._close = (CLOSE_UNSUPPORTED, why[:120])
            log.warning("%s: %s: only mono audio/x-mulaw is taken", self.name, why)
            return why
        if self.key_needed and not key_valid(msg.custom.get("token"), self.settings.api_keys):
            self._close = (CLOSE_POLICY, "unauthorized")
            log.warning('%s: refused: no valid API key (give it as <Parameter name="token">)', self.name)
            return "unauthorized"
        try:
            config = session_config(self.config, msg.custom)
        except p.ProtocolError as e:
            log.warning("%s: custom parameters not applied: %s", self.name, e.message)
            config = self.config
        self.timeline = CallerTimeline(msg.sample_rate)
        self.inbox.rate = msg.sample_rate
        self.sink = TwilioSink(msg.stream_sid, self.send, grace_s=self.settings.playback_grace_s)
        self.session = voice_session(self.providers, self.sink, config, [self._on_event, *self.observers])
        others = sorted(k for k in msg.custom if k not in (*SETTINGS, "token"))
        log.info(
            "%s started: %s %d Hz; custom parameters: %s",
            self.name,
            msg.encoding,
            msg.sample_rate,
            ", ".join(others) or "none",
        )
        return None
