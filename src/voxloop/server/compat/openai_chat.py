"""POST /v1/chat/completions: the loaded language model, answered whole or streamed.

JSON as OpenAI documents it: `model`, `messages` (system, developer, user, assistant; text content,
as a string or text parts), `max_tokens` / `max_completion_tokens` (default 512), `temperature`
(0-2), `top_p`, `stop` (a string or up to 4), `n` (1), `stream`, `stream_options.include_usage`.
Other fields are accepted and ignored, except those asking for what a local text model here cannot
do (tools, images, audio, logprobs, n > 1), which get a 400.

Streamed, the body is server-sent events: `chat.completion.chunk`s (the role first, then the text as
it is generated, then the finish reason), a last chunk with `usage` when asked, then `[DONE]`.
A client that goes away, streamed or not, stops the generation (the model's iterator is closed).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from voxloop.providers.base import LLM, Message, Sampling, Usage
from voxloop.server.compat.openai_http import OpenAIError, bad_param, check_model, json_object, unless_gone

if TYPE_CHECKING:
    from voxloop.server.state import ServerState

log = logging.getLogger("voxloop.server.openai")
DEFAULT_MAX_TOKENS = 512
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
UNSUPPORTED = ("tools", "functions", "audio", "prediction")


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[Message]
    sampling: Sampling
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool


def parse(req: dict[str, Any], state: ServerState) -> ChatRequest:
    model = check_model(state, req.get("model"), "llm")
    for name in UNSUPPORTED:
        if req.get(name):
            raise bad_param(name, f"{name} are not supported by this server's local model")
    if req.get("logprobs"):
        raise bad_param("logprobs", "logprobs are not supported here")
    if req.get("n", 1) != 1:
        raise bad_param("n", "n must be 1 here")
    max_tokens = req.get("max_completion_tokens", req.get("max_tokens"))
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS
    elif isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise bad_param("max_tokens", "max_tokens must be a positive integer")
    temperature = _number(req, "temperature", 0.0, 2.0)
    top_p = _number(req, "top_p", 0.0, 1.0)
    stop = req.get("stop")
    stops = (stop,) if isinstance(stop, str) else stop or ()
    if (
        not isinstance(stops, list | tuple)
        or len(stops) > 4
        or not all(isinstance(s, str) and s for s in stops)
    ):
        raise bad_param("stop", "stop must be a string or a list of at most 4 non-empty strings")
    stream = req.get("stream") or False
    options = req.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, dict):
        raise bad_param("stream", "stream must be true or false, stream_options an object")
    return ChatRequest(
        model,
        messages(req.get("messages")),
        Sampling(max_tokens, temperature, top_p),
        tuple(stops),
        stream,
        bool(options.get("include_usage")),
    )


def _number(req: dict[str, Any], name: str, low: float, high: float) -> float | None:
    x = req.get(name)
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, int | float) or math.isnan(x) or not low <= x <= high:
        raise bad_param(name, f"{name} must be a number from {low:g} to {high:g}")
    return float(x)


def messages(raw: object) -> list[Message]:
    if not isinstance(raw, list) or not raw:
        raise OpenAIError(400, "messages must be a non-empty list", param="messages")
    out: list[Message] = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise bad_param(f"{where}.role", f"{where}.role must be one of {', '.join(ROLES)}")
        content = m.get("content")
        if content is None and m["role"] == "assistant":
            content = ""
        if isinstance(content, list):
            if not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
                raise bad_param(f"{where}.content", "only text content is supported here")
            content = "".join(str(p.get("text", "")) for p in content)
        if not isinstance(content, str):
            raise bad_param(f"{where}.content", f"{where}.content must be a string or text parts")
        out.append(Message(ROLES[m["role"]], content))  # type: ignore[arg-type]
    return out


# -- generation ------------------------------------------------------------------------------------
class StopFilter:
    """Text in, text out, ending before the first stop sequence. What might be the start of one is
    held back until the next piece tells."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.hold = max((len(s) for s in stops), default=1) - 1
        self.pending = ""
        self.stopped = False

    def push(self, piece: str) -> str:
        self.pending += piece
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            out, self.pending = self.pending[: min(hits)], ""
            return out
        cut = max(0, len(self.pending) - self.hold)
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


async def generate(llm: LLM, chat: ChatRequest, usage: Usage) -> AsyncGenerator[str, None]:
    """The reply's text as it comes, cut at a stop sequence and at max_tokens (usage.finish_reason
    says which ended it). Leaving early closes the model's iterator, which stops the generation."""
    limit = chat.sampling.max_tokens or DEFAULT_MAX_TOKENS
    stops = StopFilter(chat.stop)
    pieces: AsyncGenerator[str, None] = llm.stream_with(chat.messages, chat.sampling, usage)
    n = 0
    async with contextlib.aclosing(pieces):
        async for piece in pieces:
            n += 1
            if text := stops.push(piece):
                yield text
            if stops.stopped:
                usage.finish_reason = "stop"
                return
            if n >= limit:  # a provider that does not count for itself
                usage.finish_reason = "length"
                break
    if text := stops.flush():
        yield text
    usage.finish_reason = usage.finish_reason or "stop"
    usage.completion_tokens = usage.completion_tokens or n


def usage_body(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def chat_handler(state: ServerState) -> Any:
    async def completions(request: Request) -> Response:
        chat = parse(await json_object(request, state.settings.max_body_bytes), state)
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if chat.stream:
            return StreamingResponse(
                events(state.providers.llm, chat, ident, created),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            )
        usage = Usage()

        async def reply() -> str:
            return "".join([t async for t in generate(state.providers.llm, chat, usage)])

        text = await unless_gone(request, reply())  # a client that leaves stops the generation
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": None},
            "logprobs": None,
            "finish_reason": usage.finish_reason,
        }
        return JSONResponse(
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": chat.model,
                "choices": [choice],
                "usage": usage_body(usage),
                "system_fingerprint": None,
            }
        )

    return completions


async def events(llm: LLM, chat: ChatRequest, ident: str, created: int) -> AsyncIterator[str]:
    """The streamed reply as server-sent events."""
    usage = Usage()

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body: dict[str, Any] = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": chat.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if chat.include_usage:
            body["usage"] = None
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        async with contextlib.aclosing(generate(llm, chat, usage)) as texts:
            async for text in texts:
                yield chunk({"content": text})
    except Exception as e:  # the client's stream raises it as an APIError
        log.exception("a streamed chat completion failed")
        error = {
            "message": f"the generation failed: {e}",
            "type": "server_error",
            "param": None,
            "code": None,
        }
        yield f"data: {json.dumps({'error': error})}\n\n"
        return
    yield chunk({}, usage.finish_reason)
    if chat.include_usage:
        last = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": chat.model,
            "system_fingerprint": None,
            "choices": [],
            "usage": usage_body(usage),
        }
        yield f"data: {json.dumps(last)}\n\n"
    yield "data: [DONE]\n\n"
