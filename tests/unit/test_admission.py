"""Admission control: the decision on a clock the test moves, and a real server on loopback that
refuses a session beyond its configured or measured capacity and takes the next one once a slot
frees (fake models)."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from conftest import make_providers, silence, tone
from fakes import FakeSTT
from live_server import AgentClient, agent_client, http_get, live_server
from voxloop.cli import main
from voxloop.server import options as server_options
from voxloop.server.admission import Admission
from voxloop.server.settings import ServerSettings

T = TypeVar("T")
UTTERANCE = np.concatenate([silence(0.3), tone(1.0), silence(0.6)])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def turns(a: Admission, load: int, *latencies: float, filler_first: bool = False) -> None:
    for ms in latencies:
        record = {"v2v_ms": 300.0 if filler_first else ms, "v2v_answer_ms": ms}
        a.note_turn(record, load)


# -- the decision ----------------------------------------------------------------------------------
def test_the_configured_capacity_is_a_hard_limit() -> None:
    a = Admission(max_sessions=2, latency_budget_ms=1500)
    assert a.decide(0).admit and a.decide(1).admit
    refused = a.decide(2)
    assert not refused.admit and "all 2 sessions are in use" in refused.reason


def test_a_load_over_budget_caps_the_sessions_one_below_it() -> None:
    a = Admission(max_sessions=8, latency_budget_ms=1500, clock=Clock())
    turns(a, 1, 800, 900, 1000)
    turns(a, 2, 1000, 1100, 1200)
    turns(a, 3, 1400, 1900, 2600)  # p95 over the budget with 3 sessions
    assert a.p95_by_load() == {1: 990.0, 2: 1190.0, 3: 2530.0}
    assert a.measured_capacity() == 2
    assert a.decide(1).admit
    refused = a.decide(2)
    assert not refused.admit
    assert "within 1500 ms" in refused.reason and "p95 2530 ms with 3" in refused.reason


def test_the_answer_is_judged_not_the_filler_said_before_it() -> None:
    a = Admission(max_sessions=4, latency_budget_ms=1500, clock=Clock())
    turns(a, 2, 2900, 3100, 3800, filler_first=True)  # "One moment." at 300 ms, the answer ~3 s
    assert a.measured_capacity() == 1 and not a.decide(1).admit


def test_too_few_turns_say_nothing_and_an_empty_server_always_takes_one() -> None:
    a = Admission(max_sessions=4, latency_budget_ms=1500, clock=Clock())
    turns(a, 2, 5000, 5000)  # two slow turns: not yet a measurement
    assert a.measured_capacity() is None and a.decide(1).admit
    turns(a, 1, 5000, 5000, 5000)  # even one session is over budget ...
    assert a.measured_capacity() == 1
    assert not a.decide(1).admit
    assert a.decide(0).admit  # ... but nobody is there to protect


def test_old_measurements_are_forgotten_so_the_server_tries_again() -> None:
    clock = Clock()
    a = Admission(max_sessions=4, latency_budget_ms=1500, window_s=120, clock=clock)
    turns(a, 2, 2000, 2100, 2200)
    assert not a.decide(1).admit
    clock.now += 121
    assert a.measured_capacity() is None and a.decide(1).admit


def test_a_budget_of_zero_leaves_only_the_configured_capacity() -> None:
    a = Admission(max_sessions=3, latency_budget_ms=0, clock=Clock())
    turns(a, 1, 9000, 9000, 9000)
    assert a.measured_capacity() is None and a.decide(2).admit and not a.decide(3).admit


def test_turns_without_a_reply_are_not_judged() -> None:
    a = Admission(max_sessions=4, latency_budget_ms=1500, clock=Clock())
    for _ in range(5):
        a.note_turn({"v2v_ms": None, "v2v_answer_ms": None}, 2)
    assert a.p95_by_load() == {}


def test_the_budget_and_the_503_refusal_are_serve_options(capsys: pytest.CaptureFixture[str]) -> None:
    ap = argparse.ArgumentParser()
    server_options.add_options(ap)
    settings = server_options.from_args(ap.parse_args(["--latency-budget-ms", "900", "--busy-503"]))
    assert settings.latency_budget_ms == 900 and settings.busy_503
    default = server_options.from_args(ap.parse_args([]))
    assert default.latency_budget_ms == 1500 and not default.busy_503
    assert main(["-q", "serve", "--latency-budget-ms", "-1"]) == 2
    assert "a server limit is out of range" in capsys.readouterr().err


# -- on a real server ------------------------------------------------------------------------------
def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


async def say(c: AgentClient, n: int) -> None:
    await c.send_audio(UTTERANCE)
    await c.event("turn_completed", n)


async def readyz(port: int) -> tuple[int, dict[str, Any]]:
    status, _, body = await http_get(port, "/readyz")
    return status, json.loads(body)


def test_a_measured_overload_refuses_new_sessions_until_the_load_is_gone() -> None:
    # a 1 ms budget: every turn is over it, so the measured capacity becomes one session
    settings = ServerSettings(port=0, max_sessions=4, latency_budget_ms=1)
    stt = FakeSTT(["one", "two", "three"])

    async def main() -> None:
        async with live_server(make_providers(stt=stt), settings) as srv:
            async with agent_client(srv.ws_url, auto_report=True) as a:
                await a.start()
                async with agent_client(srv.ws_url, auto_report=True) as b:
                    await b.start()  # two sessions: both admitted (nothing measured yet)
                    await asyncio.gather(say(a, 1), say(b, 1))
                    await say(a, 2)  # three turns finished with two sessions open
                    status, body = await readyz(srv.port)
                    assert status == 503 and body["ready"] is False
                    assert body["load"]["measured_max"] == 1 and body["load"]["active"] == 2
                    async with agent_client(srv.ws_url) as c:
                        err = await c.error("server_busy")
                        assert err["fatal"] and "measured" in err["message"]
                        assert await c.closed_with() == 1013
                    await b.send({"type": "stop"})
                    assert await b.closed_with() == 1000
                # one session open, and two were too many: still refused
                async with agent_client(srv.ws_url) as c:
                    assert (await c.error("server_busy"))["fatal"]
                await a.send({"type": "stop"})
                assert await a.closed_with() == 1000
            # nobody left: the next caller is admitted
            assert (await readyz(srv.port))[0] == 200
            async with agent_client(srv.ws_url) as d:
                await d.start()

    run(main())


def test_behind_a_balancer_a_full_server_refuses_the_handshake_with_503() -> None:
    settings = ServerSettings(port=0, max_sessions=1, busy_503=True)

    async def main() -> None:
        async with live_server(make_providers(), settings) as srv:
            async with agent_client(srv.ws_url) as first:
                await first.start()
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(srv.ws_url):
                        pass
                response = refused.value.response
                assert response.status_code == 503
                assert json.loads(response.body)["error"]["code"] == "server_busy"
                await first.send({"type": "stop"})
                assert await first.closed_with() == 1000
            async with agent_client(srv.ws_url) as second:  # the slot is free again
                await second.start()

    run(main())
