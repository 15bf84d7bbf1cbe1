"""The fault-injecting proxy over real loopback sockets: every fault, every scope and trigger, and a
WebSocket through it. Waits are on events and on bytes arriving; a short timeout only appears where
a test shows that nothing arrives (a stall) or guards against a hang."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from voxloop.bench.faultproxy import Fault, FaultProxy

T = TypeVar("T")
Pair = tuple[asyncio.StreamReader, asyncio.StreamWriter]
QUIET_S = 0.2  # "nothing arrives": how long a stalled stream is watched


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 20))


class Upstream:
    """A loopback server that hands each accepted connection to the test."""

    def __init__(self) -> None:
        self.conns: asyncio.Queue[Pair] = asyncio.Queue()
        self.held: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.held.append(w)
        await self.conns.put((r, w))

    @property
    def address(self) -> tuple[str, int]:
        assert self.server is not None
        return ("127.0.0.1", self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        for w in self.held:
            w.transport.abort()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@asynccontextmanager
async def proxied() -> AsyncIterator[tuple[Upstream, FaultProxy]]:
    up = Upstream()
    up.server = await asyncio.start_server(up._serve, "127.0.0.1", 0)
    try:
        async with FaultProxy(up.address) as proxy:
            yield up, proxy
    finally:
        await up.close()


async def dial(up: Upstream, proxy: FaultProxy) -> Pair:
    """A client through the proxy (closed with the upstream)."""
    r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
    up.held.append(w)
    return r, w


async def connect(up: Upstream, proxy: FaultProxy) -> tuple[Pair, Pair]:
    """A client through the proxy, and the upstream's end of it."""
    client = await dial(up, proxy)
    server = await up.conns.get()
    await proxy.until(lambda: proxy.accepted >= 1 and proxy.open_connections >= 1)
    return client, server


async def send(w: asyncio.StreamWriter, data: bytes) -> None:
    w.write(data)
    await w.drain()


async def silent(r: asyncio.StreamReader) -> bool:
    """Nothing arrives on `r` for QUIET_S."""
    try:
        await asyncio.wait_for(r.read(1), QUIET_S)
    except TimeoutError:
        return True
    return False


def test_bytes_pass_both_ways_and_a_half_close_is_passed_on() -> None:
    async def main() -> None:
        async with proxied() as (up, proxy):
            (cr, cw), (sr, sw) = await connect(up, proxy)
            await send(cw, b"hello")
            assert await sr.readexactly(5) == b"hello"
            await send(sw, b"world" * 30000)  # more than one chunk
            assert await cr.readexactly(150000) == b"world" * 30000
            cw.write_eof()
            assert await sr.read() == b""  # the upstream hears the client's end
            await send(sw, b"still here")  # ... and may go on answering
            assert await cr.readexactly(10) == b"still here"
            cw.close()

    run(main())


def test_drop_closes_both_sides_mid_stream() -> None:
    async def main() -> None:
        async with proxied() as (up, proxy):
            (cr, cw), (sr, sw) = await connect(up, proxy)
            await send(sw, b"part")
            assert await cr.readexactly(4) == b"part"
            fault = proxy.inject(Fault("drop"))
            assert fault.fired.is_set() and fault.hits == 1
            assert await cr.read() == b"" and await sr.read() == b""
            await proxy.until(lambda: proxy.open_connections == 0)

    run(main())


def test_reset_sends_a_rst_to_both_sides() -> None:
    async def main() -> None:
        async with proxied() as (up, proxy):
            (cr, cw), (sr, sw) = await connect(up, proxy)
            proxy.inject(Fault("reset"))
            with pytest.raises(ConnectionResetError):
                await cr.read()
            with pytest.raises(ConnectionResetError):
                await sr.read()

    run(main())


def test_stall_until_released_holds_one_direction_only() -> None:
    async def main() -> None:
        async with proxied() as (up, proxy):
            (cr, cw), (sr, sw) = await connect(up, proxy)
            proxy.inject(Fault("stall", "down"))
            await send(sw, b"answer")
            await send(cw, b"question")
            assert await sr.readexactly(8) == b"question"  # up still flows
            assert await silent(cr)
            proxy.release()
            assert await cr.readexactly(6) == b"answer"

    run(main())


def test_a_timed_stall_ends_by_itself() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with proxied() as (up, proxy):
            (cr, cw), (sr, sw) = await connect(up, proxy)
            stall = proxy.inject(Fault("stall", seconds=0.3))
            await send(sw, b"late")
            assert await cr.readexactly(4) == b"late"
            assert stall.fired_at is not None and loop.time() - stall.fired_at >= 0.3

    run(main())


def test_delay_adds_latency_to_every_chunk() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with proxied() as (up, proxy):
            (cr, cw), (sr, sw) = await connect(up, proxy)
            proxy.inject(Fault("delay", "up", 0.15))
            for _ in range(2):
                t0 = loop.time()
                await send(cw, b"ping")
                assert await sr.readexactly(4) == b"ping"
                assert loop.time() - t0 >= 0.15
            proxy.release()
            await send(sw, b"pong")
            assert await cr.readexactly(4) == b"pong"

    run(main())


def test_truncate_forwards_n_bytes_then_closes() -> None:
    async def main() -> None:
        async with proxied() as (up, proxy):
            (cr, cw), (sr, sw) = await connect(up, proxy)
            proxy.inject(Fault("truncate", "down", nbytes=5))
            await send(sw, b"0123456789")
            assert await cr.read() == b"01234"
            assert await sr.read() == b""

    run(main())


def test_after_bytes_acts_at_that_exact_byte() -> None:
    async def main() -> None:
        async with proxied() as (up, proxy):
            (cr, cw), (sr, sw) = await connect(up, proxy)
            drop = proxy.inject(Fault("drop", "up", after_bytes=4))
            assert not drop.fired.is_set()
            await send(cw, b"0123456789")
            assert await sr.read() == b"0123"
            assert drop.fired.is_set()

    run(main())


def test_next_scope_spares_the_open_connection_and_hits_the_new_one() -> None:
    async def main() -> None:
        async with proxied() as (up, proxy):
            (cr, cw), (sr, sw) = await connect(up, proxy)
            drop = proxy.inject(Fault("drop", scope="next"))
            r2, w2 = await dial(up, proxy)
            await drop.fired.wait()
            assert await r2.read() == b""
            await send(sw, b"alive")
            assert await cr.readexactly(5) == b"alive"
            w2.close()

    run(main())


def test_first_scope_on_response_stalls_whichever_reply_comes_first_once() -> None:
    async def main() -> None:
        async with proxied() as (up, proxy):
            (ar, aw), (asr, asw) = await connect(up, proxy)
            stall = proxy.inject(Fault("stall", "down", on_response=True, scope="first"))
            br, bw = await dial(up, proxy)
            bsr, bsw = await up.conns.get()
            await send(bsw, b"first")  # B's reply begins: it passes, then B stalls
            assert await br.readexactly(5) == b"first"
            await stall.fired.wait()
            await send(bsw, b"second")
            assert await silent(br)
            await send(asw, b"A is fine")  # the fault acted once: A is not stalled
            assert await ar.readexactly(9) == b"A is fine"
            assert stall.hits == 1
            proxy.release()
            assert await br.readexactly(6) == b"second"
            bw.close()

    run(main())


@pytest.mark.parametrize("how", ["reset", "close", "unbind"])
def test_refuse_turns_new_connections_away_until_admitted(how: str) -> None:
    async def main() -> None:
        async with proxied() as (up, proxy):
            port = proxy.port
            proxy.refuse(how)  # type: ignore[arg-type]
            if how == "unbind":
                with pytest.raises(ConnectionRefusedError):
                    await asyncio.open_connection("127.0.0.1", port)
            else:
                r, w = await dial(up, proxy)
                if how == "reset":
                    with pytest.raises(ConnectionResetError):
                        await r.read()
                else:
                    assert await r.read() == b""
                w.close()
                assert proxy.refused == 1
            await proxy.admit()
            assert proxy.port == port
            (cr, cw), (sr, sw) = await connect(up, proxy)
            await send(cw, b"back")
            assert await sr.readexactly(4) == b"back"

    run(main())


def test_an_upstream_that_is_down_resets_the_client() -> None:
    async def main() -> None:
        up = Upstream()
        up.server = await asyncio.start_server(up._serve, "127.0.0.1", 0)
        address = up.address
        await up.close()
        async with FaultProxy(address) as proxy:
            r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
            with pytest.raises(ConnectionResetError):
                await r.read()
            w.close()
            await asyncio.gather(w.wait_closed(), return_exceptions=True)

    run(main())


def test_a_websocket_dropped_after_the_servers_first_message() -> None:
    from websockets.asyncio.client import connect as ws_connect
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    async def handler(ws: ServerConnection) -> None:
        async for msg in ws:
            await ws.send(f"echo {msg}")

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with FaultProxy(("127.0.0.1", port)) as proxy:
                async with ws_connect(proxy.url("ws")) as ws:
                    await ws.send("one")
                    assert await ws.recv() == "echo one"
                    drop = proxy.inject(Fault("drop", on_response=True))
                    await ws.send("two")
                    with pytest.raises(ConnectionClosed):
                        await ws.recv()
                        await ws.recv()
                    assert drop.fired.is_set()
                async with ws_connect(proxy.url("ws")) as ws:  # a new socket works
                    await ws.send("three")
                    assert await ws.recv() == "echo three"

    run(main())


def test_a_request_stalls_its_reply_and_before_holds_the_first_reply_bytes() -> None:
    async def main() -> None:
        async with proxied() as (up, proxy):
            (cr, cw), (sr, sw) = await connect(up, proxy)
            stall = proxy.inject(Fault("stall", "down", after_bytes=1, watch="up"))
            await send(sw, b"idle")  # nothing was asked yet: it passes
            assert await cr.readexactly(4) == b"idle"
            await send(cw, b"GET")
            assert await sr.readexactly(3) == b"GET"  # the request goes through whole
            assert stall.fired.is_set()
            await send(sw, b"reply")
            assert await silent(cr)
            proxy.release()
            assert await cr.readexactly(5) == b"reply"

            drop = proxy.inject(Fault("drop", on_response=True, before=True))
            await send(sw, b"never")
            assert await cr.read() == b""  # not one byte of it
            assert drop.fired.is_set()

    run(main())


def test_close_faulted_closes_only_the_connections_a_fault_acted_on() -> None:
    async def main() -> None:
        async with proxied() as (up, proxy):
            (ar, aw), (asr, asw) = await connect(up, proxy)
            (br, bw), (bsr, bsw) = await connect(up, proxy)
            stall = proxy.inject(Fault("stall", "down", on_response=True, before=True, scope="first"))
            await send(asw, b"held")
            await stall.fired.wait()
            proxy.close_faulted()
            assert await ar.read() == b""  # the held bytes never pass
            await send(bsw, b"fine")
            assert await br.readexactly(4) == b"fine"

    run(main())
