"""`voxloop serve`'s server options (address, keys, origins, limits, TLS, Twilio) and the
`ServerSettings` they make."""

from __future__ import annotations

import argparse
import os

from voxloop.errors import VoxloopError
from voxloop.server.settings import ServerSettings


def add_options(p: argparse.ArgumentParser) -> None:
    d = ServerSettings()
    g = p.add_argument_group("server")
    g.add_argument("--host", default=d.host, help="address to listen on (default: this machine only)")
    g.add_argument("--port", type=int, default=d.port, help="0 picks a free port")
    g.add_argument(
        "--api-key",
        action="append",
        default=[],
        help="a key clients must present (repeatable; also $VOXLOOP_API_KEYS, comma-separated)",
    )
    g.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        help="a web page origin allowed besides the server's own, e.g. https://app.example (repeatable)",
    )
    g.add_argument(
        "--allow-host",
        action="append",
        default=[],
        help="a Host name the server answers to besides loopback names and IP addresses (repeatable; *: any)",
    )
    g.add_argument("--max-sessions", type=int, default=d.max_sessions, help="concurrent voice sessions")
    g.add_argument(
        "--latency-budget-ms",
        type=float,
        default=d.latency_budget_ms,
        help="refuse new sessions (server_busy) while recent turns' p95 end-of-speech-to-answer at the "
        "present load is over this (0: only --max-sessions limits them)",
    )
    g.add_argument(
        "--busy-503",
        action="store_true",
        help="refuse a session the server cannot take with HTTP 503 at the handshake (behind a load "
        "balancer, which then tries another worker) instead of a server_busy error on an open socket",
    )
    g.add_argument("--max-frame-bytes", type=int, default=d.max_frame_bytes)
    g.add_argument("--max-frames-per-s", type=float, default=d.max_frames_per_s)
    g.add_argument("--idle-timeout-s", type=float, default=d.idle_timeout_s)
    g.add_argument("--max-connections", type=int, default=d.max_connections, help="open TCP connections")
    g.add_argument(
        "--handshake-timeout-s",
        type=float,
        default=d.handshake_timeout_s,
        help="a request's headers are due by then",
    )
    g.add_argument(
        "--max-body-bytes", type=int, default=d.max_body_bytes, help="largest HTTP request body (uploads)"
    )
    g.add_argument(
        "--drain-seconds",
        type=float,
        default=d.drain_s,
        help="on SIGTERM, the most time live sessions get to finish their replies before the server exits",
    )
    g.add_argument("--ssl-certfile", default="", help="serve https/wss (browsers on other machines need it)")
    g.add_argument("--ssl-keyfile", default="")
    g.add_argument(
        "--twilio-auth-token",
        default="",
        help="check Twilio's X-Twilio-Signature on /v1/telephony/twilio (better: $TWILIO_AUTH_TOKEN)",
    )
    g.add_argument(
        "--twilio-public-url", default="", help="the wss:// <Stream url> Twilio signs, behind a proxy"
    )


def from_args(a: argparse.Namespace) -> ServerSettings:
    """The server's settings from `add_options`' options, the API keys also from $VOXLOOP_API_KEYS and the
    Twilio auth token from $TWILIO_AUTH_TOKEN."""
    env_keys = [k.strip() for k in os.environ.get("VOXLOOP_API_KEYS", "").split(",") if k.strip()]
    if (
        a.max_sessions < 1
        or a.max_frame_bytes < 1024
        or a.max_frames_per_s <= 0
        or a.idle_timeout_s <= 0
        or a.max_body_bytes < 1024
        or a.max_connections < a.max_sessions
        or a.handshake_timeout_s <= 0
        or a.latency_budget_ms < 0
        or a.drain_seconds < 0
    ):
        raise VoxloopError(
            "a server limit is out of range",
            "--max-sessions >= 1, --max-connections >= --max-sessions, --max-frame-bytes and --max-body-bytes"
            " >= 1024, and positive rates and timeouts",
        )
    return ServerSettings(
        host=a.host,
        port=a.port,
        api_keys=tuple(dict.fromkeys([*a.api_key, *env_keys])),
        allowed_origins=tuple(a.allow_origin),
        allowed_hosts=tuple(a.allow_host),
        max_sessions=a.max_sessions,
        max_frame_bytes=a.max_frame_bytes,
        max_frames_per_s=a.max_frames_per_s,
        idle_timeout_s=a.idle_timeout_s,
        max_body_bytes=a.max_body_bytes,
        max_connections=a.max_connections,
        handshake_timeout_s=a.handshake_timeout_s,
        latency_budget_ms=a.latency_budget_ms,
        busy_503=a.busy_503,
        drain_s=a.drain_seconds,
        twilio_auth_token=a.twilio_auth_token or os.environ.get("TWILIO_AUTH_TOKEN", ""),
        twilio_public_url=a.twilio_public_url,
    )
