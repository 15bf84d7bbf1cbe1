"""Deepgram's errors, as its API sends them, so its SDK raises its usual exceptions.

HTTP (and a refused WebSocket handshake): a status and `{"err_code", "err_msg", "request_id"}`,
with the message also in a `dg-error` header and the id in `dg-request-id`. On an open WebSocket:
a close frame whose reason names the error (`NET-0001` for a connection that idled out,
`DATA-0000` for audio that cannot be decoded), or an `Error` message for a text message that is
not a message (`variant: SchemaError`).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from voxloop.server.logs import refusals

log = logging.getLogger("voxloop.server.deepgram")

ERR_CODES = {
    400: "Bad Request",
    401: "INVALID_AUTH",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    413: "PAYLOAD_TOO_LARGE",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
}

# Close codes and reasons on an open WebSocket (Deepgram's troubleshooting guide).
CLOSE_NORMAL = 1000
CLOSE_DATA = 1008  # the payload cannot be decoded as audio
CLOSE_NET = 1011  # nothing received within the timeout window
NET_0001 = "NET-0001: no audio data or text message was received within the 10 s timeout window"
DATA_0000 = "DATA-0000: the payload cannot be decoded as audio in the encoding the stream declared"


def new_request_id() -> str:
    return str(uuid.uuid4())


class DeepgramError(Exception):
    """A request the API refuses: its HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str, request_id: str) -> dict[str, Any]:
    return {"err_code": ERR_CODES.get(status, "Bad Request"), "err_msg": message, "request_id": request_id}


def error_response(status: int, message: str, request_id: str) -> JSONResponse:
    headers = {"dg-error": message[:200], "dg-request-id": request_id}
    if status == 429:
        headers["Retry-After"] = "1"
    return JSONResponse(error_body(status, message, request_id), status_code=status, headers=headers)


async def deny(ws: WebSocket, status: int, message: str, request_id: str) -> None:
    """Refuse a WebSocket handshake with an HTTP status and the error JSON."""
    refusals.log(logging.INFO, "refused a connection to %s (%d): %s", ws.url.path, status, message)
    try:
        await ws.send_denial_response(error_response(status, message, request_id))
    except RuntimeError:  # the ASGI server cannot send a response: a plain refusal
        await ws.close(code=1008)


def schema_error(description: str, original: str) -> dict[str, Any]:
    """The `Error` message for a text message the server cannot act on (the connection goes on)."""
    return {"type": "Error", "variant": "SchemaError", "description": description, "message": original[:500]}
