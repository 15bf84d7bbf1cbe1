"""A real voxloop server on loopback for tests, and a client of /v1/agent that keeps what it hears.

The server is uvicorn with the same settings `voxloop serve` uses, on a socket bound to
127.0.0.1:0 (a free port) before it starts, so clients may connect at once. Nothing here sleeps to
wait for something: waits are on events and messages, with a timeout that only guards against a
hang. The one place that paces by the clock is `AgentClient.stream`, which models a microphone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voxloop.agent.providers import Providers
from voxloop.audio.pcm import to_int16
from voxloop.config import AgentConfig
from voxloop.providers.base import Samples
from voxloop.server.app import create_app, server_state
from voxloop.server.run import bind, uvicorn_server
from voxloop.server.settings import ServerSettings
from voxloop.server.state import ServerState

T = TypeVar("T")


@dataclass
class LiveServer:
    port: int
    state: ServerState

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/agent"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def live_server(
    providers: Providers,
    settings: ServerSettings | None = None,
    config: AgentConfig | None = None,
    *,
    wait_ready: bool = True,
) -> AsyncIterator[LiveServer]:
    """The app on uvicorn on a free loopback port; `wait_ready`: yield once the models are loaded."""
    settings = settings or ServerSettings(port=0)
    app = create_app(providers, config or AgentConfig(), settings)
    sock = bind("127.0.0.1", 0)
    server = uvicorn_server(app, settings)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    live = LiveServer(sock.getsockname()[1], server_state(app))
    try:
        if wait_ready:
            ready = asyncio.get_running_loop().create_task(live.state.ready.wait())
            await asyncio.wait({ready, task}, timeout=600, return_when=asyncio.FIRST_COMPLETED)
            assert live.state.ready.is_set(), f"the server did not get ready: {live.state.load_error}"
        yield live
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()


async def http_get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """A plain HTTP/1.1 GET over a real socket: (status, headers with lower-case names, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


class AgentClient:
    """Keeps every event (parsed JSON) and every audio byte the server sends, in order."""

    def __init__(self, ws: ClientConnection, *, auto_report: bool = False) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.audio_marks: list[int] = []  # per event: audio samples received before it
        self.audio = bytearray()
        self.frames: list[bytes] = []  # every binary message, as it came
        self.opus_samples = 0  # an Opus voice: samples per packet (20 ms at the output rate)
        self.first_audio_at: float | None = None  # loop clock when the first audio frame arrived
        self.stream_t0: float | None = None  # loop clock when `stream` began
        self.auto_report = auto_report  # report every sample as played on arrival (an instant speaker)
        self._changed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if isinstance(msg, bytes):
                    if self.first_audio_at is None:
                        self.first_audio_at = asyncio.get_running_loop().time()
                    self.audio += msg
                    self.frames.append(msg)
                    if self.auto_report:
                        await self.send({"type": "playback", "position": self.samples_received})
                else:
                    self.events.append(json.loads(msg))
                    self.audio_marks.append(self.samples_received)
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self._changed.set()

    # -- what arrived ------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._reader.done()

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    @property
    def samples_received(self) -> int:
        return len(self.frames) * self.opus_samples if self.opus_samples else len(self.audio) // 2

    def pcm(self) -> Samples:
        return (np.frombuffer(bytes(self.audio), "<i2").astype(np.float32) / 32768.0).astype(np.float32)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    async def until(self, check: Callable[[], T], what: str, within: float = 10.0) -> T:
        """Wait for `check()` to be truthy (re-checked on every message); return its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not (result := check()):
            if self.closed:
                raise AssertionError(f"closed ({self.close_code}) while waiting for {what}: {self.types()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise AssertionError(f"no {what} within {within} s: {self.types()}") from None
        return result

    async def event(self, kind: str, n: int = 1, within: float = 10.0) -> dict[str, Any]:
        """The `n`-th event of this kind, waiting for it if need be."""
        found = await self.until(lambda: len(self.of(kind)) >= n and self.of(kind), f"{kind} #{n}", within)
        return found[n - 1]

    async def error(self, code: str, within: float = 10.0) -> dict[str, Any]:
        errors = await self.until(
            lambda: [e for e in self.of("error") if e["code"] == code], f"error {code}", within
        )
        return errors[0]

    async def closed_with(self, within: float = 10.0) -> int | None:
        await self.until(lambda: self.closed, "the close", within)
        return self.close_code

    # -- sending -----------------------------------------------------------------------------------
    async def send(self, msg: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(json.dumps(msg) if isinstance(msg, dict) else msg)

    async def start(self, rate: int = 16000, **fields: Any) -> dict[str, Any]:
        await self.send({"type": "start", "protocol": 1, "input_sample_rate": rate, **fields})
        return await self.event("started")

    async def send_audio(self, audio: Samples, chunk_s: float = 0.1, rate: int = 16000) -> None:
        """Send at once (not paced), in chunks: fine within the server's `max_audio_ahead_s`."""
        step = int(chunk_s * rate)
        for i in range(0, len(audio), step):
            await self.ws.send(to_int16(audio[i : i + step]).tobytes())

    async def stream(self, audio: Samples, rate: int = 16000, chunk_ms: int = 20) -> None:
        """Send at real-time pace, like a microphone: a chunk once it would have been recorded."""
        loop = asyncio.get_running_loop()
        step = rate * chunk_ms // 1000
        t0 = self.stream_t0 = loop.time()
        for i in range(0, len(audio), step):
            due = t0 + (i + step) / rate
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)  # models the microphone, not a wait for the server
            await self.ws.send(to_int16(audio[i : i + step]).tobytes())

    async def aclose(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)


@asynccontextmanager
async def agent_client(url: str, *, auto_report: bool = False, **kw: Any) -> AsyncIterator[AgentClient]:
    async with connect(url, max_size=None, compression=None, **kw) as ws:
        client = AgentClient(ws, auto_report=auto_report)
        try:
            yield client
        finally:
            await client.aclose()
