"""Deepgram's text to speech: `WS /v1/speak` and `POST /v1/speak`, on the loaded voice.

On the socket, `Speak` messages add text; `Flush` speaks what was added (binary audio, then
`Flushed` with its `sequence_id`); `Clear` drops what was added and stops the audio under way
(`Cleared`); `Close` speaks nothing more and closes once the audio under way has been sent.
`Metadata` opens the stream; a message the server cannot act on gets a `Warning`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.websockets import WebSocket

from voxloop.audio.pcm import Samples
from voxloop.providers.base import TTS
from voxloop.server import jsontext
from voxloop.server.compat import deepgram_errors as dge
from voxloop.server.compat.deepgram_audio import encode
from voxloop.server.compat.deepgram_params import SpeakOptions
from voxloop.server.compat.deepgram_results import ModelInfo
from voxloop.server.settings import ServerSettings
from voxloop.server.socket_session import Outbox, receive

log = logging.getLogger("voxloop.server.deepgram")

MAX_TEXT = 2000  # characters a request (or the text between two flushes) may hold, as Deepgram's


async def speech_audio(tts: TTS, text: str, rate: int) -> AsyncGenerator[Samples, None]:
    """`text` spoken by the loaded voice, in chunks at `rate`. Closing it stops the voice."""
    import soxr

    resample = soxr.ResampleStream(tts.sample_rate, rate, 1, dtype="float32", quality="HQ")
    async with contextlib.aclosing(tts.synthesize(text)) as chunks:
        async for chunk in chunks:
            out = chunk if tts.sample_rate == rate else resample.resample_chunk(chunk.astype(np.float32))
            if len(out):
                yield np.asarray(out, np.float32)
    if tts.sample_rate != rate:  # the resampler's tail
        yield np.asarray(resample.resample_chunk(np.zeros(0, np.float32), last=True), np.float32)


async def speech(tts: TTS, text: str, opts: SpeakOptions) -> AsyncGenerator[bytes, None]:
    """`text` spoken by the loaded voice, as chunks in the requested encoding and rate."""
    async with contextlib.aclosing(speech_audio(tts, text, opts.sample_rate)) as chunks:
        async for out in chunks:
            yield encode(out, opts.encoding)


@dataclass(frozen=True)
class _Flush:
    text: str
    sequence_id: int


class LiveSpeech:
    def __init__(
        self,
        ws: WebSocket,
        tts: TTS,
        settings: ServerSettings,
        opts: SpeakOptions,
        request_id: str,
        model: ModelInfo,
    ) -> None:
        self.ws, self.tts, self.settings, self.opts = ws, tts, settings, opts
        self.request_id, self.model = request_id, model
        self._text: list[str] = []
        self._flushes: asyncio.Queue[_Flush | None] = asyncio.Queue()
        self.out = Outbox(ws, lambda: f"speech {self.request_id}", log)
        self._generation = 0  # audio made before the last Clear is not sent
        self._sequence = 0  # flushes so far

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.send(
            {
                "type": "Metadata",
                "request_id": self.request_id,
                "model_name": self.model.name,
                "model_version": f"voxloop-{self.model.local}",
                "model_uuid": self.model.uuid,
            }
        )
        self.out.start()
        speaker = loop.create_task(self._speak_loop())
        close = (dge.CLOSE_NORMAL, "")
        try:
            why = await self._receive_loop()
            if why == "close":  # speak what was flushed, then close
                self._flushes.put_nowait(None)
                await speaker
            elif why == "idle":
                close = (
                    dge.CLOSE_NET,
                    f"NET-0001: nothing was received for {self.settings.idle_timeout_s:g} s",
                )
        finally:
            speaker.cancel()
            await asyncio.gather(speaker, return_exceptions=True)
            await self.out.close(*close)

    # -- out ---------------------------------------------------------------------------------------
    def send(self, msg: dict[str, Any]) -> None:
        self.out.put(json.dumps(msg))

    def warn(self, code: str, description: str) -> None:
        self.send({"type": "Warning", "description": description, "code": code})

    def _cleared_since(self, generation: int) -> bool:
        return generation != self._generation  # cleared audio is never sent

    # -- speaking ----------------------------------------------------------------------------------
    async def _speak_loop(self) -> None:
        while (flush := await self._flushes.get()) is not None:
            generation = self._generation
            if flush.text.strip():
                try:
                    async with contextlib.aclosing(speech(self.tts, flush.text, self.opts)) as chunks:
                        async for audio in chunks:
                            if generation != self._generation:
                                break  # cleared: closing the chunks stops the voice
                            self.out.put(audio, stale=functools.partial(self._cleared_since, generation))
                except Exception:
                    log.exception("speech %s: the voice failed", self.request_id)
                    self.warn("SYNTHESIS_FAILED", "the voice failed on this text; the stream goes on")
            if generation == self._generation:
                self.send({"type": "Flushed", "sequence_id": flush.sequence_id})

    # -- in ----------------------------------------------------------------------------------------
    async def _receive_loop(self) -> str:
        idle = self.settings.idle_timeout_s
        while True:
            if (msg := await receive(self.ws, idle)) is None:
                return "idle"
            if msg["type"] == "websocket.disconnect":
                self.out.gone = True
                return "left"
            text: str | None = msg.get("text")
            if text is None:
                self.warn("UNEXPECTED_BINARY", "binary messages are not accepted: send Speak messages")
                continue
            if len(text.encode()) > self.settings.max_frame_bytes:
                self.warn(
                    "MESSAGE_TOO_LARGE", f"a message over {self.settings.max_frame_bytes} bytes was dropped"
                )
                continue
            try:
                msg_json = jsontext.loads(text)
            except ValueError:
                self.warn("INVALID_JSON", "the message is not JSON")
                continue
            kind = msg_json.get("type") if isinstance(msg_json, dict) else None
            if kind == "Speak":
                self._speak(msg_json.get("text"))
            elif kind == "Flush":
                self._flushes.put_nowait(_Flush("".join(self._text), self._sequence))
                self._sequence += 1
                self._text = []
            elif kind == "Clear":
                self._generation += 1
                self._text = []
                while not self._flushes.empty():  # flushed text not yet spoken goes too
                    self._flushes.get_nowait()
                self.send({"type": "Cleared", "sequence_id": self._sequence})
            elif kind == "Close":
                return "close"
            else:
                self.warn(
                    "UNKNOWN_MESSAGE_TYPE",
                    f"unknown message type {kind!r}: expected Speak, Flush, Clear or Close",
                )

    def _speak(self, text: Any) -> None:
        if not isinstance(text, str):
            self.warn("INVALID_SPEAK", "a Speak message needs a text string")
        elif sum(map(len, self._text)) + len(text) > MAX_TEXT:
            self.warn(
                "TEXT_TOO_LONG", f"more than {MAX_TEXT} characters before a Flush: this text was dropped"
            )
        else:
            self._text.append(text)
