"""POST /v1/audio/speech: text spoken by the loaded voice, the body streamed as it is synthesized.

JSON as OpenAI documents it: `model`, `input` (at most 4096 characters), `voice` (any of OpenAI's
voice names, or the local voice's own: all speak with the loaded voice), `response_format`
(`pcm`, `wav`, and `mp3`, `opus`, `aac`, `flac` when PyAV's encoders are installed; default mp3 as
OpenAI's), `speed` (0.25-4.0; the voice keeps within its own range), `instructions` (accepted and
ignored: the local voice has one manner). It is spoken a sentence at a time, so other requests and
voice sessions get the voice in between; a client that goes away stops the synthesis.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from voxloop.agent.chunker import SentenceChunker
from voxloop.server.compat.openai_audio import MEDIA_TYPES, SpeechEncoder, encoder_available
from voxloop.server.compat.openai_http import OpenAIError, bad_param, check_model, json_object

if TYPE_CHECKING:
    from voxloop.providers.base import TTS, Samples
    from voxloop.server.state import ServerState

MAX_INPUT = 4096
OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)


def speech_handler(state: ServerState) -> Any:
    async def speech(request: Request) -> Response:
        req = await json_object(request, state.settings.max_body_bytes)
        check_model(state, req.get("model"), "tts")
        text = req.get("input")
        if not isinstance(text, str) or not text.strip():
            raise OpenAIError(400, "input must be a non-empty string", param="input")
        if len(text) > MAX_INPUT:
            raise bad_param("input", f"input is longer than {MAX_INPUT} characters")
        voice = req.get("voice")
        voices = (*OPENAI_VOICES, state.config.tts.voice)
        if not isinstance(voice, str) or voice.lower() not in voices:
            raise bad_param("voice", f"voice must be one of {', '.join(voices)}")
        fmt = req.get("response_format") or "mp3"
        if fmt not in MEDIA_TYPES:
            raise bad_param("response_format", f"response_format must be one of {', '.join(MEDIA_TYPES)}")
        if not encoder_available(fmt):
            raise bad_param(
                "response_format",
                f"{fmt} is not supported on this server (its encoder, PyAV, is not installed): use wav or pcm",
            )
        if req.get("stream_format", "audio") != "audio":
            raise bad_param("stream_format", "only stream_format=audio is supported here")
        speed = req.get("speed", 1.0)
        if (
            isinstance(speed, bool)
            or not isinstance(speed, int | float)
            or math.isnan(speed)
            or not 0.25 <= speed <= 4.0
        ):
            raise bad_param("speed", "speed must be a number from 0.25 to 4.0")
        tts = state.providers.tts
        parts = sentences(text)
        try:
            first = tts.synthesize_with(parts[0], float(speed))  # a voice with one pace says no here
        except ValueError as e:
            raise bad_param("speed", str(e)) from None
        return StreamingResponse(
            encoded(spoken(tts, parts, float(speed), first), tts, fmt),
            media_type=MEDIA_TYPES[fmt],
            headers={"Cache-Control": "no-store"},
        )

    return speech


def sentences(text: str) -> list[str]:
    """The input in sentences (at most 40 words each), cleaned of markup the voice would read."""
    chunker = SentenceChunker(first_clause_words=1 << 30)
    return [*chunker.push(text), *chunker.flush()] or [text]


async def spoken(
    tts: TTS, parts: list[str], speed: float, first: AsyncGenerator[Samples, None]
) -> AsyncGenerator[Samples, None]:
    """The voice's audio, a sentence at a time: between two, the voice's worker serves the other
    requests and voice sessions waiting for it, so a long input holds none of them up for long."""
    for i, part in enumerate(parts):
        chunks = first if i == 0 else tts.synthesize_with(part, speed)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                yield chunk


async def encoded(chunks: AsyncGenerator[Samples, None], tts: TTS, fmt: str) -> AsyncIterator[bytes]:
    """The voice's chunks as bytes of `fmt`; closing this (the client left) closes the synthesis."""
    encoder = SpeechEncoder(fmt, tts.sample_rate)
    blocking = fmt not in ("pcm", "wav")  # PyAV's encoders: off the event loop
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            data = await asyncio.to_thread(encoder.push, chunk) if blocking else encoder.push(chunk)
            if data:
                yield data
    tail = await asyncio.to_thread(encoder.finish) if blocking else encoder.finish()
    if tail:
        yield tail
