"""/v1/telephony/twilio over a real socket on a live server (fake models): a call from connected
to stop with Twilio's messages byte for byte, the X-Twilio-Signature check, and bad frames that
leave the server serving."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from conftest import make_providers, run_guarded
from fakes import FakeSTT
from live_server import http_get, live_server
from twilio_peer import SID, TwilioPeer, silence_bytes, tone_bytes, twilio_socket
from voxloop.server.settings import ServerSettings
from voxloop.server.telephony import signature

PATH = "/v1/telephony/twilio"


run = partial(run_guarded, hang_s=60.0)  # only against a hang


async def wait_for(check: Any, peer: TwilioPeer, within: float = 20.0) -> None:
    """Feed the line silence (Twilio streams all the time) until `check()`."""
    async with asyncio.timeout(within):
        assert await peer.silence_until(check, within)


async def short_call(ws: ClientConnection, peer: TwilioPeer) -> int | None:
    """Connect, start and stop a call without a word; how the server closed the socket."""
    await peer.connected()
    await peer.start()
    await peer.stop()
    await asyncio.wait_for(ws.wait_closed(), 10)
    return ws.close_code


def test_a_call_over_the_socket_from_connected_to_stop() -> None:
    async def main() -> None:
        async with live_server(make_providers(stt=FakeSTT(["what time do you open"]))) as srv:
            async with twilio_socket(srv.port) as (ws, peer):
                await peer.connected()
                await peer.start({"caller": "+15550100"})
                await peer.stream(silence_bytes(0.3) + tone_bytes(1.0))
                await wait_for(lambda: len(peer.of("mark")) >= 4 and len(peer.heard) >= 8000, peer)
                assert srv.state.active == 1
                assert all(m["streamSid"] == SID for _, m in peer.received)
                assert len(peer.voice()) == 8000  # FakeTTS: four words of 0.25 s
                await peer.stop()
                await asyncio.wait_for(ws.wait_closed(), 10)
                assert ws.close_code == 1000
            assert srv.state.active == 0  # the slot is free again

    run(main())


def test_with_an_auth_token_only_twilio_signed_streams_get_in() -> None:
    token = "0123456789abcdef0123456789abcdef"

    async def main() -> None:
        async with live_server(make_providers(), ServerSettings(port=0, twilio_auth_token=token)) as srv:
            url = f"wss://127.0.0.1:{srv.port}{PATH}"  # what Twilio signs: the <Stream url>
            for headers in ({}, {"X-Twilio-Signature": signature.compute("wrong token", url)}):
                with pytest.raises(InvalidStatus) as refused:
                    async with twilio_socket(srv.port, additional_headers=headers):
                        pass
                assert refused.value.response.status_code == 403
            signed = {"X-Twilio-Signature": signature.compute(token, url)}
            async with twilio_socket(srv.port, additional_headers=signed) as (ws, peer):
                assert await short_call(ws, peer) == 1000

    run(main())


def test_garbage_on_the_socket_leaves_the_call_and_the_server_going() -> None:
    async def main() -> None:
        async with live_server(make_providers(stt=FakeSTT(["hello"]))) as srv:
            async with twilio_socket(srv.port) as (ws, peer):
                await ws.send(b"\x00binary")
                await ws.send("{not json")
                await ws.send(
                    '{"event":"media","streamSid":"$SID","media":{"payload":"***"}}'.replace("$SID", SID)
                )
                await peer.connected()
                await peer.start()
                await ws.send('{"event":"mark","streamSid":"$SID"}'.replace("$SID", SID))
                await peer.stream(silence_bytes(0.3) + tone_bytes(1.0))
                await wait_for(lambda: len(peer.heard) >= 8000, peer)
            # the caller hung up without a stop: the server is still serving calls
            status, _, _ = await http_get(srv.port, "/healthz")
            assert status == 200
            async with twilio_socket(srv.port) as (ws, peer):
                assert await short_call(ws, peer) == 1000

    run(main())
