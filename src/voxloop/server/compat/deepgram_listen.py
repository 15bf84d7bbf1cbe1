"""Deepgram's live transcription (`WS /v1/listen`) on voxloop's own listener.

The audio goes through the one `Listener` the voice session uses (VAD, endpointer, streaming
recogniser): its partial transcripts are the interim `Results`, each turn it decides is a final
one (`speech_final`), a `Finalize` ends the turn under way at once (`from_finalize`), and
`CloseStream` does the same, then sends `Metadata` and closes. Three tasks per connection, all
owned here: receiving (with Deepgram's 10 s timeout), hearing (the listener, in order), sending
(one queue, so messages leave in the order they were made).

Times in results are seconds of audio from the start of the stream. A final's words have the
times the recogniser aligned them to (Whisper: each final decode's cross-attention alignment, in
the turn's audio, shifted by where the turn began; a first word it starts in the silence before
the speech starts at the VAD's onset); a recogniser that gives none (Moonshine), and
every interim result, has its words spread over the speech (`deepgram_results.spread`), an estimate.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from starlette.websockets import WebSocket

from voxloop.agent.endpoint import Boundary
from voxloop.agent.listener import Listener
from voxloop.agent.providers import Providers
from voxloop.audio.ogg_opus import OggOpusDecoder
from voxloop.config import AgentConfig
from voxloop.errors import AudioFormatError
from voxloop.providers.base import Samples, Transcript
from voxloop.server import jsontext
from voxloop.server.compat import deepgram_errors as dge
from voxloop.server.compat.deepgram_audio import RawDecoder
from voxloop.server.compat.deepgram_params import OPUS, ListenOptions
from voxloop.server.compat.deepgram_results import (
    ModelInfo,
    from_onset,
    metadata,
    results_message,
    shifted,
    spread,
)
from voxloop.server.limits import RateLimiter
from voxloop.server.settings import ServerSettings
from voxloop.server.socket_session import Outbox, first_of, receive

log = logging.getLogger("voxloop.server.deepgram")

IDLE_S = 10.0  # Deepgram closes a stream that sends no audio and no message for this long
FINALIZE, CLOSE = "finalize", "close"
Heard = Samples | str  # audio, or a marker: FINALIZE, CLOSE
NO_AUDIO = np.zeros(0, np.float32)


def listen_config(base: AgentConfig, opts: ListenOptions) -> AgentConfig:
    """A turn ends after a fixed silence, as Deepgram's endpointing does: `endpointing=N` ms (at
    least the pause the recogniser is told about plus one VAD frame), else the server's own
    `end_silence_ms`. Never lengthened for a speaker who pauses mid-thought: with no agent to
    answer, a pause between sentences is not a reply cut short."""
    ms = base.turn.end_silence_ms
    if opts.endpointing_ms is not None:
        ms = max(opts.endpointing_ms, base.turn.pause_ms + 32)
    turn = dataclasses.replace(base.turn, end_silence_ms=ms, unfinished_silence_ms=ms, adaptive_silence=False)
    return dataclasses.replace(base, turn=turn)


class LiveTranscription:
    def __init__(
        self,
        ws: WebSocket,
        providers: Providers,
        config: AgentConfig,
        settings: ServerSettings,
        opts: ListenOptions,
        request_id: str,
        model: ModelInfo,
    ) -> None:
        self.ws, self.opts, self.request_id, self.model = ws, opts, request_id, model
        self.settings = settings
        assert opts.encoding is not None and opts.sample_rate is not None
        self.rate = opts.sample_rate
        self._decode: Callable[[bytes], Samples] = (
            OggOpusDecoder() if opts.encoding in OPUS else RawDecoder(opts.encoding)
        )
        self.listener = Listener(
            providers.vad,
            providers.stt,
            listen_config(config, opts),
            on_partial=self._interim if opts.interim_results else None,
            keywords=opts.keywords,
        )
        self._limits = RateLimiter(settings.max_frames_per_s, settings.max_audio_ahead_s)
        self.out = Outbox(ws, lambda: f"stream {self.request_id}", log)
        self._heard: asyncio.Queue[Heard] = asyncio.Queue()
        self._sha = hashlib.sha256()
        self._received_s = 0.0  # seconds of audio received
        self._cursor = 0.0  # where the next result starts: the end of the last final one
        self._onset = 0.0  # where the speech of the turn under way began
        self._speech_end = 0.0  # where the last decided turn's speech ended
        self._last_word_end: float | None = None  # an UtteranceEnd is due after it
        self._closing = False  # CloseStream received
        self._warned_after_close = False

    # -- lifecycle ---------------------------------------------------------------------------------
    async def run(self) -> None:
        self.out.start()
        close: tuple[int, str] = (dge.CLOSE_NORMAL, "")
        try:
            async with first_of(self._hear_loop(), self._receive_loop()) as (hearing, receiving):
                if hearing.done():
                    if (e := hearing.exception()) is not None:
                        log.error("stream %s: the listener failed: %s", self.request_id, e, exc_info=e)
                        close = (
                            dge.CLOSE_NET,
                            "NET-0000: internal error: the server failed to transcribe the audio",
                        )
                elif receiving.result() == "idle":
                    log.info("stream %s: nothing received for %g s", self.request_id, IDLE_S)
                    close = (dge.CLOSE_NET, dge.NET_0001)
                elif receiving.result() == "bad_audio":
                    close = (dge.CLOSE_DATA, dge.DATA_0000)
        finally:
            await self.listener.aclose()
            await self.out.close(*close)
            log.info("stream %s ended after %.1f s of audio", self.request_id, self._received_s)

    # -- out ---------------------------------------------------------------------------------------
    def send(self, msg: dict[str, Any]) -> None:
        self.out.put(json.dumps(msg))

    # -- in ----------------------------------------------------------------------------------------
    async def _receive_loop(self) -> str:
        while True:
            if (msg := await receive(self.ws, None if self._closing else IDLE_S)) is None:
                return "idle"
            if msg["type"] == "websocket.disconnect":
                self.out.gone = True
                return "left"
            data: bytes | None = msg.get("bytes")
            text: str | None = msg.get("text")
            size = len(data) if data is not None else len((text or "").encode())
            if size > self.settings.max_frame_bytes:
                self.send(
                    {
                        "type": "Error",
                        "variant": "FrameTooLarge",
                        "description": f"a message of {size} bytes was dropped: the limit is "
                        f"{self.settings.max_frame_bytes}",
                    }
                )
                continue
            if data is None:
                await self._within_limits(None)
                self._on_text(text or "")
                continue
            try:
                audio = self._on_audio(data)
            except AudioFormatError as e:
                log.info("stream %s: %s", self.request_id, e.message)
                return "bad_audio"
            await self._within_limits(len(audio) / self.rate)
            if len(audio):
                self._heard.put_nowait(audio)

    async def _within_limits(self, seconds: float | None) -> None:
        """Past the server's limits (control messages a second, audio at real time plus a burst;
        `seconds` None: a control message) the stream waits: what it sends is read later, never
        dropped (a client sending a file fast is slowed to real time)."""
        loop = asyncio.get_running_loop()
        wait = self._limits.delay(seconds, loop.time())
        if wait > 0:
            await asyncio.sleep(wait)
        if seconds is None:
            self._limits.control(loop.time())
        else:
            self._limits.audio(seconds, loop.time())

    def _on_audio(self, data: bytes) -> Samples:
        """The audio of one message, decoded (nothing after CloseStream; AudioFormatError)."""
        if self._closing:
            if not self._warned_after_close:
                self._warned_after_close = True
                self.send(
                    {
                        "type": "Error",
                        "variant": "AudioAfterCloseStream",
                        "description": "audio sent after CloseStream is ignored",
                    }
                )
            return NO_AUDIO
        if not data:  # an empty binary message: Deepgram's older way of closing the stream
            self._close_stream()
            return NO_AUDIO
        self._sha.update(data)
        audio = self._decode(data)
        self._received_s += len(audio) / self.rate
        return audio

    def _on_text(self, text: str) -> None:
        try:
            msg = jsontext.loads(text)
        except ValueError:
            self.send(dge.schema_error("the message is not JSON", text))
            return
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "KeepAlive":
            return  # receiving it was the point
        if kind == "Finalize":
            if not self._closing:
                self._heard.put_nowait(FINALIZE)
        elif kind == "CloseStream":
            self._close_stream()
        else:
            self.send(
                dge.schema_error(
                    f"unknown message type {kind!r}: expected KeepAlive, Finalize or CloseStream", text
                )
            )

    def _close_stream(self) -> None:
        if not self._closing:
            self._closing = True
            self._heard.put_nowait(CLOSE)

    # -- hearing -----------------------------------------------------------------------------------
    @property
    def _position(self) -> float:
        return self.listener.position / self.listener.rate

    async def _hear_loop(self) -> None:
        while True:
            item = await self._heard.get()
            if isinstance(item, str):
                await self._flush(from_finalize=item == FINALIZE)
                if item == CLOSE:
                    self.send(
                        {
                            "type": "Metadata",
                            **metadata(self.request_id, self._sha, self._received_s, self.model),
                        }
                    )
                    return
                continue
            async for x in self.listener.listen(item, self.rate, end=False):
                self._on_heard(x, endpoint=True, from_finalize=False)
            self._utterance_end_due()

    async def _flush(self, *, from_finalize: bool) -> None:
        """The turn under way ends now; a final result even when nothing was being said."""
        finals = 0
        async for x in self.listener.listen(NO_AUDIO, self.rate, end=True):
            finals += isinstance(x, Transcript)
            self._on_heard(x, endpoint=False, from_finalize=from_finalize)
        if not finals and from_finalize:
            self._final(Transcript("", True), speech_final=False, from_finalize=from_finalize)

    def _on_heard(self, x: Boundary | Transcript, *, endpoint: bool, from_finalize: bool) -> None:
        """`endpoint`: the listener heard the speech end (else a Finalize or CloseStream ended it)."""
        if isinstance(x, Transcript):
            speech_final = self.opts.endpointing and endpoint
            self._final(x, speech_final=speech_final, from_finalize=from_finalize)
        elif x.kind == "speech_start":
            self._onset = x.sample / self.listener.rate
            self._last_word_end = None  # they went on: no utterance end yet
            if self.opts.vad_events:
                self.send({"type": "SpeechStarted", "channel": [0, 1], "timestamp": round(self._onset, 3)})
        elif x.kind == "turn_end":
            self._speech_end = x.sample / self.listener.rate

    def _final(self, tr: Transcript, *, speech_final: bool, from_finalize: bool) -> None:
        end = self._position
        if tr.words:  # the recogniser's times, from the start of the turn's audio
            words = from_onset(shifted(tr.words, self.listener.turn_start / self.listener.rate), self._onset)
        else:
            words = spread(tr.text, self._onset, max(self._speech_end, self._onset)) if tr.text else ()
        self.send(
            self._results(
                tr.text, words, end, is_final=True, speech_final=speech_final, from_finalize=from_finalize
            )
        )
        self._cursor = end
        if words and self.opts.utterance_end_ms is not None:
            self._last_word_end = words[-1].end

    def _interim(self, tr: Transcript) -> None:
        """A partial transcript of the turn under way (the listener calls this only within a turn)."""
        end = self._position
        words = spread(tr.text, self._onset, max(end, self._onset))
        self.send(self._results(tr.text, words, end, is_final=False, speech_final=False, from_finalize=False))

    def _results(self, text: str, words: Any, end: float, **flags: bool) -> dict[str, Any]:
        return results_message(
            start=self._cursor,
            duration=end - self._cursor,
            text=text,
            words=words,
            punctuated=self.opts.punctuated,
            request_id=self.request_id,
            model=self.model,
            **flags,
        )

    def _utterance_end_due(self) -> None:
        """`utterance_end_ms` of audio without speech after the last word: an UtteranceEnd."""
        if self._last_word_end is None or self.opts.utterance_end_ms is None or self.listener.in_turn:
            return
        if self._position - self._last_word_end >= self.opts.utterance_end_ms / 1000:
            self.send({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": self._last_word_end})
            self._last_word_end = None
