"""X-Twilio-Signature, as Twilio documents it for webhooks: the full URL Twilio requested (with
its query string), then each POST parameter's name and value, sorted by name, all concatenated;
HMAC-SHA1 of that with the account's auth token as the key; base64. A Media Streams WebSocket
upgrade is a GET, so its signature covers the `wss://` URL alone.

A server behind a proxy sees another address than the one Twilio signed: the public URL is
rebuilt from the Host header (or given outright), and, as Twilio's own validators do, a URL is
also tried without its port, and with its scheme's default port (443 for wss/https, 80 for
ws/http) when it has none."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"wss": 443, "https": 443, "ws": 80, "http": 80}


def compute(auth_token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    """The signature Twilio sends for a request to `url` with POST `params`."""
    data = url + "".join(k + v for k, v in sorted((params or {}).items()))
    mac = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def port_variants(url: str) -> list[str]:
    """`url` as given, without its port, and with the default port when it has none."""
    parts = urlsplit(url)
    if parts.hostname is None:
        return [url]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.username is not None or parts.password is not None:
        return [url]  # Twilio does not sign such URLs; leave them alone
    out = [url]
    if parts.port is not None:
        out.append(urlunsplit(parts._replace(netloc=host)))
    elif (default := DEFAULT_PORTS.get(parts.scheme)) is not None:
        out.append(urlunsplit(parts._replace(netloc=f"{host}:{default}")))
    return out


def valid(
    auth_token: str, signature: str | None, urls: Iterable[str], params: Mapping[str, str] | None = None
) -> bool:
    """Whether `signature` is Twilio's for any of `urls` (each with its port variants)."""
    if not auth_token or not signature:
        return False
    given = signature.strip().encode()
    # every candidate is compared in constant time; the list is short
    return any(
        [
            hmac.compare_digest(compute(auth_token, u, params).encode(), given)
            for url in urls
            for u in port_variants(url)
        ]
    )


def request_urls(host: str, path: str, query: str, public_url: str = "") -> list[str]:
    """The URLs Twilio may have signed for a WebSocket upgrade of `path?query` with this Host:
    `public_url` (the `<Stream url>` as configured) when given, else wss:// on the Host."""
    tail = f"?{query}" if query else ""
    if public_url:
        base = public_url.rstrip("/")
        return [base + tail] if urlsplit(base).path else [base + path + tail]
    return [f"wss://{host}{path}{tail}"]
