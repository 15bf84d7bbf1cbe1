"""SIGTERM to a real `voxloop serve` (the default models, its own process) while it answers a
spoken question: the reply is finished and heard to its end, then the session is closed with
`shutting_down` (1012) and the process exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from live_server import agent_client

from .conftest import LAMP, Arun, Corpus

pytestmark = pytest.mark.integration
SRC = Path(__file__).resolve().parents[2] / "src"


def test_sigterm_mid_reply_finishes_it_and_exits_0(arun: Arun[Any], corpus: Corpus) -> None:
    mic = np.concatenate([np.zeros(8000, np.float32), corpus.audio(LAMP), np.zeros(30 * 16000, np.float32)])

    async def main() -> None:
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        code = "from voxloop.cli import main; raise SystemExit(main())"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, "serve", "--port", "0", "--drain-seconds", "30",
            stdout=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            first = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            port = int(first.split("127.0.0.1:")[1].split("/")[0])
            ready = (await asyncio.wait_for(proc.stdout.readline(), 300)).decode()
            assert ready.startswith("ready:"), ready
            async with agent_client(f"ws://127.0.0.1:{port}/v1/agent") as c:
                await c.start()
                streaming = asyncio.get_running_loop().create_task(c.stream(mic))
                try:
                    await c.event("agent_speech", within=90)
                    os.kill(proc.pid, signal.SIGTERM)  # mid-reply
                    turn = (await c.event("turn_completed", within=60))["turn"]
                    assert not turn["interrupted"] and turn["agent_text"]
                    assert "audio_stop" not in c.types()
                    assert (await c.error("shutting_down", within=30))["fatal"]
                    assert await c.closed_with(within=30) == 1012
                finally:
                    streaming.cancel()
                    await asyncio.gather(streaming, return_exceptions=True)
            assert await asyncio.wait_for(proc.wait(), 60) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    arun(main())
