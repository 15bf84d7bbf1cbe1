"""What one conversation costs a `voxloop serve` process, and its drain on SIGTERM (real models).

Starts `voxloop serve` as its own process (the default stack), measures the model load (time,
resident memory), then holds one conversation: corpus clips streamed at real-time pace, each
followed by silence until its turn is completed (the server models a speaker playing in real time,
so the wall time is what a caller would spend). It reports the CPU the process used per turn and
per minute of conversation, and the peak resident memory. During the last reply it sends SIGTERM:
the reply must finish, the session end with `shutting_down` (close 1012), the process exit 0.

    flock /tmp/voxloop-cpu.lock .venv/bin/python benchmarks/serve_footprint.py --clips 4
    ... --serve-args "--llm openai --openai-base-url http://127.0.0.1:8101/v1"   (the LLM elsewhere:
    only this process's CPU and memory are counted)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voxloop.audio.pcm import to_int16
from voxloop.bench.corpus import load_corpus

RATE = 16000


def proc_status(pid: int) -> dict[str, float]:
    """Resident memory now and at its peak (MB), and CPU seconds used (user + system)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
        "peak_rss_mb": int(fields["VmHWM"].split()[0]) / 1024,
        "cpu_s": (int(stat[11]) + int(stat[12])) / tick,
    }


async def turn(ws: ClientConnection, audio: np.ndarray, events: list[dict[str, Any]], sigterm: Any) -> None:
    """Stream one clip at real-time pace, then silence, until its turn_completed arrives."""
    mic = np.concatenate([np.zeros(RATE // 2, np.float32), audio, np.zeros(RATE * 60, np.float32)])
    step, t0 = RATE // 50, time.monotonic()
    n_before = sum(e["type"] == "turn_completed" for e in events)

    async def read() -> None:
        nonlocal sigterm
        async for msg in ws:
            if isinstance(msg, bytes):
                continue
            events.append(json.loads(msg))
            if events[-1]["type"] == "agent_speech" and sigterm is not None:
                sigterm()
                sigterm = None
            if sum(e["type"] == "turn_completed" for e in events) > n_before:
                return

    reader = asyncio.get_running_loop().create_task(read())
    try:
        for i in range(0, len(mic), step):
            if reader.done():
                break
            if (wait := t0 + (i + step) / RATE - time.monotonic()) > 0:
                await asyncio.sleep(wait)  # a microphone's pace
            try:
                await ws.send(to_int16(mic[i : i + step]).tobytes())
            except ConnectionClosed:  # the drain closed it after the reply
                break
        await reader
    finally:
        reader.cancel()


async def main(a: argparse.Namespace) -> dict[str, Any]:
    clips = sorted(load_corpus(Path(a.corpus)), key=lambda c: len(c.audio()))[: a.clips]
    cmd = [sys.executable, "-c", "from voxloop.cli import main; raise SystemExit(main())"]
    cmd += ["serve", "--port", "0", "--drain-seconds", str(a.drain_seconds), *shlex.split(a.serve_args)]
    t_start = time.monotonic()
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    first = (await proc.stdout.readline()).decode()
    port = int(first.split("127.0.0.1:")[1].split("/")[0])
    assert (await proc.stdout.readline()).decode().startswith("ready:")
    out: dict[str, Any] = {"load_s": round(time.monotonic() - t_start, 1), "loaded": proc_status(proc.pid)}
    events: list[dict[str, Any]] = []
    try:
        async with connect(f"ws://127.0.0.1:{port}/v1/agent", max_size=None) as ws:
            await ws.send(json.dumps({"type": "start", "input_sample_rate": RATE}))
            assert json.loads(await ws.recv())["type"] == "started"
            t0, cpu0 = time.monotonic(), proc_status(proc.pid)["cpu_s"]
            for clip in clips[:-1]:
                await turn(ws, clip.audio(), events, None)
            wall, now = time.monotonic() - t0, proc_status(proc.pid)
            turns = len(clips) - 1
            out["conversation"] = {
                "turns": turns,
                "wall_s": round(wall, 1),
                "cpu_s_per_turn": round((now["cpu_s"] - cpu0) / turns, 2),
                "cores_busy_on_average": round((now["cpu_s"] - cpu0) / wall, 2),
                "peak_rss_mb": round(now["peak_rss_mb"]),
            }
            sent_at: list[float] = []

            def sigterm() -> None:
                sent_at.append(time.monotonic())
                os.kill(proc.pid, signal.SIGTERM)

            await turn(ws, clips[-1].audio(), events, sigterm)
            last = [e for e in events if e["type"] == "turn_completed"][-1]["turn"]
            try:
                async for msg in ws:  # what follows the reply: the error, then the close (1012)
                    if isinstance(msg, str):
                        events.append(json.loads(msg))
            except ConnectionClosed:
                pass
            code = await asyncio.wait_for(proc.wait(), 60)
            out["drain"] = {
                "reply_finished": not last["interrupted"],
                "agent_text": last["agent_text"],
                "then": [e["code"] for e in events if e["type"] == "error"],
                "close_code": ws.close_code,
                "exit_code": code,
                "sigterm_to_exit_s": round(time.monotonic() - sent_at[0], 1),
            }
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    out["v2v_ms"] = [e["turn"]["v2v_ms"] for e in events if e["type"] == "turn_completed"]
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default="../shared/corpus")
    ap.add_argument("--clips", type=int, default=4, help="turns in the conversation (the last one drains)")
    ap.add_argument("--drain-seconds", type=float, default=20.0)
    ap.add_argument(
        "--serve-args",
        default="",
        help='more options for voxloop serve, e.g. "--llm openai --openai-base-url http://HOST:PORT/v1"',
    )
    print(json.dumps(asyncio.run(main(ap.parse_args())), indent=2))
