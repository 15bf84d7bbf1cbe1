"""POST /v1/audio/transcriptions: an uploaded recording, transcribed by the loaded recogniser.

Multipart fields as OpenAI documents them: `file`, `model`, `response_format` (json, text,
verbose_json, srt, vtt), `prompt` (the recogniser's context: words said before, or a spelling
guide), `language` (English: the local recognisers know no other), `temperature`,
`timestamp_granularities[]` (segment, word; with verbose_json). The whole recording is decoded the
way `voxloop transcribe` decodes it (Whisper's standard 30 s windows, beam 5).
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from voxloop.providers.base import BatchOptions, Segment, Transcript
from voxloop.server.compat.openai_audio import AudioDecodeError, decode_upload
from voxloop.server.compat.openai_http import OpenAIError, bad_param, check_model, read_body, replayed

if TYPE_CHECKING:
    from voxloop.server.state import ServerState

FORMATS = ("json", "text", "verbose_json", "srt", "vtt")
ENGLISH = ("", "en", "eng", "english")


def transcriptions_handler(state: ServerState) -> Any:
    async def transcribe(request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise OpenAIError(400, "send the recording as multipart/form-data (fields: file, model, ...)")
        body = await read_body(request, state.settings.max_body_bytes)
        try:
            async with replayed(request, body).form(max_files=1, max_fields=64) as form:
                fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
                granularities = [v for k, v in form.multi_items() if k.startswith("timestamp_granularities")]
                upload = form.get("file")
                data = await upload.read() if isinstance(upload, UploadFile) else None
        except MultiPartException as e:
            raise OpenAIError(400, f"the multipart body could not be read: {e.message}") from None
        if data is None:
            raise OpenAIError(400, "you must provide a file", param="file", code="missing_required_parameter")
        check_model(state, fields.get("model"), "stt")
        fmt = fields.get("response_format", "json") or "json"
        if fmt not in FORMATS:
            raise bad_param("response_format", f"response_format must be one of {', '.join(FORMATS)}")
        if fields.get("stream", "false").lower() == "true":
            raise bad_param("stream", "streamed transcription is not supported here: leave stream unset")
        if fields.get("language", "").strip().lower() not in ENGLISH:
            raise bad_param("language", "this server's recogniser knows English only (language=en)")
        temperature = _number(fields.get("temperature", "0") or "0", "temperature", 0.0, 1.0)
        unknown = [g for g in granularities if not isinstance(g, str) or g not in ("word", "segment")]
        if unknown:
            raise bad_param("timestamp_granularities", "timestamp_granularities are word and/or segment")
        want_words = "word" in granularities and fmt == "verbose_json"

        try:
            audio = await asyncio.to_thread(decode_upload, data)
        except AudioDecodeError as e:
            raise OpenAIError(400, str(e), param="file", code="invalid_file_format") from None
        if len(audio) == 0:
            raise OpenAIError(400, "the audio file holds no audio", param="file", code="invalid_file_format")
        options = BatchOptions(
            context=fields.get("prompt", ""),
            timings=fmt in ("verbose_json", "srt", "vtt"),
            temperature=temperature,
        )
        t = await state.providers.stt.transcribe_batch(audio, options)
        return render(t, fmt, want_words, temperature)

    return transcribe


def _number(value: str, param: str, low: float, high: float) -> float:
    try:
        x = float(value)
    except ValueError:
        raise bad_param(param, f"{param} must be a number") from None
    if not low <= x <= high or math.isnan(x):
        raise bad_param(param, f"{param} must be between {low:g} and {high:g}")
    return x


# -- the response formats --------------------------------------------------------------------------
def render(t: Transcript, fmt: str, words: bool = False, temperature: float = 0.0) -> Response:
    usage = {"type": "duration", "seconds": math.ceil(t.audio_s)}
    if fmt == "json":
        return JSONResponse({"text": t.text, "usage": usage})
    if fmt == "text":
        return PlainTextResponse(t.text + "\n")
    if fmt == "srt":
        return PlainTextResponse(srt(t), media_type="application/x-subrip")
    if fmt == "vtt":
        return PlainTextResponse(vtt(t), media_type="text/vtt")
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": "english",
        "duration": round(t.audio_s, 3),
        "text": t.text,
        "segments": [
            {
                "id": i,
                "seek": 0,
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": " " + s.text,
                "tokens": [],
                "temperature": temperature,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": 1.0,
                "no_speech_prob": s.no_speech_prob,
            }
            for i, s in enumerate(segments(t))
        ],
        "usage": usage,
    }
    if words:
        body["words"] = [
            {"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)} for w in t.words
        ]
    return JSONResponse(body)


def segments(t: Transcript) -> list[Segment]:
    """The transcript's segments; one covering the whole recording when the recogniser gave none."""
    if t.segments:
        return list(t.segments)
    return [Segment(t.text, 0.0, t.audio_s)] if t.text else []


def _stamp(seconds: float, sep: str) -> str:
    ms = round(max(0.0, seconds) * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def srt(t: Transcript) -> str:
    cues = [
        f"{i}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text}\n"
        for i, s in enumerate(segments(t), start=1)
    ]
    return "\n".join(cues) + ("\n" if cues else "")


def vtt(t: Transcript) -> str:
    cues = [f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text}\n" for s in segments(t)]
    return "WEBVTT\n\n" + "\n".join(cues) + ("\n" if cues else "")
