"""What the voice server allows: where it listens, who may connect, and the limits per connection."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"  # loopback: only this machine can connect unless told otherwise
    port: int = 8000
    api_keys: tuple[str, ...] = ()  # empty: no key needed
    allowed_origins: tuple[str, ...] = ()  # page origins allowed besides the server's own; "*": any
    max_sessions: int = 4  # concurrent voice sessions (one per WebSocket connection)
    max_frame_bytes: int = 64 * 1024  # largest frame a client may send (binary or text)
    max_frames_per_s: float = 100.0  # frames a client may send per second (a burst of one second's worth)
    max_audio_ahead_s: float = 2.0  # how far a client's audio may run ahead of real time
    idle_timeout_s: float = 60.0  # a connection that sends nothing for this long is closed
    playback_grace_s: float = 1.0  # wait this long past the expected end for a client's playback report
    max_body_bytes: int = 25 * 1024 * 1024  # largest HTTP request body (OpenAI's upload limit)

    @property
    def auth_required(self) -> bool:
        return bool(self.api_keys)

    @property
    def ws_max_size(self) -> int:
        """The WebSocket layer's own limit. Frames between `max_frame_bytes` and this get an error
        event and the session goes on; larger ones close the connection (code 1009)."""
        return max(4 * self.max_frame_bytes, 1024 * 1024)
