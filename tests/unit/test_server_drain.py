"""Graceful shutdown: a real `voxloop serve` process (fake models, tests/fake_serve.py) on loopback
gets SIGTERM while one caller hears a reply and another is idle.

The reply is long (the fake voice says 15 s a word: 60 s of audio) and the client holds it open by
not reporting its playback until the test has looked at the draining server, so "mid-reply" is a
state the test controls, not a race against a clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import numpy as np

from conftest import run_guarded, silence, tone
from live_server import AgentClient, agent_client, http_get

TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src"
UTTERANCE = np.concatenate([silence(0.3), tone(1.0), silence(0.6)])
REPLY_SAMPLES = 4 * 15 * 24000  # "Sure, happy to help.": 4 words of 15 s at 24 kHz


run = partial(run_guarded, hang_s=120.0)  # only against a hang


class Served:
    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc, self.port = proc, port
        self.ws_url = f"ws://127.0.0.1:{port}/v1/agent"

    def terminate(self) -> None:
        os.kill(self.proc.pid, signal.SIGTERM)

    async def exit_code(self) -> int:
        return await asyncio.wait_for(self.proc.wait(), 30)


@asynccontextmanager
async def fake_serve(*args: str) -> AsyncIterator[Served]:
    """tests/fake_serve.py as a process; yields once it prints that it is ready."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(TESTS / "fake_serve.py"), "--port", "0", *args,
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert first.startswith("voxloop server on http://127.0.0.1:"), first
        port = int(first.split("127.0.0.1:")[1].split("/")[0])
        ready = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert ready.startswith("ready:"), ready
        yield Served(proc, port)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@asynccontextmanager
async def two_callers(*serve_args: str) -> AsyncIterator[tuple[Served, AgentClient, AgentClient]]:
    """`fake_serve`, a caller who has just said `UTTERANCE` (its reply to come) and an idle one."""
    async with (
        fake_serve(*serve_args) as srv,
        agent_client(srv.ws_url) as talking,
        agent_client(srv.ws_url) as idle,
    ):
        await talking.start()
        await idle.start()
        await talking.send_audio(UTTERANCE)
        yield srv, talking, idle


def test_sigterm_finishes_the_reply_refuses_new_sessions_and_exits_0() -> None:
    async def main() -> None:
        async with two_callers("--drain-seconds", "100", "--seconds-per-word", "15") as (srv, talking, idle):
            await talking.until(lambda: talking.samples_received >= REPLY_SAMPLES, "the whole reply's audio")
            await talking.send({"type": "playback", "position": 0})  # a client that reports: it holds on

            srv.terminate()
            # the idle caller is let go at once, told why, with "service restart"
            assert await idle.closed_with() == 1012
            error = await idle.error("shutting_down")
            assert error["fatal"] and "connect again" in error["message"]
            # unready (a load balancer stops sending callers) but alive (not restarted meanwhile)
            status, _, body = await http_get(srv.port, "/readyz")
            assert status == 503 and json.loads(body)["draining"] is True
            assert (await http_get(srv.port, "/healthz"))[0] == 200
            async with agent_client(srv.ws_url) as late:  # a new caller is refused
                assert (await late.error("shutting_down"))["fatal"]
                assert await late.closed_with() == 1012
            assert "turn_completed" not in talking.types() and not talking.closed

            # the caller mid-reply plays it to the end: the whole turn, then the close
            await talking.send({"type": "playback", "position": talking.samples_received})
            turn = (await talking.event("turn_completed"))["turn"]
            assert turn["agent_text"] == "Sure, happy to help." and not turn["interrupted"]
            assert "audio_stop" not in talking.types() and talking.samples_received == REPLY_SAMPLES
            assert (await talking.error("shutting_down"))["fatal"]
            assert await talking.closed_with() == 1012
            types = talking.types()
            assert types.index("playback_finished") < types.index("turn_completed") < types.index("error")
            assert await srv.exit_code() == 0

    run(main())


def test_a_reply_longer_than_the_drain_is_cut_off_and_the_process_still_exits_0() -> None:
    async def main() -> None:
        async with (
            fake_serve("--drain-seconds", "0.5", "--seconds-per-word", "15") as srv,
            agent_client(srv.ws_url) as talking,
        ):
            await talking.start()
            await talking.send_audio(UTTERANCE)
            await talking.event("agent_speech")
            srv.terminate()
            turn = (await talking.event("turn_completed"))["turn"]
            assert turn["interrupted"]  # recorded like an interruption: what was heard is kept
            assert "audio_stop" in talking.types()
            assert (await talking.error("shutting_down"))["fatal"]
            assert await talking.closed_with() == 1012
            assert await srv.exit_code() == 0

    run(main())


def test_a_second_sigterm_cuts_the_drain_short() -> None:
    async def main() -> None:
        async with two_callers("--drain-seconds", "100", "--seconds-per-word", "15") as (srv, talking, idle):
            await talking.event("agent_speech")
            srv.terminate()
            assert await idle.closed_with() == 1012  # the drain has begun
            assert "turn_completed" not in talking.types()
            srv.terminate()
            assert (await talking.event("turn_completed"))["turn"]["interrupted"]
            assert await talking.closed_with() == 1012
            assert await srv.exit_code() == 0

    run(main())


def test_sigterm_with_no_session_exits_0_at_once() -> None:
    async def main() -> None:
        async with fake_serve("--drain-seconds", "100") as srv:
            srv.terminate()
            assert await srv.exit_code() == 0

    run(main())
