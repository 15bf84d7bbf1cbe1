"""A scripted OpenAI-compatible chat server on loopback, for the cloud LLM's tests.

It speaks the wire format the `openai` client reads, byte for byte: HTTP/1.1, chunked transfer
encoding, server-sent events (`data: {chat.completion.chunk}` blocks ending with `data: [DONE]`),
and OpenAI's error JSON. Each POST /v1/chat/completions takes the next step of its script:

    Reply(pieces)                 200, the pieces streamed, a finish reason, [DONE]
    Status(503, retry_after="1")  that status with OpenAI's error body (and Retry-After)
    Stall(after=n)                n pieces, then nothing until the test ends (n=0: not even headers)
    Cut(after=n, clean=False)     n pieces, then the socket closed mid-body (clean: the chunked
                                  body ends properly, but without a finish reason or [DONE])
    Calls(calls, pieces)          the pieces, then tool calls as OpenAI streams them: per call a
                                  first `tool_calls` delta with its index, id, type and name (and
                                  empty arguments), then its arguments in pieces of `cut`
                                  characters; finish reason "tool_calls"

When the script runs out, every further request gets `default`. GET /v1/models lists one model.
Every request is kept (`requests`: method, path, headers, JSON body). Nothing here sleeps: a stall
waits for the server to close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reply:
    pieces: tuple[str, ...] = ("Hello", " there", ".")
    finish: str = "stop"


@dataclass(frozen=True)
class Status:
    status: int
    retry_after: str = ""
    message: str = "scripted failure"


@dataclass(frozen=True)
class Stall:
    after: int = 0


@dataclass(frozen=True)
class Busy:
    """Answers at once (headers, the role), then its words only once `go` is set."""

    go: asyncio.Event
    pieces: tuple[str, ...] = ("Hello", " there", ".")


@dataclass(frozen=True)
class Cut:
    after: int = 1
    clean: bool = False


@dataclass(frozen=True)
class Calls:
    calls: tuple[tuple[str, str, str], ...]  # (id, name, arguments as JSON text)
    pieces: tuple[str, ...] = ()  # words before the calls
    cut: int = 4


Step = Reply | Status | Stall | Cut | Busy | Calls
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Upstream:
    port: int = 0
    script: list[Step] = field(default_factory=list)
    default: Step = field(default_factory=Reply)
    requests: list[Request] = field(default_factory=list)
    _closing: asyncio.Event = field(default_factory=asyncio.Event)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)
    received: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chats(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    async def wait_chats(self, n: int) -> None:
        async with self.received:
            await self.received.wait_for(lambda: len(self.chats) >= n)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
            req = Request(method, path, headers, json.loads(raw) if raw else {})
            async with self.received:
                self.requests.append(req)
                self.received.notify_all()
            if method == "GET" and path.endswith("/models"):
                body = {
                    "object": "list",
                    "data": [{"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "scripted"}],
                }
                await self._whole(writer, 200, body)
                return
            step = self.script.pop(0) if self.script else self.default
            await self._answer(writer, step, req.body.get("model", ""))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _whole(
        self, writer: asyncio.StreamWriter, status: int, body: dict[str, Any], extra: str = ""
    ) -> None:
        data = json.dumps(body).encode()
        writer.write(
            f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\n{extra}connection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()

    async def _answer(self, writer: asyncio.StreamWriter, step: Step, model: str) -> None:
        if isinstance(step, Status):
            kind = (
                "rate_limit_exceeded"
                if step.status == 429
                else "server_error"
                if step.status >= 500
                else "invalid_request_error"
            )
            body = {"error": {"message": step.message, "type": kind, "param": None, "code": None}}
            extra = f"retry-after: {step.retry_after}\r\n" if step.retry_after else ""
            await self._whole(writer, step.status, body, extra)
            return
        if isinstance(step, Stall) and step.after == 0:
            await self._closing.wait()
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
            b"transfer-encoding: chunked\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n"
        )
        if isinstance(step, Busy):
            writer.write(_http_chunk(_chunk(model, {"role": "assistant", "content": ""})))
            await writer.drain()
            await step.go.wait()
            step = Reply(step.pieces)
        if isinstance(step, Calls):
            await self._calls(writer, step, model)
            return
        pieces = step.pieces if isinstance(step, Reply) else tuple(f"w{i} " for i in range(step.after))
        events = [_chunk(model, {"role": "assistant", "content": ""})]
        events += [_chunk(model, {"content": p}) for p in pieces]
        for event in events:
            writer.write(_http_chunk(event))
            await writer.drain()
        if isinstance(step, Stall):
            await self._closing.wait()
        elif isinstance(step, Cut):
            if step.clean:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
            else:
                writer.transport.abort()  # mid-body: the chunked body never ends
        else:
            for event in (_chunk(model, {}, step.finish), "data: [DONE]\n\n"):
                writer.write(_http_chunk(event))
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    async def _calls(self, writer: asyncio.StreamWriter, step: Calls, model: str) -> None:
        events = [_chunk(model, {"role": "assistant", "content": None if not step.pieces else ""})]
        events += [_chunk(model, {"content": p}) for p in step.pieces]
        for index, (call_id, name, args) in enumerate(step.calls):
            head = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            events.append(_chunk(model, {"tool_calls": [head]}))
            for i in range(0, len(args), step.cut):
                more = {"index": index, "function": {"arguments": args[i : i + step.cut]}}
                events.append(_chunk(model, {"tool_calls": [more]}))
        events += [_chunk(model, {}, "tool_calls"), "data: [DONE]\n\n"]
        for event in events:
            writer.write(_http_chunk(event))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> str:
    body = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


def _http_chunk(text: str) -> bytes:
    data = text.encode()
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@contextlib.asynccontextmanager
async def upstream(*script: Step, default: Step | None = None) -> AsyncIterator[Upstream]:
    up = Upstream(script=list(script), default=default or Reply())
    server = await asyncio.start_server(up._serve, "127.0.0.1", 0)
    up.port = server.sockets[0].getsockname()[1]
    try:
        yield up
    finally:
        up._closing.set()
        server.close()  # the stalled handlers return once `_closing` is set
        await asyncio.gather(*up._handlers, return_exceptions=True)
        await server.wait_closed()
