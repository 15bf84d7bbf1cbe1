"""What the voice server allows: where it listens, who may connect, and the limits per connection."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"  # loopback: only this machine can connect unless told otherwise
    port: int = 8000
    api_keys: tuple[str, ...] = ()  # empty: no key needed
    allowed_origins: tuple[str, ...] = ()  # page origins allowed besides the server's own; "*": any
    # Host names requests may be addressed to besides loopback names and IP addresses ("*": any).
    # A web page that rebinds its own name to this machine sends that name: it is refused.
    allowed_hosts: tuple[str, ...] = ()
    max_sessions: int = 4  # concurrent voice sessions (one per WebSocket connection)
    # New sessions are refused while recent turns' p95 end-of-speech-to-answer latency at the
    # present load is over this (server/admission.py); 0: only max_sessions limits them.
    latency_budget_ms: float = 1500.0
    # Refuse such a session at the handshake with HTTP 503 (behind a load balancer, which then
    # tries another worker: nginx's proxy_next_upstream http_503) instead of accepting the socket
    # and sending a server_busy error.
    busy_503: bool = False
    max_frame_bytes: int = 64 * 1024  # largest frame a client may send (binary or text)
    max_frames_per_s: float = 100.0  # control (text) messages a client may send a second (burst: 1 s)
    # Audio is limited by its length, not its frames: real time on average, plus this burst (a
    # client that stalled for a few seconds sends its backlog at once; at the start, how far ahead).
    max_audio_ahead_s: float = 5.0
    idle_timeout_s: float = 60.0  # a connection that sends nothing for this long is closed
    max_connections: int = 256  # open TCP connections (at the cap the one idle longest is closed)
    handshake_timeout_s: float = 10.0  # a connection must send a request's headers within this
    max_header_bytes: int = 16 * 1024  # a request's headers; larger ones are answered 431
    playback_grace_s: float = 1.0  # wait this long past the expected end for a client's playback report
    max_body_bytes: int = 25 * 1024 * 1024  # largest HTTP request body (OpenAI's upload limit)
    drain_s: float = 20.0  # on SIGTERM, how long live sessions may take to finish their replies
    twilio_auth_token: str = ""  # set: Twilio streams must carry its X-Twilio-Signature
    twilio_public_url: str = ""  # the <Stream url> Twilio signs, when a proxy changes the Host

    @property
    def auth_required(self) -> bool:
        return bool(self.api_keys)

    @property
    def ws_max_size(self) -> int:
        """The WebSocket layer's own limit. Frames between `max_frame_bytes` and this get an error
        event and the session goes on; larger ones close the connection (code 1009)."""
        return max(4 * self.max_frame_bytes, 1024 * 1024)
