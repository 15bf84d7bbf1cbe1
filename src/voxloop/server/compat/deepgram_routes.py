"""The Deepgram-compatible routes, for app.py, each behind the server's keys, origins and limits,
answering refusals with Deepgram's error JSON (`deepgram_errors.py`).

WS   /v1/listen   live transcription          deepgram_listen.py
POST /v1/listen   prerecorded transcription   deepgram_prerecorded.py
WS   /v1/speak    streaming text to speech    deepgram_speak.py
POST /v1/speak    text to speech              deepgram_speak.py

A connection or request holds one of the server's `max_sessions` slots (the ones /v1/agent's
sessions take) while it runs; with none free it is refused with 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import numpy as np
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from voxloop.providers.base import TTS
from voxloop.server import jsontext
from voxloop.server.compat import deepgram_errors as dge
from voxloop.server.compat.auth import authorized, read_limited
from voxloop.server.compat.deepgram_audio import decode_body, encode, wav_file
from voxloop.server.compat.deepgram_errors import DeepgramError
from voxloop.server.compat.deepgram_listen import LiveTranscription
from voxloop.server.compat.deepgram_params import COMPRESSED, Query, listen_options, speak_options
from voxloop.server.compat.deepgram_prerecorded import transcribe_recording
from voxloop.server.compat.deepgram_results import ModelInfo
from voxloop.server.compat.deepgram_speak import MAX_TEXT, LiveSpeech, speech_audio
from voxloop.server.compat.openai_audio import MEDIA_TYPES, SpeechEncoder, encoder_available

if TYPE_CHECKING:
    from voxloop.server.state import ServerState

CONTENT_TYPES = {"linear16": "audio/l16", "mulaw": "audio/basic", "alaw": "audio/x-alaw-basic"}


def deepgram_routes(state: ServerState) -> list[BaseRoute]:
    from voxloop.server.app import origin_allowed  # app.py imports this module

    settings, config, providers = state.settings, state.config, state.providers
    stt_local = config.stt.model if config.stt.provider == "whisper" else config.stt.provider
    tts_local = f"{config.tts.provider}-{config.tts.voice}"

    def admit(conn: HTTPConnection) -> None:
        """Keys, readiness and a free slot (the slot itself is taken by `state.take_slot`)."""
        if not authorized(conn, settings):
            raise DeepgramError(401, "Invalid credentials.")
        if not state.ready.is_set():
            raise DeepgramError(503, "the models are still loading (or failed to load): try again shortly")
        if state.active >= settings.max_sessions:
            raise DeepgramError(
                429, f"Too many requests: all {settings.max_sessions} of this server's sessions are in use"
            )

    async def websocket(ws: WebSocket, run: Callable[[str], Awaitable[None]]) -> None:
        request_id = dge.new_request_id()
        if not origin_allowed(ws.headers.get("origin"), ws.headers.get("host"), settings):
            await dge.deny(ws, 403, "this page's origin may not use this server", request_id)
            return
        try:
            admit(ws)
            await run(request_id)
        except DeepgramError as e:
            await dge.deny(ws, e.status, e.message, request_id)

    async def accept(ws: WebSocket, request_id: str) -> None:
        offered = [p.strip().lower() for p in ws.headers.get("sec-websocket-protocol", "").split(",")]
        subprotocol = "token" if offered and offered[0] == "token" else None  # a browser's key
        await ws.accept(subprotocol=subprotocol, headers=[(b"dg-request-id", request_id.encode())])

    # -- live transcription ------------------------------------------------------------------------
    async def listen_ws(ws: WebSocket) -> None:
        async def run(request_id: str) -> None:
            opts = listen_options(ws.query_params.multi_items(), config, live=True)
            with state.take_slot():
                await accept(ws, request_id)
                model = ModelInfo(opts.model, stt_local)
                await LiveTranscription(ws, providers, config, settings, opts, request_id, model).run()

        await websocket(ws, run)

    # -- prerecorded ------------------------------------------------------------------------------
    async def listen_rest(request: Request) -> Response:
        request_id = dge.new_request_id()
        try:
            admit(request)
            params = request.query_params.multi_items()
            opts = listen_options(params, config, live=False)
            utt_split = _seconds(Query(params).get("utt_split"), 0.8)
            with state.take_slot():
                body = await _body(request, settings.max_body_bytes)
                if request.headers.get("content-type", "").startswith("application/json"):
                    raise DeepgramError(
                        400, "transcribing audio from a URL is not supported here: send the audio itself"
                    )
                # a long recording takes a while to decode and hash: not on the event loop
                audio, rate = await asyncio.to_thread(decode_body, body, opts.encoding, opts.sample_rate)
                digest = await asyncio.to_thread(hashlib.sha256, body)
                answer = await transcribe_recording(
                    providers.stt,
                    providers.vad,
                    audio,
                    rate,
                    opts,
                    utt_split=utt_split,
                    request_id=request_id,
                    sha256=digest,
                    model=ModelInfo(opts.model, stt_local),
                )
            return JSONResponse(answer, headers={"dg-request-id": request_id})
        except DeepgramError as e:
            return dge.error_response(e.status, e.message, request_id)

    # -- speech ------------------------------------------------------------------------------------
    async def speak_ws(ws: WebSocket) -> None:
        async def run(request_id: str) -> None:
            opts = speak_options(ws.query_params.multi_items(), config, rest=False)
            with state.take_slot():
                await accept(ws, request_id)
                model = ModelInfo(opts.model, tts_local)
                await LiveSpeech(ws, providers.tts, settings, opts, request_id, model).run()

        await websocket(ws, run)

    async def speak_rest(request: Request) -> Response:
        request_id = dge.new_request_id()
        try:
            admit(request)
            opts = speak_options(request.query_params.multi_items(), config, rest=True)
            with state.take_slot():
                body = await _body(request, settings.max_body_bytes)
                try:
                    text = jsontext.loads(body).get("text")
                except (ValueError, AttributeError):
                    raise DeepgramError(400, 'the body must be JSON: {"text": "..."}') from None
                if not isinstance(text, str) or not text.strip():
                    raise DeepgramError(400, 'the body must hold the text to speak: {"text": "..."}')
                if len(text) > MAX_TEXT:
                    raise DeepgramError(413, f"the text is longer than {MAX_TEXT} characters")
                headers = {
                    "dg-request-id": request_id,
                    "dg-model-name": opts.model,
                    "dg-model-uuid": ModelInfo(opts.model, tts_local).uuid,
                    "dg-char-count": str(len(text)),
                }
                if opts.encoding in COMPRESSED:
                    return await compressed_speech(providers.tts, text, opts.encoding, headers)
                chunks = [x async for x in speech_audio(providers.tts, text, opts.sample_rate)]
                audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
            if opts.container == "wav":
                wav = wav_file(audio, opts.sample_rate, opts.encoding)
                return Response(wav, media_type="audio/wav", headers=headers)
            media = f"{CONTENT_TYPES[opts.encoding]};rate={opts.sample_rate}"
            return Response(encode(audio, opts.encoding), media_type=media, headers=headers)
        except DeepgramError as e:
            return dge.error_response(e.status, e.message, request_id)

    return [
        WebSocketRoute("/v1/listen", listen_ws),
        Route("/v1/listen", listen_rest, methods=["POST"]),
        WebSocketRoute("/v1/speak", speak_ws),
        Route("/v1/speak", speak_rest, methods=["POST"]),
    ]


async def compressed_speech(tts: TTS, text: str, fmt: str, headers: dict[str, str]) -> Response:
    """Speech in mp3, Ogg Opus, flac or aac, encoded by PyAV in a worker thread."""
    if not encoder_available(fmt):
        raise DeepgramError(400, f"encoding={fmt} needs PyAV with its encoder: use linear16, mulaw or alaw")
    encoder = SpeechEncoder(fmt, tts.sample_rate)
    async with contextlib.aclosing(tts.synthesize(text)) as chunks:
        parts = [await asyncio.to_thread(encoder.push, chunk) async for chunk in chunks]
    parts.append(await asyncio.to_thread(encoder.finish))
    return Response(b"".join(parts), media_type=MEDIA_TYPES[fmt], headers=headers)


def _seconds(value: str | None, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        s = float(value)
    except ValueError:
        raise DeepgramError(400, f"utt_split={value!r}: expected seconds") from None
    if not 0.0 < s <= 60.0:
        raise DeepgramError(400, f"utt_split={s}: must be between 0 and 60 seconds")
    return s


async def _body(request: Request, limit: int) -> bytes:
    """The whole body; 413 when it is, or turns out to be, longer than `limit`."""
    too_big = DeepgramError(413, f"Payload Too Large: the body is over this server's limit of {limit} bytes")
    return await read_limited(request, limit, too_big)
