"""What every OpenAI-compatible endpoint shares: OpenAI's error body, keys, limits, request bodies.

Errors are `{"error": {"message", "type", "param", "code"}}` with OpenAI's statuses (400 bad
parameters, 401 no or a wrong key, 404 an unknown model, 413 a body over `max_body_bytes`, 429 all
`max_sessions` slots in use, 503 while the models load), so the official client raises its usual
exceptions. A request that runs a model holds one of the server's `max_sessions` slots (the same
ones /v1/agent's sessions take) until its response has been sent, or its client has gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from voxloop.server import jsontext
from voxloop.server.compat.auth import authorized, presented_key, read_limited
from voxloop.server.compat.names import Kind, kind_of

if TYPE_CHECKING:
    from voxloop.server.state import ServerState

log = logging.getLogger("voxloop.server.openai")
Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")
KIND_WORDS = {"stt": "transcription", "tts": "speech", "llm": "chat"}


class OpenAIError(Exception):
    """An error as OpenAI reports it; raised anywhere in a handler, answered as its JSON body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        headers = {"WWW-Authenticate": 'Bearer realm="voxloop"'} if self.status == 401 else {}
        if self.status in (429, 503):
            headers["Retry-After"] = "1"  # the client's own retries wait this long
        return JSONResponse(body, status_code=self.status, headers=headers)


def bad_param(param: str, message: str) -> OpenAIError:
    return OpenAIError(400, message, param=param, code="invalid_value")


def check_model(state: ServerState, name: object, kind: Kind) -> str:
    """The model's name if it names a model of `kind` here; else OpenAI's 400 (missing) or 404."""
    if not isinstance(name, str) or not name.strip():
        raise OpenAIError(
            400, "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    if kind_of(name, state.config) != kind:
        raise OpenAIError(
            404,
            f"The model `{name}` does not exist or you do not have access to it "
            f"(this server's {KIND_WORDS[kind]} models: GET /v1/models).",
            param="model",
            code="model_not_found",
        )
    return name


# -- request bodies --------------------------------------------------------------------------------
async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) one that is, or turns out to be, longer than `limit`."""
    too_big = OpenAIError(
        413,
        f"the request body is larger than this server's limit of {limit} bytes",
        code="request_too_large",
    )
    return await read_limited(request, limit, too_big)


async def json_object(request: Request, limit: int) -> dict[str, Any]:
    body = await read_body(request, limit)
    try:
        data = jsontext.loads(body)
    except ValueError as e:
        raise OpenAIError(400, f"We could not parse the JSON body of your request: {e}") from None
    if not isinstance(data, dict):
        raise OpenAIError(400, "the request body must be a JSON object")
    return data


async def unless_gone(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """`work`, cancelled (and 499 raised) if the client disconnects first. The request's body must
    have been read: what the server receives after it can only be the disconnect."""

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    loop = asyncio.get_running_loop()
    job, watch = loop.create_task(work), loop.create_task(gone())
    try:
        await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (job, watch):
            task.cancel()
        await asyncio.gather(job, watch, return_exceptions=True)
    if job.cancelled():
        raise OpenAIError(499, "the client closed the request", code="client_closed_request")
    return job.result()


def replayed(request: Request, body: bytes) -> Request:
    """The request again, its body read from `body` (already read within the limit)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


# -- the guard around every endpoint ---------------------------------------------------------------
def endpoint(state: ServerState, handler: Handler, *, uses_models: bool = True) -> Handler:
    """`handler` behind the key check, readiness, the session slots and OpenAI's error bodies."""
    settings = state.settings

    async def guarded(request: Request) -> Response:
        if not authorized(request, settings):
            given = presented_key(request)
            message = (
                "Incorrect API key provided."
                if given
                else "You didn't provide an API key: send Authorization: Bearer YOUR_KEY."
            )
            return OpenAIError(401, message, code="invalid_api_key").response()
        if not uses_models:
            return await _answer(handler, request)
        if not state.ready.is_set():
            if state.load_error is not None:
                error = f"the models could not be loaded: {state.load_error}"
            else:
                error = "the models are still loading: try again shortly"
            return OpenAIError(503, error, type="server_error").response()
        if state.active >= settings.max_sessions:
            return OpenAIError(
                429,
                f"all {settings.max_sessions} of this server's sessions are in use: try again shortly",
                type="requests",
                code="rate_limit_exceeded",
            ).response()
        slot = state.take_slot()
        try:
            response = await _answer(handler, request)
        except BaseException:
            slot.release()
            raise
        return _Held(response, slot.release)

    return guarded


async def _answer(handler: Handler, request: Request) -> Response:
    try:
        return await handler(request)
    except OpenAIError as e:
        return e.response()
    except Exception as e:
        log.exception("%s %s failed", request.method, request.url.path)
        return OpenAIError(500, f"the server failed: {e}", type="server_error").response()


class _Held(Response):
    """A response that frees its slot once it has been sent (or its client has gone)."""

    def __init__(self, inner: Response, release: Callable[[], None]) -> None:
        self.inner, self.release = inner, release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.inner(scope, receive, send)
        finally:
            self.release()
