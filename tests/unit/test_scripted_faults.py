"""Scripted status faults in front of a real ASGI app on uvicorn (loopback): 5xx, 429 with
Retry-After and 4xx for the next N requests on a path, everything else passed through; a WebSocket
handshake refused with a status; and an SSE stream through the fault proxy, stalled and dropped
mid-stream. Waits are on events and on bytes arriving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from voxloop.bench.faultproxy import Fault, FaultProxy
from voxloop.bench.scripted import ScriptedFaults
from voxloop.server.run import bind, uvicorn_server
from voxloop.server.settings import ServerSettings

T = TypeVar("T")
CHAT = "/v1/chat/completions"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 30))


class Backend:
    """The app behind the middleware: a JSON route, an SSE route that waits for `more`, a socket."""

    def __init__(self) -> None:
        self.more = asyncio.Event()
        self.app = Starlette(
            routes=[
                Route("/v1/models", self.models),
                Route(CHAT, self.chat, methods=["POST"]),
                WebSocketRoute("/v1/listen", self.listen),
            ]
        )

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": []})

    async def chat(self, request: Request) -> Response:
        async def events() -> AsyncIterator[bytes]:
            yield b"data: one\n\n"
            await self.more.wait()
            yield b"data: two\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def listen(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("hello")
        await ws.close()


@asynccontextmanager
async def serving() -> AsyncIterator[tuple[ScriptedFaults, Backend, int]]:
    backend = Backend()
    scripted = ScriptedFaults(backend.app)
    sock = bind("127.0.0.1", 0)
    server = uvicorn_server(scripted, ServerSettings(port=0))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:  # the socket is listening already: clients may connect before uvicorn runs
        yield scripted, backend, sock.getsockname()[1]
    finally:
        backend.more.set()
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


def test_the_next_requests_get_the_status_then_the_app_answers_again() -> None:
    async def main() -> None:
        async with (
            serving() as (scripted, _, port),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c,
        ):
            rule = scripted.fail(CHAT, 503, count=2)
            for _ in range(2):
                r = await c.post(CHAT, json={})
                assert r.status_code == 503
                assert r.json()["error"]["type"] == "service_unavailable" and r.json()["err_msg"]
            assert (await c.get("/v1/models")).status_code == 200  # another path passes
            async with c.stream("POST", CHAT, json={}) as r:
                assert r.status_code == 200
            assert len(rule.answered_at) == 2 and rule.answered.is_set() and not scripted.rules

    run(main())


def test_429_carries_retry_after_and_a_4xx_lasts_until_cleared() -> None:
    async def main() -> None:
        async with (
            serving() as (scripted, _, port),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c,
        ):
            scripted.fail(CHAT, 429, retry_after=1.5)
            r = await c.post(CHAT, json={})
            assert r.status_code == 429 and r.headers["retry-after"] == "1.5"
            scripted.fail("/v1/models", 401, count=None)
            for _ in range(3):
                assert (await c.get("/v1/models")).status_code == 401
            scripted.clear()
            assert (await c.get("/v1/models")).status_code == 200

    run(main())


def test_a_websocket_handshake_is_refused_with_the_status() -> None:
    async def main() -> None:
        async with serving() as (scripted, _, port):
            scripted.fail("/v1/listen", 503)
            with pytest.raises(InvalidStatus) as err:
                async with ws_connect(f"ws://127.0.0.1:{port}/v1/listen"):
                    pass
            assert err.value.response.status_code == 503
            async with ws_connect(f"ws://127.0.0.1:{port}/v1/listen") as ws:
                assert await ws.recv() == "hello"

    run(main())


def test_an_sse_stream_stalled_then_released_and_one_dropped_mid_stream() -> None:
    async def main() -> None:
        async with (
            serving() as (_, backend, port),
            FaultProxy(("127.0.0.1", port)) as proxy,
            httpx.AsyncClient(base_url=proxy.url()) as c,
        ):
            async with c.stream("POST", CHAT, json={}) as r:
                lines = r.aiter_lines()
                assert [await anext(lines), await anext(lines)] == ["data: one", ""]
                proxy.inject(Fault("stall", "down"))
                backend.more.set()
                nxt = asyncio.ensure_future(anext(lines))
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(nxt), 0.2)  # event two is held
                proxy.release()
                assert await nxt == "data: two"

            backend.more.clear()
            async with c.stream("POST", CHAT, json={}) as r:
                lines = r.aiter_lines()
                assert await anext(lines) == "data: one"
                proxy.inject(Fault("drop"))
                with pytest.raises(httpx.RemoteProtocolError):
                    async for _ in lines:
                        pass

    run(main())
