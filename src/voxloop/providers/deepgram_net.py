"""What Deepgram's speech-to-text and text-to-speech providers share: where to connect and with
which key, a WebSocket opened within a deadline, sends that may not block, failures turned into
`ProviderError`s with a category, and connections retried with back-off (`providers/recovery.py`).

The key goes only into the `Authorization: Token <key>` header; every message that could carry it
(an error body, a URL) passes through `errors.redact` first.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode, urlsplit

from voxloop.config import DeepgramConfig
from voxloop.errors import Category, ProviderError, classify, classify_status, redact
from voxloop.providers._imports import require
from voxloop.providers.recovery import Incident, backoff, report, retry_after

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

log = logging.getLogger("voxloop.deepgram")
_CREDENTIAL = re.compile(r"\b(Token|Bearer)\s+\S+", re.IGNORECASE)


class _NoCredentials(logging.Filter):
    """The WebSocket library logs the handshake's headers at debug level: not the key."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if _CREDENTIAL.search(text):
            record.msg, record.args = _CREDENTIAL.sub(r"\1 ***", text), ()
        return True


ws_log = logging.getLogger("voxloop.deepgram.websocket")
ws_log.addFilter(_NoCredentials())
DEFAULT_BASE = "https://api.deepgram.com"
PROVIDER = "deepgram"
T = TypeVar("T")


@dataclass(frozen=True)
class Endpoint:
    http: str  # http(s)://host[:port][/prefix], no trailing slash
    ws: str  # the same as ws(s)://
    key: str = ""  # "": no Authorization header (a local server that needs none)

    @classmethod
    def of(cls, cfg: DeepgramConfig) -> Endpoint:
        base = (cfg.base_url or os.environ.get("DEEPGRAM_BASE_URL") or DEFAULT_BASE).rstrip("/")
        key = cfg.api_key or os.environ.get("DEEPGRAM_API_KEY", "")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
            raise ProviderError(
                f"the Deepgram URL {redact(base, key)!r} is not an http(s):// or ws(s):// URL",
                "set --deepgram-url or $DEEPGRAM_BASE_URL, e.g. http://127.0.0.1:8000",
                category="bad_request",
                provider=PROVIDER,
            )
        secure = parts.scheme in ("https", "wss")
        rest = base.split("://", 1)[1]
        http = f"{'https' if secure else 'http'}://{rest}"
        ws = f"{'wss' if secure else 'ws'}://{rest}"
        if not key and http.startswith(DEFAULT_BASE):
            raise ProviderError(
                "no Deepgram API key",
                "set $DEEPGRAM_API_KEY (or point --deepgram-url at a compatible server)",
                category="auth",
                provider=PROVIDER,
            )
        return cls(http, ws, key)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.key}"} if self.key else {}

    def ws_url(self, path: str, params: Sequence[tuple[str, str]]) -> str:
        return f"{self.ws}{path}?{urlencode(list(params))}"

    def http_url(self, path: str, params: Sequence[tuple[str, str]]) -> str:
        return f"{self.http}{path}?{urlencode(list(params))}"


class DeepgramClient:
    """A provider that talks to Deepgram (or a compatible server) as set in `self.dg`: where and
    with which key, worked out once, when first needed (`load` checks it)."""

    dg: DeepgramConfig

    @functools.cached_property
    def endpoint(self) -> Endpoint:
        return Endpoint.of(self.dg)


def flag(value: bool) -> str:
    return "true" if value else "false"


# -- failures as data --------------------------------------------------------------------------------
def status_error(
    stage: str, status: int, headers: Any, body: bytes | bytearray | str, key: str, what: str
) -> ProviderError:
    """An HTTP refusal (of a request or a WebSocket handshake) as a ProviderError: the category
    from the status, the server's Retry-After, its message (`err_msg`) without the key."""
    text = body if isinstance(body, str) else bytes(body).decode("utf-8", "replace")
    detail = text[:300]
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            detail = str(parsed.get("err_msg") or parsed.get("message") or parsed.get("reason") or detail)
    except ValueError:
        pass
    wait = retry_after({k.lower(): v for k, v in dict(headers or {}).items()})
    return ProviderError(
        redact(f"Deepgram {stage}: {what} was refused with HTTP {status}: {detail}".strip(), key),
        category=classify_status(status),
        retry_after=wait,
        status=status,
        provider=PROVIDER,
    )


def as_error(stage: str, exc: BaseException, key: str, what: str) -> ProviderError:
    """Any failure of a connection (the handshake, a dropped socket, a deadline) as a ProviderError."""
    if isinstance(exc, ProviderError):
        return exc
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    if isinstance(exc, InvalidStatus):
        r = exc.response
        return status_error(stage, r.status_code, r.headers, r.body or b"", key, what)
    if isinstance(exc, ConnectionClosed):
        frame = exc.rcvd
        code, reason = (frame.code, frame.reason) if frame is not None else (1006, "no close frame")
        # 1008 DATA-0000: the audio cannot be decoded; the same audio would fail again
        category: Category = "bad_request" if code == 1008 else "connectivity"
        message = f"Deepgram {stage}: the socket closed during {what} ({code} {reason})".strip()
        return ProviderError(redact(message, key), category=category, provider=PROVIDER)
    if isinstance(exc, TimeoutError):
        message = f"Deepgram {stage}: {what} passed its deadline"
        return ProviderError(message, category="timeout", provider=PROVIDER)
    message = f"Deepgram {stage}: {what} failed: {type(exc).__name__}: {exc}"
    return ProviderError(redact(message, key), category=classify(exc), provider=PROVIDER)


# -- sockets ------------------------------------------------------------------------------------------
async def open_socket(url: str, endpoint: Endpoint, cfg: DeepgramConfig, stage: str) -> ClientConnection:
    """One WebSocket, open within `connect_timeout_s` (else ProviderError). The library's pings
    (every `keepalive_s`) close a socket whose peer stopped answering."""
    require("websockets", "cloud")
    from websockets.asyncio.client import connect

    try:
        return await connect(
            url,
            additional_headers=endpoint.headers(),
            open_timeout=cfg.connect_timeout_s,
            ping_interval=cfg.keepalive_s,
            ping_timeout=cfg.keepalive_s,
            close_timeout=1.0,
            max_size=None,
            compression=None,
            proxy=None,
            user_agent_header="voxloop",
            logger=ws_log,
        )
    except Exception as e:  # every way a handshake fails, as data
        err = as_error(stage, e, endpoint.key, "the connection")
        # no HTTP answer at all: refused, no such host, no connection in time, reset
        err.unreachable = err.status is None and err.category in ("connectivity", "timeout")
        raise err from None


async def send(ws: ClientConnection, message: str | bytes, deadline_s: float, stage: str, key: str) -> None:
    """A send that may not block past `deadline_s` (a peer that stopped reading): ProviderError."""
    try:
        await asyncio.wait_for(ws.send(message), deadline_s)
    except TimeoutError:
        raise ProviderError(
            f"Deepgram {stage}: a send blocked for {deadline_s:g} s (the connection is stalled)",
            category="timeout",
            provider=PROVIDER,
        ) from None
    except Exception as e:
        raise as_error(stage, e, key, "a send") from None


async def close_quietly(ws: ClientConnection | None) -> None:
    """Close a socket that is being given up on, without waiting long for the peer."""
    if ws is None:
        return
    try:
        await asyncio.wait_for(ws.close(), 1.0)
    except Exception:  # it is being abandoned: its own failure does not matter
        ws.transport.abort()


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    cfg: DeepgramConfig,
    stage: str,
    counters: Counter[str],
    *,
    label: str = "retry",
    has_fallback: bool = False,
) -> T:
    """`attempt()` until it succeeds, at most `cfg.retry.max_retries` more times after a retryable
    ProviderError: jittered exponential back-off, or the server's Retry-After (429/503) when it
    gave one. Each retry is reported (`Incident`) and counted (`counters[label]`); the last
    failure is reported and raised. `has_fallback` (another provider can serve): an unreachable
    server is tried once more at once, then given up on."""
    tries = 0
    while True:
        try:
            return await attempt()
        except ProviderError as e:
            tries += 1
            delay = None
            if e.retryable and tries <= cfg.retry.max_retries:
                delay = backoff(tries, cfg.retry, e.retry_after)
            if e.unreachable and has_fallback:
                delay = 0.0 if tries == 1 and delay is not None else None
            if delay is None:
                counters["gave_up"] += 1
                report(Incident("error", stage, PROVIDER, e.category, e.message))
                e.reported = True
                raise
            counters[label] += 1
            counters[f"{label}_{e.category}"] += 1
            report(Incident("retry", stage, PROVIDER, e.category, e.message, attempt=tries, delay_s=delay))
            await asyncio.sleep(delay)  # the back-off itself
