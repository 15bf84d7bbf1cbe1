"""The cases of the abuse probe (issue 14) against a real server on loopback: JSON nested too deep,
DNS rebinding, rate limits that cost real speech, readiness and what it tells strangers, and logs
that name keys or repeat themselves. Each case ends with the server still serving."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from conftest import make_providers, silence, tone
from fakes import FakeSTT
from live_server import agent_client, http_get, live_server
from voxloop.audio.pcm import to_int16
from voxloop.server import protocol
from voxloop.server.logs import guard_logs
from voxloop.server.settings import ServerSettings

T = TypeVar("T")
NESTED = "[" * 1000  # 1 kB that json.loads answers with RecursionError, not a ValueError
UTTERANCE = np.concatenate([silence(0.3), tone(1.0), silence(0.6)])


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


# -- JSON nested too deep -------------------------------------------------------------------------
def test_deeply_nested_json_is_bad_json_and_the_session_lives_on() -> None:
    async def main() -> None:
        stt = FakeSTT(["still here"])
        async with live_server(make_providers(stt=stt)) as srv, agent_client(srv.ws_url) as c:
            for text in (NESTED, '{"type":' * 1000):
                await c.send(text)
                err = await c.event("error", len(c.of("error")) + 1)
                assert err["code"] == "bad_json" and not err["fatal"]
            await c.start()
            await c.send(NESTED)
            await c.until(lambda: len(c.of("error")) == 3, "the third bad_json")
            await c.send_audio(UTTERANCE)
            assert (await c.event("turn_completed"))["turn"]["user_text"] == "still here"
            assert not c.closed

    run(main())


def test_deeply_nested_json_on_the_compatible_endpoints_is_an_error_not_a_crash() -> None:
    async def main() -> None:
        async with live_server(make_providers()) as srv:
            base = f"ws://127.0.0.1:{srv.port}"
            async with connect(f"{base}/v1/listen?encoding=linear16&sample_rate=16000") as ws:
                await ws.send(NESTED)
                await ws.send(json.dumps({"type": "CloseStream"}))
                msgs = [json.loads(m) async for m in ws]
                assert [m.get("variant") for m in msgs if m["type"] == "Error"] == ["SchemaError"]
                assert msgs[-1]["type"] == "Metadata"
            async with connect(f"{base}/v1/speak?encoding=linear16") as ws:
                await ws.send(NESTED)
                while (msg := json.loads(await ws.recv()))["type"] == "Metadata":
                    pass
                assert msg["type"] == "Warning" and msg["code"] == "INVALID_JSON"
            async with httpx.AsyncClient(base_url=srv.http_url, timeout=30) as http:
                r = await http.post("/v1/speak", content=NESTED)
                assert r.status_code == 400
                r = await http.post("/v1/audio/speech", content=NESTED)
                assert r.status_code == 400 and r.json()["error"]["message"]
                assert (await http.get("/healthz")).status_code == 200

    run(main())


def test_a_message_the_server_fails_on_is_an_internal_error_and_the_session_lives_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = protocol.parse

    def failing(text: str) -> protocol.ClientMessage:
        if "explode" in text:
            raise RuntimeError("a bug")
        return real(text)

    monkeypatch.setattr(protocol, "parse", failing)

    async def main() -> None:
        async with live_server(make_providers()) as srv, agent_client(srv.ws_url) as c:
            await c.send({"type": "explode"})
            err = await c.error("internal_error")
            assert not err["fatal"] and "goes on" in err["message"]
            await c.send({"type": "ping"})
            await c.event("pong")

    run(main())


def test_a_system_prompt_beyond_the_models_budget_is_refused_clearly() -> None:
    async def main() -> None:
        async with live_server(make_providers()) as srv, agent_client(srv.ws_url) as c:
            long = "You are a patient assistant. " * 137  # ~4000 characters: the documented maximum
            await c.send({"type": "start", "input_sample_rate": 16000, "settings": {"system_prompt": long}})
            err = await c.error("bad_message")
            assert "tokens" in err["message"] and "512" in err["message"] and not err["fatal"]
            started = await c.start(settings={"system_prompt": long[:2000]})  # within it: fine
            assert started["settings"]["system_prompt"] == long[:2000]

    run(main())


# -- DNS rebinding --------------------------------------------------------------------------------
async def _handshake_status(url: str, **kw: Any) -> int:
    try:
        async with connect(url, **kw):
            return 101
    except InvalidStatus as e:
        return e.response.status_code


def test_a_name_rebound_to_this_machine_is_refused_and_loopback_names_are_not() -> None:
    settings = ServerSettings(port=0, allowed_hosts=("voice.example",))

    async def main() -> None:
        async with live_server(make_providers(), settings) as srv:
            port = srv.port
            for name, expected in (
                ("evil.example", 403),  # the probe: Host and Origin of the attacking site
                ("localhost", 101),
                ("127.0.0.1", 101),
                ("voice.example", 101),  # --allow-host
            ):
                own = f"{name}:{port}"  # the page's address: its Host and its Origin
                status = await _handshake_status(
                    f"ws://{own}/v1/agent", host="127.0.0.1", port=port, origin=Origin(f"http://{own}")
                )
                assert status == expected, name
            # plain HTTP too: a rebound page could otherwise read the server's answers
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"GET /readyz HTTP/1.1\r\nHost: evil.example:{port}\r\nConnection: close\r\n\r\n".encode()
            )
            answer = await reader.read()
            writer.close()
            assert answer.startswith(b"HTTP/1.1 403") and b"forbidden_host" in answer
            assert (await http_get(port, "/healthz"))[0] == 200

    run(main())


# -- rate limits ----------------------------------------------------------------------------------
def test_a_network_stalls_backlog_and_playback_reports_lose_no_speech() -> None:
    async def main() -> None:
        async with live_server(make_providers()) as srv, agent_client(srv.ws_url) as c:
            await c.start()
            # 3 s of 20 ms frames held up by the network, arriving at once with the playback
            # reports sent meanwhile (a well-behaved client after a stall): 165 messages
            pcm = to_int16(silence(3.0)).tobytes()
            for i in range(150):
                await c.send(pcm[i * 640 : (i + 1) * 640])
                if i % 10 == 9:
                    await c.send({"type": "playback", "position": 0})
            await c.send({"type": "ping"})
            await c.event("pong")  # messages are handled in order: all of the above were
            assert not c.of("error")

    run(main())


# -- readiness ------------------------------------------------------------------------------------
def test_readyz_tells_a_stranger_only_whether_it_is_ready_and_unready_when_full() -> None:
    settings = ServerSettings(port=0, api_keys=("k-one",), max_sessions=1)

    async def main() -> None:
        async with live_server(make_providers(), settings) as srv:
            status, _, body = await http_get(srv.port, "/readyz")
            assert status == 200 and json.loads(body) == {"ready": True, "auth_required": True}
            async with httpx.AsyncClient(base_url=srv.http_url) as http:
                keyed = (await http.get("/readyz", headers={"Authorization": "Bearer k-one"})).json()
                assert keyed["sessions"] == {"active": 0, "max": 1} and keyed["protocol"] == 1
                async with agent_client(srv.ws_url + "?token=k-one") as c:
                    await c.start()
                    full = await http.get("/readyz")  # a load balancer sends callers elsewhere
                    assert full.status_code == 503 and full.json() == {"ready": False, "auth_required": True}
                    async with agent_client(srv.ws_url + "?token=k-one") as second:
                        assert (await second.error("server_busy"))["fatal"]

    run(main())


# -- logs -----------------------------------------------------------------------------------------
def test_logs_never_hold_a_key_and_refusals_are_one_throttled_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="uvicorn.error")
    caplog.set_level(logging.INFO, logger="voxloop.server")
    settings = ServerSettings(port=0, api_keys=("k-secret-1",))

    async def main() -> None:
        async with live_server(make_providers(), settings) as srv:
            async with agent_client(srv.ws_url + "?token=k-secret-1") as c:
                await c.start()
            for _ in range(20):  # refused handshakes, wrong keys in the address
                assert await _handshake_status(srv.ws_url + "?token=k-secret-2") == 401

    run(main())
    lines = [r.getMessage() for r in caplog.records]
    assert lines and not [line for line in lines if "k-secret" in line]
    assert any("token=REDACTED" in line for line in lines)
    refused = [r for r in caplog.records if r.name == "voxloop.server" and "refused" in r.getMessage()]
    assert 1 <= len(refused) < 5 and all(r.levelno == logging.INFO and not r.exc_info for r in refused)
    assert "API key" in refused[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("voxloop")]


def test_asyncio_errors_about_sockets_are_throttled_by_their_first_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard_logs()
    asyncio_log = logging.getLogger("asyncio")
    for fd in range(50):  # what asyncio logs when accept() fails: the socket named on line two
        asyncio_log.error("socket.accept() out of system resource\nsocket: <socket fd=%d>", fd)
    assert len([r for r in caplog.records if r.name == "asyncio"]) == 1
