"""Voice-to-voice through the WebSocket server, with 1..N conversations at once.

Starts `voxloop serve`'s app in this process on a free loopback port (the default stack, models
loaded once), then runs N clients side by side. Each client streams the same short corpus clips at
real-time pace (0.5 s of silence before each, silence after until the turn's record arrives and
the reply has played) and collects `v2v_ms` from each `turn_completed` record: the same figure,
measured the same way, as `turns.jsonl` of the in-process loop. The in-process figure for the same
clips comes first, from one VoiceSession with the virtual speaker.

    .venv/bin/python benchmarks/server_load.py --corpus ../shared/corpus --max-clients 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import connect

from voxloop.agent.providers import Providers
from voxloop.agent.session import VoiceSession
from voxloop.audio.pcm import to_int16
from voxloop.bench.corpus import load_corpus
from voxloop.bench.stats import percentiles
from voxloop.config import AgentConfig
from voxloop.server.app import create_app, server_state
from voxloop.server.run import bind, uvicorn_server
from voxloop.server.settings import ServerSettings
from voxloop.transports.timeline import TimelineSink
from voxloop.transports.wav import PacedInput

RATE = 16000
CLIPS = 8  # the shortest clips of the corpus: commands and single sentences


async def in_process(providers: Providers, clips: list[np.ndarray]) -> list[float]:
    sink = TimelineSink(providers.tts.sample_rate)
    session = VoiceSession(providers, sink, AgentConfig())
    mic = PacedInput(session)
    for audio in clips:
        n = len(session.records)

        def answered(n: int = n) -> bool:
            return len(session.records) > n and not sink.busy()

        await mic.feed(np.concatenate([np.zeros(RATE // 2, np.float32), audio]))
        await mic.silence_until(answered, 30)
    await session.aclose()
    return [r.v2v_ms for r in session.records if r.v2v_ms is not None]


async def client(url: str, clips: list[np.ndarray]) -> list[float]:
    async with connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "protocol": 1, "input_sample_rate": RATE}))
        done = asyncio.Event()
        turns: list[dict[str, Any]] = []

        async def read() -> None:
            async for msg in ws:
                if isinstance(msg, str):
                    event = json.loads(msg)
                    if event["type"] == "turn_completed":
                        turns.append(event["turn"])
                        done.set()

        reader = asyncio.get_running_loop().create_task(read())
        loop = asyncio.get_running_loop()
        step = RATE // 50
        for audio in clips:
            done.clear()
            pcm = to_int16(np.concatenate([np.zeros(RATE // 2, np.float32), audio]))
            t0 = loop.time()
            for i in range(0, len(pcm), step):  # a microphone: each 20 ms frame once it is "recorded"
                await asyncio.sleep(max(0.0, t0 + (i + step) / RATE - loop.time()))
                await ws.send(pcm[i : i + step].tobytes())
            silence = np.zeros(step, np.int16).tobytes()
            t1 = loop.time()
            k = 0
            while not done.is_set() and k < 30 * 50:  # silence until the reply has been played
                k += 1
                await asyncio.sleep(max(0.0, t1 + k * 0.02 - loop.time()))
                await ws.send(silence)
        await ws.send(json.dumps({"type": "stop"}))
        await asyncio.wait_for(reader, 30)
    return [t["v2v_ms"] for t in turns if t.get("v2v_ms") is not None]


async def main(corpus: Path, max_clients: int) -> None:
    audio = sorted((c.audio() for c in load_corpus(corpus)), key=len)[:CLIPS]
    providers = Providers.from_config(AgentConfig())
    await providers.load()
    print(f"{len(audio)} clips, {sum(len(a) for a in audio) / RATE:.1f} s of speech per conversation")
    base = await in_process(providers, audio)
    print(f"in-process      v2v {percentiles(base)}  (n={len(base)})")
    settings = ServerSettings(port=0, max_sessions=max_clients)
    app = create_app(providers, AgentConfig(), settings)
    sock = bind("127.0.0.1", 0)
    server = uvicorn_server(app, settings)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    url = f"ws://127.0.0.1:{sock.getsockname()[1]}/v1/agent"
    try:
        await asyncio.wait_for(server_state(app).ready.wait(), 120)
        for n in range(1, max_clients + 1):
            results = await asyncio.gather(*(client(url, audio) for _ in range(n)))
            flat = [v for r in results for v in r]
            print(f"{n} conversation(s) over the socket: v2v {percentiles(flat)}  (n={len(flat)})")
    finally:
        server.should_exit = True
        await task
        await providers.aclose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    ap.add_argument("--max-clients", type=int, default=3)
    a = ap.parse_args()
    asyncio.run(main(a.corpus, a.max_clients))
