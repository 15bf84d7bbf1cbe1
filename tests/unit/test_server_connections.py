"""Raw TCP against a real server on loopback: connections that never send a request are closed,
connections beyond the cap are refused at once with 503, and headers too large are answered 431;
after each, the server still answers. Waits are on the socket (EOF, an answer), never on a clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from conftest import make_providers
from live_server import agent_client, http_get, live_server
from voxloop.server.settings import ServerSettings

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _until_healthy(port: int) -> None:
    """/healthz answered 200 (the server frees a closed connection's place as it notices)."""
    for _ in range(200):
        try:
            if (await http_get(port, "/healthz"))[0] == 200:
                return
        except (ConnectionError, IndexError, ValueError):
            pass
    raise AssertionError("the server did not answer /healthz again")


def test_a_connection_that_never_sends_a_request_is_closed() -> None:
    settings = ServerSettings(port=0, handshake_timeout_s=0.2)

    async def main() -> None:
        async with live_server(make_providers(), settings) as srv:
            silent = [await _open(srv.port) for _ in range(5)]
            trickle_r, trickle_w = await _open(srv.port)
            trickle_w.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
            for reader, _ in [*silent, (trickle_r, trickle_w)]:
                assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
            # a keep-alive connection's next request is due within the deadline too
            reader, writer = await _open(srv.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 10)
            assert answer.startswith(b"HTTP/1.1 200")
            for _, w in [*silent, (trickle_r, trickle_w), (reader, writer)]:
                w.close()
            # a WebSocket session is not a request in waiting: it lives on past the deadline
            async with agent_client(srv.ws_url) as c:
                await c.start()
                await c.send({"type": "ping"})
                await c.event("pong")
                assert not c.closed

    run(main())


def test_at_the_cap_a_silent_connection_makes_room_and_busy_ones_get_503() -> None:
    settings = ServerSettings(port=0, max_connections=4)

    async def main() -> None:
        async with live_server(make_providers(), settings) as srv:
            # silent sockets at the cap: a new client takes the place of the one idle longest
            silent = [await _open(srv.port) for _ in range(4)]
            assert (await http_get(srv.port, "/healthz"))[0] == 200
            assert await asyncio.wait_for(silent[0][0].read(), 10) == b""  # the oldest went
            for _, w in silent:
                w.close()
            await _until_healthy(srv.port)
            # every connection busy with a session: one more is refused at once, cleanly
            sessions = [agent_client(srv.ws_url) for _ in range(4)]
            clients = [await s.__aenter__() for s in sessions]
            try:
                for c in clients:
                    await c.start()
                reader, writer = await _open(srv.port)
                answer = await asyncio.wait_for(reader.read(), 10)
                writer.close()
                assert answer.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in answer
                await clients[0].send({"type": "ping"})
                await clients[0].event("pong")  # the sessions go on
            finally:
                for s in sessions:
                    await s.__aexit__(None, None, None)
            await _until_healthy(srv.port)

    run(main())


def test_headers_too_large_are_answered_431() -> None:
    async def main() -> None:
        async with live_server(make_providers()) as srv:
            for upgrade in ("", "Upgrade: websocket\r\nConnection: Upgrade\r\n"):
                reader, writer = await _open(srv.port)
                writer.write(
                    f"GET /v1/agent HTTP/1.1\r\nHost: 127.0.0.1\r\n{upgrade}"
                    f"Authorization: Bearer {'k' * 100_000}\r\n\r\n".encode()
                )
                answer = await asyncio.wait_for(reader.read(), 10)
                writer.close()
                assert answer.startswith(b"HTTP/1.1 431"), answer[:80]
            await _until_healthy(srv.port)

    run(main())


def test_a_flood_of_malformed_requests_is_a_line_a_second_not_a_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    took: list[float] = []

    async def main() -> None:
        async with live_server(make_providers()) as srv:
            t0 = asyncio.get_running_loop().time()
            for _ in range(30):
                reader, writer = await _open(srv.port)
                writer.write(b"NOT HTTP AT ALL\r\n\r\n")
                answer = await asyncio.wait_for(reader.read(), 10)
                writer.close()
                assert answer.startswith(b"HTTP/1.1 400")
            took.append(asyncio.get_running_loop().time() - t0)
            await _until_healthy(srv.port)

    run(main())
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert 1 <= len(noisy) <= 1 + took[0], [r.getMessage() for r in noisy]  # one a second at most
