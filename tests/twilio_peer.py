"""Twilio's side of a Media Stream, for tests: the messages it sends, byte for byte (compact JSON,
its keys in its order, numbers as strings where Twilio sends strings), and a model of its playback
of the server's voice: audio plays in real time from its arrival; a `mark` is echoed once the
audio before it has played; `clear` drops what is unplayed and echoes the pending marks at once.

`send` is how a text frame reaches the server (a real socket, or `MemorySocket`); call `receive`
with every text frame the server sends. Times are the loop's clock.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voxloop.audio.g711 import mulaw_decode, mulaw_encode
from voxloop.audio.pcm import resample
from voxloop.providers.base import Samples

SID, CALL, ACCOUNT = (
    "MZ18ad3ab5a668481ce02b83e7395059f0",
    "CA5c2f3a0e7b7f4ab4a4c3a5f0c2e1d9b8",
    "AC25e16e9a716a4a1786a7c83f58e30482",
)
FRAME = 160


def to_phone(audio: Samples, rate: int = 16000) -> bytes:
    """Audio as a phone line carries it: 8 kHz mu-law."""
    return mulaw_encode(resample(audio, rate, 8000))


def dumps(msg: dict[str, Any]) -> str:
    return json.dumps(msg, separators=(",", ":"))


@dataclass
class TwilioPeer:
    send: Callable[[str], Awaitable[None]]
    stream_sid: str = SID
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    heard: bytearray = field(default_factory=bytearray)  # the server's voice as the caller heard it
    echo_marks: bool = True
    _seq: int = 0
    _chunk: int = 0
    _play_end: float = 0.0
    _queue: list[tuple[float, bytes]] = field(default_factory=list)  # (start time, audio) not yet heard
    _marks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    # -- Twilio -> server --------------------------------------------------------------------------
    def _next(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def connected(self) -> None:
        await self.send(dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))

    async def start(self, custom: dict[str, str] | None = None, **fmt: Any) -> None:
        media_format = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1, **fmt}
        start = {
            "accountSid": ACCOUNT,
            "streamSid": self.stream_sid,
            "callSid": CALL,
            "tracks": ["inbound"],
            "mediaFormat": media_format,
            "customParameters": custom or {},
        }
        seq = self._next()
        await self.send(
            dumps({"event": "start", "sequenceNumber": seq, "start": start, "streamSid": self.stream_sid})
        )

    async def media(self, mulaw: bytes) -> None:
        self._chunk += 1
        media = {
            "track": "inbound",
            "chunk": str(self._chunk),
            "timestamp": str((self._chunk - 1) * 20),
            "payload": base64.b64encode(mulaw).decode(),
        }
        seq = self._next()
        await self.send(
            dumps({"event": "media", "sequenceNumber": seq, "media": media, "streamSid": self.stream_sid})
        )

    def lose(self, messages: int) -> None:
        """Media messages lost on the way: their chunk numbers and timestamps pass unsent."""
        self._chunk += messages

    async def stream(self, mulaw: bytes) -> None:
        """The caller's line at real-time pace: a 20 ms message once its audio has been spoken."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(0, len(mulaw), FRAME):
            if (wait := t0 + (i + FRAME) / 8000 - loop.time()) > 0:
                await asyncio.sleep(wait)  # models the caller speaking, not a wait for the server
            await self.media(mulaw[i : i + FRAME])

    async def silence_until(self, done: Callable[[], bool], max_s: float = 30.0) -> bool:
        quiet = bytes([0xFF]) * FRAME  # mu-law silence
        for _ in range(int(max_s * 50)):
            if done():
                return True
            await self.stream(quiet)
        return done()

    async def dtmf(self, digit: str) -> None:
        seq = self._next()
        await self.send(
            dumps(
                {
                    "event": "dtmf",
                    "streamSid": self.stream_sid,
                    "sequenceNumber": seq,
                    "dtmf": {"track": "inbound_track", "digit": digit},
                }
            )
        )

    async def stop(self) -> None:
        seq = self._next()
        await self.send(
            dumps(
                {
                    "event": "stop",
                    "sequenceNumber": seq,
                    "stop": {"accountSid": ACCOUNT, "callSid": CALL},
                    "streamSid": self.stream_sid,
                }
            )
        )

    async def _echo(self, name: str, at: float) -> None:
        if (wait := at - asyncio.get_running_loop().time()) > 0:
            await asyncio.sleep(wait)  # models the phone playing the audio before the mark
        self._marks.pop(name, None)
        self._settle()
        seq = self._next()
        await self.send(
            dumps(
                {"event": "mark", "sequenceNumber": seq, "streamSid": self.stream_sid, "mark": {"name": name}}
            )
        )

    # -- server -> Twilio --------------------------------------------------------------------------
    def receive(self, text: str) -> None:
        now = asyncio.get_running_loop().time()
        msg = json.loads(text)
        self.received.append((now, msg))
        self._settle()
        if msg.get("event") == "media":
            audio = base64.b64decode(msg["media"]["payload"])
            start = max(self._play_end, now)
            self._queue.append((start, audio))
            self._play_end = start + len(audio) / 8000
        elif msg.get("event") == "mark" and self.echo_marks:
            name = msg["mark"]["name"]
            self._marks[name] = asyncio.get_running_loop().create_task(
                self._echo(name, max(self._play_end, now))
            )
        elif msg.get("event") == "clear":
            self._queue.clear()
            self._play_end = now
            for name, task in list(self._marks.items()):
                task.cancel()
                self._marks[name] = asyncio.get_running_loop().create_task(self._echo(name, now))
        self.changed.set()

    def _settle(self) -> None:
        """Move what has played by now into `heard`."""
        now = asyncio.get_running_loop().time()
        while self._queue:
            start, audio = self._queue[0]
            n = int(round((now - start) * 8000))
            if n < len(audio):
                if n > 0:
                    self.heard += audio[:n]
                    self._queue[0] = (start + n / 8000, audio[n:])
                return
            self.heard += audio
            self._queue.pop(0)

    # -- what arrived ------------------------------------------------------------------------------
    def of(self, event: str) -> list[dict[str, Any]]:
        return [m for _, m in self.received if m.get("event") == event]

    @staticmethod
    def voice_of(msg: dict[str, Any]) -> bytes:
        return base64.b64decode(msg["media"]["payload"])

    def voice(self) -> Samples:
        """All the voice the server sent, decoded (8 kHz)."""
        return mulaw_decode(b"".join(base64.b64decode(m["media"]["payload"]) for m in self.of("media")))

    async def aclose(self) -> None:
        for task in self._marks.values():
            task.cancel()
        await asyncio.gather(*self._marks.values(), return_exceptions=True)


class MemorySocket:
    """Starlette's WebSocket as TwilioCall uses it, in memory: what the peer sends is received."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.peer = TwilioPeer(self._deliver)
        self.closed: tuple[int, str] | None = None

    async def _deliver(self, text: str) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "text": text})

    def raw(self, **msg: Any) -> None:
        """Any frame at all (`text=` or `bytes=`), for malformed input."""
        self.inbox.put_nowait({"type": "websocket.receive", **msg})

    def hang_up(self) -> None:
        self.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send_text(self, text: str) -> None:
        self.peer.receive(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)


def silence_bytes(seconds: float) -> bytes:
    return bytes([0xFF]) * int(seconds * 8000)


def tone_bytes(seconds: float, freq: float = 440.0, amplitude: float = 0.3) -> bytes:
    t = np.arange(int(seconds * 8000)) / 8000
    return mulaw_encode((amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32))


PATH = "/v1/telephony/twilio"


@asynccontextmanager
async def twilio_socket(port: int, **kw: Any) -> AsyncIterator[tuple[ClientConnection, TwilioPeer]]:
    async with connect(f"ws://127.0.0.1:{port}{PATH}", max_size=None, compression=None, **kw) as ws:
        peer = TwilioPeer(ws.send)

        async def read() -> None:
            try:
                async for msg in ws:
                    assert isinstance(msg, str), "Twilio takes text frames only"
                    peer.receive(msg)
            except ConnectionClosed:
                pass

        reader = asyncio.get_running_loop().create_task(read())
        try:
            yield ws, peer
        finally:
            await ws.close()
            await asyncio.gather(reader, return_exceptions=True)
            await peer.aclose()
