"""`WS /v1/telephony/twilio`: Twilio Media Streams into a voice session (docs/telephony.md).

Who may connect: with a Twilio auth token configured, only a handshake whose X-Twilio-Signature
is Twilio's for this URL (else 403, before the WebSocket opens). Without one, the server's API
keys (if any) apply: in the handshake (`?token=`, `Authorization`), or, since Twilio's handshake
carries neither, as the stream's custom parameter `token`, checked at `start`.
A call holds one of the server's `max_sessions` slots while it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from voxloop.server import protocol as p
from voxloop.server.compat.auth import key_valid, presented_key
from voxloop.server.logs import refusals
from voxloop.server.socket_session import open_session
from voxloop.server.telephony import signature
from voxloop.server.telephony.call import TwilioCall

if TYPE_CHECKING:
    from voxloop.server.state import Refusal, ServerState

log = logging.getLogger("voxloop.telephony")
PATH = "/v1/telephony/twilio"
SHORT = {p.NOT_READY: "the models are still loading"}  # a refusal's words, where a call's are shorter


def signed_by_twilio(ws: WebSocket, auth_token: str, public_url: str = "") -> bool:
    urls = signature.request_urls(ws.headers.get("host", ""), ws.url.path, ws.url.query, public_url)
    return signature.valid(auth_token, ws.headers.get("x-twilio-signature"), urls)


def telephony_routes(state: ServerState) -> list[BaseRoute]:
    settings = state.settings

    async def twilio(ws: WebSocket) -> None:
        key_needed = False
        if settings.twilio_auth_token:
            if not signed_by_twilio(ws, settings.twilio_auth_token, settings.twilio_public_url):
                await _deny(ws, "the X-Twilio-Signature does not match this URL and the auth token")
                return
        elif settings.auth_required:
            key_needed = presented_key(ws) is None  # then it must come with `start`
            if not key_needed and not key_valid(presented_key(ws), settings.api_keys):
                await _deny(ws, "the API key presented is not valid")
                return

        def make(call_id: str, release: Callable[[], None]) -> TwilioCall:
            return TwilioCall(
                ws, state.providers, state.config, settings, key_needed=key_needed, on_end=release
            )

        await open_session(state, ws, make, lambda refusal: _refuse(ws, refusal))

    return [WebSocketRoute(PATH, twilio)]


async def _refuse(ws: WebSocket, refusal: Refusal) -> None:
    """Accept and close with the reason, which Twilio's debugger shows."""
    why = SHORT.get(refusal.code, refusal.message)
    refusals.log(logging.WARNING, "refused a Twilio call: %s", why)
    await ws.accept()
    await ws.close(refusal.close, why[:120])


async def _deny(ws: WebSocket, message: str) -> None:
    refusals.log(logging.WARNING, "refused a Twilio stream (403): %s", message)
    body = {"error": {"code": "forbidden", "message": message}}
    try:
        await ws.send_denial_response(JSONResponse(body, status_code=403))
    except RuntimeError:  # the ASGI server cannot send a response: a plain refusal
        await ws.close(code=1008)
