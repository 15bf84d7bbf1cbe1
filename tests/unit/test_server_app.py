"""Who may connect and when: API keys, page origins, the session limit, the idle timeout, readiness;
and the page itself, served from the package with nothing fetched from elsewhere."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Coroutine
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

import pytest
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from conftest import make_providers
from fakes import FakeLLM
from live_server import agent_client, http_get, live_server
from voxloop.errors import ModelMissing
from voxloop.server.settings import ServerSettings

T = TypeVar("T")
STATIC = ("index.html", "app.js", "opus.js", "worklet.js", "style.css", "favicon.svg")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


@dataclass
class GatedLLM(FakeLLM):
    """Loads only once `gate` is set (or fails with `error`)."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    error: Exception | None = None

    async def load(self) -> None:
        await self.gate.wait()
        if self.error is not None:
            raise self.error


# -- API keys --------------------------------------------------------------------------------------
def test_without_a_valid_key_the_handshake_is_refused_with_401() -> None:
    settings = ServerSettings(port=0, api_keys=("k-one", "k-two"))

    async def main() -> None:
        async with live_server(make_providers(), settings) as srv:
            for headers, query in (({}, ""), ({"Authorization": "Bearer nope"}, ""), ({}, "?token=nope")):
                with pytest.raises(InvalidStatus) as refused:
                    async with agent_client(srv.ws_url + query, additional_headers=headers):
                        pass
                response = refused.value.response
                assert response.status_code == 401
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                assert json.loads(response.body)["error"]["code"] == "unauthorized"
            assert srv.state.active == 0

            for headers, query in (
                ({"Authorization": "Bearer k-one"}, ""),
                ({"Authorization": "Token k-two"}, ""),
                ({}, "?token=k-one"),  # what a browser page can do
            ):
                async with agent_client(srv.ws_url + query, additional_headers=headers) as c:
                    assert (await c.start())["protocol"] == 1

    run(main())


# -- page origins ----------------------------------------------------------------------------------
def test_only_the_servers_own_page_and_listed_origins_may_connect_from_a_browser() -> None:
    settings = ServerSettings(port=0, allowed_origins=("https://app.example",))

    async def main() -> None:
        async with live_server(make_providers(), settings) as srv:
            with pytest.raises(InvalidStatus) as refused:
                async with agent_client(srv.ws_url, origin=Origin("http://evil.example")):
                    pass
            assert refused.value.response.status_code == 403
            for origin in (srv.http_url, "https://app.example", None):  # own page, listed, no browser
                kw = {"origin": Origin(origin)} if origin else {}
                async with agent_client(srv.ws_url, **kw) as c:
                    await c.start()

    run(main())


# -- limits ----------------------------------------------------------------------------------------
def test_sessions_beyond_the_limit_are_refused_clearly_until_one_ends() -> None:
    settings = ServerSettings(port=0, max_sessions=1)

    async def main() -> None:
        async with live_server(make_providers(), settings) as srv:
            async with agent_client(srv.ws_url) as first:
                await first.start()
                async with agent_client(srv.ws_url) as second:
                    err = await second.error("server_busy")
                    assert err["fatal"] and "1 sessions are in use" in err["message"]
                    assert await second.closed_with() == 1013
                await first.send({"type": "stop"})
                assert await first.closed_with() == 1000
            async with agent_client(srv.ws_url) as third:
                await third.start()

    run(main())


def test_an_idle_connection_is_told_why_and_closed() -> None:
    settings = ServerSettings(port=0, idle_timeout_s=0.3)

    async def main() -> None:
        async with live_server(make_providers(), settings) as srv, agent_client(srv.ws_url) as c:
            await c.start()
            err = await c.error("idle_timeout")
            assert err["fatal"]
            assert await c.closed_with() == 4008
            assert srv.state.active == 0

    run(main())


# -- health and readiness --------------------------------------------------------------------------
def test_ready_only_once_the_models_are_loaded_and_sessions_wait_for_that() -> None:
    llm = GatedLLM()

    async def main() -> None:
        async with live_server(make_providers(llm=llm), wait_ready=False) as srv:
            status, _, body = await http_get(srv.port, "/healthz")
            assert status == 200 and json.loads(body) == {"status": "ok"}
            status, _, body = await http_get(srv.port, "/readyz")
            assert status == 503 and json.loads(body)["ready"] is False

            async with agent_client(srv.ws_url) as early:
                assert (await early.error("not_ready"))["fatal"]
                assert await early.closed_with() == 1013

            llm.gate.set()
            await asyncio.wait_for(srv.state.ready.wait(), 10)
            status, _, body = await http_get(srv.port, "/readyz")
            ready = json.loads(body)
            assert status == 200 and ready["ready"] is True and ready["protocol"] == 1
            assert ready["auth_required"] is False and ready["sessions"] == {"active": 0, "max": 4}
            async with agent_client(srv.ws_url) as c:
                await c.start()

    run(main())


def test_models_that_fail_to_load_leave_the_server_unready_and_saying_why() -> None:
    llm = GatedLLM(error=ModelMissing("no weights for the language model", "pip install it"))
    llm.gate.set()

    async def main() -> None:
        async with live_server(make_providers(llm=llm), wait_ready=False) as srv:
            await asyncio.wait_for(srv.state.settled.wait(), 10)
            status, _, body = await http_get(srv.port, "/readyz")
            assert status == 503 and "no weights" in json.loads(body)["error"]

    run(main())


# -- the page --------------------------------------------------------------------------------------
def test_the_page_and_its_files_are_served_by_the_server_itself() -> None:
    async def main() -> None:
        async with live_server(make_providers()) as srv:
            status, headers, body = await http_get(srv.port, "/")
            assert status == 200 and headers["content-type"].startswith("text/html")
            assert "default-src 'self'" in headers["content-security-policy"]
            assert headers["referrer-policy"] == "no-referrer"
            page = body.decode()
            for ref in re.findall(r'(?:src|href)="([^"]+)"', page):
                assert ref.startswith("/static/"), ref
                status, _, _ = await http_get(srv.port, ref)
                assert status == 200, ref
            types = {"app.js": "javascript", "worklet.js": "javascript", "style.css": "text/css"}
            for name, kind in types.items():
                status, headers, _ = await http_get(srv.port, f"/static/{name}")
                assert status == 200 and kind in headers["content-type"], (name, headers)
            assert (await http_get(srv.port, "/favicon.ico"))[0] == 204
            assert (await http_get(srv.port, "/static/../app.py"))[0] == 404

    run(main())


def test_the_page_fetches_nothing_from_anywhere_else() -> None:
    folder = resources.files("voxloop.server") / "static"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(STATIC)
    for name in names:
        text = (folder / name).read_text("utf-8")
        urls = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE)
        assert set(urls) <= {"http://www.w3.org"}, (name, urls)  # the SVG namespace is no fetch
        assert "@import" not in text and "@font-face" not in text, name
