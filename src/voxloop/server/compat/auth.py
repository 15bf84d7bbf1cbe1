"""API keys for the compatible endpoints, presented the ways their clients present them.

`Authorization: Bearer KEY` (OpenAI's clients), `Authorization: Token KEY` (Deepgram's), a
browser's WebSocket subprotocols `token, KEY` (Deepgram's browser SDK), or `?token=KEY`."""

from __future__ import annotations

import hmac

from starlette.requests import HTTPConnection, Request

from voxloop.server.settings import ServerSettings


def presented_key(conn: HTTPConnection) -> str | None:
    scheme, _, value = conn.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    protocols = [p.strip() for p in conn.headers.get("sec-websocket-protocol", "").split(",")]
    if len(protocols) >= 2 and protocols[0].lower() == "token" and protocols[1]:
        return protocols[1]
    return conn.query_params.get("token") or None


def authorized(conn: HTTPConnection, settings: ServerSettings) -> bool:
    """True when no key is needed, or a valid one was presented."""
    if not settings.auth_required:
        return True
    return key_valid(presented_key(conn), settings.api_keys)


def key_valid(key: str | None, keys: tuple[str, ...]) -> bool:
    if not key:
        return False
    # compare against every key, in constant time per key
    return any([hmac.compare_digest(key.encode(), k.encode()) for k in keys])


async def read_limited(request: Request, limit: int, too_big: Exception) -> bytes:
    """The whole body; raises `too_big` when it is, or turns out to be, longer than `limit`."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)
