"""One WebSocket connection: one voice session on the shared models, its limits, its errors.

Everything the server sends goes through one queue and one sender task, so events and audio reach
the client in the order they happened (an `audio_stop` is never overtaken by older audio).
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
from voxloop.config import AgentConfig
from voxloop.errors import AudioFormatError, VoxloopError
from voxloop.server import protocol as p
from voxloop.server.drain import GOODBYE
from voxloop.server.limits import RateLimiter
from voxloop.server.settings import ServerSettings
from voxloop.server.sink import SocketSink
from voxloop.server.socket_session import Outbox, first_of, receive, voice_session
from voxloop.server.wire_audio import MicDecoder, Pcm16In, mic_decoder, voice_encoder

log = logging.getLogger("voxloop.server")
SHUTTING_DOWN = "the server is shutting down"


class AgentConnection:
    def __init__(
        self,
        ws: WebSocket,
        providers: Providers,
        config: AgentConfig,
        settings: ServerSettings,
        session_id: str,
        on_end: Callable[[], None] = lambda: None,
    ) -> None:
        self.ws, self.providers, self.config, self.settings = ws, providers, config, settings
        self.session_id = session_id
        self._on_end = on_end  # called once the voice session has ended, before the socket closes
        self.session: VoiceSession | None = None
        self.sink: SocketSink | None = None
        self.input_rate = 0
        self.mic: MicDecoder = Pcm16In(16000)  # replaced at `start`
        self.out = Outbox(ws, lambda: f"session {self.session_id}", log)
        self._limits = RateLimiter(settings.max_frames_per_s, settings.max_audio_ahead_s)
        self._stopping = False
        self._close = (p.CLOSE_NORMAL, "")
        self.observers: list[Callable[[ev.Event], None]] = []  # the session's events, for the server
        self._drain_asked = asyncio.Event()  # the server is shutting down (drain.py)
        self._wake = asyncio.Event()  # something happened that may have left the session idle
        self._cutting = False

    # -- lifecycle ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the connection until the client leaves, stops, or idles out, or the server drains."""
        loop = asyncio.get_running_loop()
        self.out.start()
        why = "client left"
        try:
            async with first_of(self._receive_loop(), self._until_drained()) as (receiving, _):
                why = receiving.result() if receiving.done() else SHUTTING_DOWN
        finally:
            turns = await self._end_session()
            self._on_end()
            if not self.out.gone:
                self._report_drops(loop.time(), passed=True, final=True)
            if self._stopping:
                self.send({"type": "stopped", "turns": turns})
            elif why == SHUTTING_DOWN:
                self.send(p.error_message(p.SHUTTING_DOWN, GOODBYE, fatal=True))
                self._close = (p.CLOSE_RESTART, p.SHUTTING_DOWN)
            await self.out.close(*self._close)
            log.info("session %s ended (%s) after %d turn(s)", self.session_id, why, turns)

    # -- shutdown (drain.py) -----------------------------------------------------------------------
    def drain(self) -> None:
        """End once the session is idle: no reply under way, no user turn open."""
        self._drain_asked.set()

    def cut(self) -> None:
        """End now: a reply under way is cut off and recorded like an interruption."""
        self._cutting = True
        self._drain_asked.set()
        self._wake.set()

    async def _until_drained(self) -> None:
        await self._drain_asked.wait()
        while not self._cutting and (session := self.session) is not None and not session.idle:
            self._wake.clear()  # set by the session's events and the user's audio
            await self._wake.wait()

    async def _end_session(self) -> int:
        session, self.session = self.session, None
        if session is None:
            return 0
        await session.aclose()
        return len(session.records)

    # -- out ---------------------------------------------------------------------------------------
    def send(self, item: bytes | dict[str, Any]) -> None:
        self.out.put(item if isinstance(item, bytes) else p.dumps(item))

    def _error(self, code: str, message: str) -> None:
        log.info("session %s: %s: %s", self.session_id, code, message)
        self.send(p.error_message(code, message))

    def _on_event(self, event: ev.Event) -> None:
        self._wake.set()
        msg = p.event_message(event)
        if msg is None:
            return
        if isinstance(event, ev.AgentSpeech) and self.sink is not None:
            msg["position"] = self.sink.queued_samples()  # where this text's audio begins
        self.send(msg)

    # -- in ----------------------------------------------------------------------------------------
    async def _receive_loop(self) -> str:
        loop = asyncio.get_running_loop()
        idle = self.settings.idle_timeout_s
        while not self._stopping:
            if (msg := await receive(self.ws, idle)) is None:
                self.send(p.error_message(p.IDLE_TIMEOUT, f"nothing was received for {idle:g} s", fatal=True))
                self._close = (p.CLOSE_IDLE, p.IDLE_TIMEOUT)
                return "idle"
            if msg["type"] == "websocket.disconnect":
                self.out.gone = True
                return "client left"
            now = loop.time()
            data: bytes | None = msg.get("bytes")
            text: str | None = msg.get("text")
            size = len(data) if data is not None else len((text or "").encode())
            if data is not None and size <= self.settings.max_frame_bytes and self.session is not None:
                passed = self._limits.audio(self.mic.seconds(data), now)  # by its audio time
            else:
                passed = self._limits.control(now)  # text, or frames only answered with an error
            self._report_drops(now, passed=passed)
            if not passed:
                continue
            if size > self.settings.max_frame_bytes:
                self._error(
                    p.FRAME_TOO_LARGE,
                    f"a frame of {size} bytes: the limit is {self.settings.max_frame_bytes}",
                )
            elif data is not None:
                await self._on_audio(data)
            elif text is not None:
                try:
                    await self._on_text(text)
                except Exception:  # a bug must not end the session: the client hears of it
                    log.exception("session %s: a message failed", self.session_id)
                    self._error(p.INTERNAL_ERROR, "the server failed on that message; the session goes on")
        return "stopped"

    def _report_drops(self, now: float, *, passed: bool, final: bool = False) -> None:
        if (what := self._limits.report(now, passed=passed, final=final)) is not None:
            s = self.settings
            self._error(
                p.RATE_LIMITED,
                f"{what}: the limits are {s.max_frames_per_s:g} control messages a second and audio "
                f"at real time with a burst of {s.max_audio_ahead_s:g} s",
            )

    async def _on_audio(self, data: bytes) -> None:
        if self.session is None:
            self._error(p.NOT_STARTED, "send a start message before any audio")
            return
        try:
            await self.session.push_audio(self.mic.decode(data), self.mic.rate)
            self._wake.set()
        except AudioFormatError as e:
            self._error(p.BAD_AUDIO, e.message)
        except Exception:
            log.exception("session %s: audio failed", self.session_id)
            self._error(p.INTERNAL_ERROR, "the server failed on that audio; the session goes on")

    async def _on_text(self, text: str) -> None:
        try:
            msg = p.parse(text)
        except p.ProtocolError as e:
            self._error(e.code, e.message)
            return
        if isinstance(msg, p.Start):
            self._start(msg)
        elif isinstance(msg, p.Stop):
            self._stopping = True
        elif isinstance(msg, p.Ping):
            self.send({"type": "pong"})
        elif self.session is None or self.sink is None:
            self._error(p.NOT_STARTED, f"{type(msg).__name__.lower()} needs a started session")
        elif isinstance(msg, p.Playback):
            self.sink.report(msg.position)
        elif isinstance(msg, p.Interrupt):
            self.sink.cut()  # answered by audio_stop, even when nothing was playing
            await self.session.interrupt()
        elif isinstance(msg, p.EndTurn):
            await self.session.end_turn()

    def _start(self, msg: p.Start) -> None:
        if self.session is not None:
            self._error(p.ALREADY_STARTED, "this connection already has a session: one per connection")
            return
        try:
            p.check_prompt_budget(msg.settings, self.config.llm.context)
        except p.ProtocolError as e:
            self._error(e.code, e.message)
            return
        config = msg.settings.apply(self.config)
        rate = msg.output_sample_rate or self.providers.tts.sample_rate
        if msg.output_codec == "opus" and rate not in p.OPUS_RATES:  # a voice at 22.05 kHz: 24 kHz Opus
            rate = min(r for r in p.OPUS_RATES if r >= min(rate, p.OPUS_RATES[-1]))
        try:
            mic, voice = (
                mic_decoder(msg.input_codec, msg.input_sample_rate),
                voice_encoder(msg.output_codec, rate),
            )
        except VoxloopError as e:  # no Opus in this installation: the client can ask for PCM16
            self._error(p.BAD_MESSAGE, f"{e.message} ({e.hint})")
            return
        self.input_rate, self.mic = msg.input_sample_rate, mic
        self.sink = SocketSink(rate, self.send, grace_s=self.settings.playback_grace_s, encoder=voice)
        self.session = voice_session(self.providers, self.sink, config, [self._on_event, *self.observers])
        s = self.settings
        self.send(
            {
                "type": "started",
                "protocol": p.VERSION,
                "session_id": self.session_id,
                "input_sample_rate": self.input_rate,
                "output_sample_rate": rate,
                "input_codec": msg.input_codec,
                "output_codec": msg.output_codec,
                "settings": p.effective_settings(config),
                "limits": {
                    "max_frame_bytes": s.max_frame_bytes,
                    "max_frames_per_s": s.max_frames_per_s,
                    "max_audio_ahead_s": s.max_audio_ahead_s,
                    "idle_timeout_s": s.idle_timeout_s,
                },
            }
        )
        log.info(
            "session %s started: microphone %d Hz %s, voice %d Hz %s",
            self.session_id,
            self.input_rate,
            msg.input_codec,
            rate,
            msg.output_codec,
        )
