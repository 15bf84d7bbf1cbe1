"""--log-json: every line a JSON object; the lines of a session carry its id, and a turn's lines
(the reply's, its provider's retry, the turn's timeline) carry the turn's id. Over a real socket
with fake models; then `voxloop run`'s side: its log context and its metrics server."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import numpy as np
import pytest

from conftest import make_providers, silence, tone
from fakes import FakeSTT
from fakes.flaky import RetryingLLM
from live_server import agent_client, http_get, live_server
from voxloop.agent import events as ev
from voxloop.agent.session import VoiceSession
from voxloop.errors import VoxloopError
from voxloop.metrics.logctx import JsonFormatter
from voxloop.metrics.standalone import observed
from voxloop.transports.timeline import TimelineSink

T = TypeVar("T")
UTTERANCE = np.concatenate([silence(0.3), tone(1.0), silence(0.6)])


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[list[dict[str, Any]]]:
    handler, root = Lines(), logging.getLogger("voxloop")
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_turns_lines_carry_the_session_and_turn_ids(lines: list[dict[str, Any]]) -> None:
    llm = RetryingLLM(failures=1, backoff_s=0.05)

    async def main() -> str:
        async with (
            live_server(make_providers(stt=FakeSTT(["turn on the lamp", "and the fan"]), llm=llm)) as srv,
            agent_client(srv.ws_url, auto_report=True) as c,
        ):
            session = (await c.start())["session_id"]
            for n in (1, 2):
                await c.send_audio(UTTERANCE)
                await c.event("turn_completed", n)
            return str(session)

    session = run(main())
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    mine = [line for line in lines if line.get("session_id") == session]
    assert any(line["message"].startswith(f"session {session} started") for line in mine)
    for n in (1, 2):
        timeline = [line for line in lines if line["message"].startswith(f"turn {n}: user said")]
        assert len(timeline) == 1 and timeline[0]["turn_id"] == n and timeline[0]["session_id"] == session
    retries = [
        line for line in lines if line["logger"] == "voxloop.recovery" and "retry 1" in line["message"]
    ]
    assert [(r["session_id"], r["turn_id"]) for r in retries] == [(session, 1), (session, 2)]
    assert not [line for line in lines if line.get("turn_id") is not None and "session_id" not in line]


def test_a_run_has_its_log_context_and_metrics_server(lines: list[dict[str, Any]]) -> None:
    async def main() -> None:
        providers = make_providers(stt=FakeSTT(["hello"]))
        await providers.load()
        sink = TimelineSink(providers.tts.sample_rate)
        session = VoiceSession(providers, sink)
        done = asyncio.Event()
        session.subscribe(lambda e: done.set() if isinstance(e, ev.TurnCompleted) else None)
        async with observed(session, providers, 0) as port:
            assert port is not None
            for i in range(0, len(UTTERANCE), 320):
                await session.push_audio(UTTERANCE[i : i + 320], 16000)
            await done.wait()
            status, _, body = await http_get(port, "/metrics")
            assert status == 200
            text = body.decode()
            assert "voxloop_turns_total 1.0" in text and "voxloop_active_sessions 1.0" in text
        await session.aclose()
        with pytest.raises(OSError):  # the server is gone with the session
            await http_get(port, "/metrics")

    run(main())
    timeline = [line for line in lines if line["message"].startswith("turn 1: user said")]
    assert len(timeline) == 1 and timeline[0]["turn_id"] == 1 and len(timeline[0]["session_id"]) == 12


def test_a_busy_metrics_port_is_a_clear_error() -> None:
    async def main() -> None:
        providers = make_providers()
        session = VoiceSession(providers, TimelineSink(providers.tts.sample_rate))
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            with pytest.raises(VoxloopError) as e:
                async with observed(session, providers, taken.getsockname()[1]):
                    pass
        assert "--metrics-port" in e.value.hint
        await session.aclose()

    run(main())
