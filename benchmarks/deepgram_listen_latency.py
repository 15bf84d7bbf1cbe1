"""Live transcription through the Deepgram-compatible `/v1/listen`: from the end of speech to the
final `Results`, on the corpus, fed in real time, with Deepgram's official Python SDK.

Starts a real `voxloop serve` (its own process, on a free loopback port, extra arguments passed
on), then for each clip opens a stream (`model=nova-3`, linear16 16 kHz, interim results), sends
0.5 s of silence, the clip and 2 s of silence in 20 ms chunks, each when it would have been
recorded, then CloseStream. The clip's speech end is the offline label (`bench.corpus.
speech_bounds`: Silero over the whole clip); it happened at t0 + 0.5 s + that label on the
client's clock. The latency is the arrival of the first final `Results` whose span reaches the
speech end, minus that moment (so it includes up to one 20 ms chunk of recording, as a microphone
client would see). Clips are streamed one after another; the WER of the finals is reported beside.

    flock /tmp/voxloop-cpu.lock .venv/bin/python benchmarks/deepgram_listen_latency.py \\
        --corpus ../shared/corpus --out bench-out/deepgram
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from deepgram import AsyncDeepgramClient
from deepgram.environment import DeepgramClientEnvironment

from voxloop.audio.pcm import to_int16
from voxloop.bench.corpus import Clip, load_corpus, speech_bounds, wer
from voxloop.bench.stats import percentiles, write_csv, write_json

RATE = 16000
LEAD_S, TAIL_S, CHUNK_MS = 0.5, 2.0, 20


async def start_server(extra: list[str]) -> tuple[asyncio.subprocess.Process, str]:
    """`voxloop serve --port 0`; returns it and its http address once it says it is ready."""
    exe = Path(sys.executable).with_name("voxloop")
    proc = await asyncio.create_subprocess_exec(
        str(exe), "serve", "--port", "0", *extra, stdout=asyncio.subprocess.PIPE, env=os.environ.copy()
    )
    assert proc.stdout is not None
    url = ""
    while line := (await asyncio.wait_for(proc.stdout.readline(), 600)).decode():
        print(line.rstrip(), flush=True)
        if m := re.search(r"(http://\S+?)/? ", line):
            url = url or m.group(1).rstrip("/")
        if line.startswith("ready"):
            return proc, url
    raise RuntimeError(f"voxloop serve exited ({await proc.wait()}) before it was ready")


async def one_clip(client: AsyncDeepgramClient, clip: Clip) -> dict[str, Any]:
    audio = clip.audio()
    _, speech_end = speech_bounds(audio)
    x = np.concatenate(
        [np.zeros(int(LEAD_S * RATE), np.float32), audio, np.zeros(int(TAIL_S * RATE), np.float32)]
    )
    step = RATE * CHUNK_MS // 1000
    loop = asyncio.get_running_loop()
    finals: list[tuple[float, Any]] = []  # (arrival, message)
    interims = 0
    async with client.listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=RATE, interim_results=True, punctuate=True
    ) as sock:

        async def read() -> None:
            nonlocal interims
            async for m in sock:
                if getattr(m, "type", None) == "Results":
                    if m.is_final:
                        finals.append((loop.time(), m))
                    else:
                        interims += 1

        reader = loop.create_task(read())
        t0 = loop.time()
        for i in range(0, len(x), step):
            if (wait := t0 + (i + step) / RATE - loop.time()) > 0:
                await asyncio.sleep(wait)  # a microphone: each chunk once it has been recorded
            await sock.send_media(to_int16(x[i : i + step]).tobytes())
        await sock.send_close_stream()
        await asyncio.wait_for(reader, 60)
    end_at = LEAD_S + speech_end
    covering = [(t, m) for t, m in finals if m.start + m.duration >= end_at - 0.05]
    text = " ".join(
        m.channel.alternatives[0].transcript for _, m in finals if m.channel.alternatives[0].transcript
    )
    row: dict[str, Any] = {
        "id": clip.id,
        "speech_end_s": round(speech_end, 3),
        "final_ms": None,
        "speech_final": None,
        "finals": len(finals),
        "interims": interims,
        "reference": clip.transcript,
        "transcript": text,
    }
    if covering:
        t, m = covering[0]
        row["final_ms"] = round((t - (t0 + end_at)) * 1000, 1)
        row["speech_final"] = bool(m.speech_final)
    return row


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    ap.add_argument("--out", type=Path, default=Path("bench-out/deepgram"))
    ap.add_argument("--limit", type=int, default=None, help="only the first N clips")
    a, serve_args = ap.parse_known_args()
    clips = load_corpus(a.corpus, a.limit)
    proc, url = await start_server(serve_args)
    http = httpx.AsyncClient(timeout=120)
    env = DeepgramClientEnvironment(
        base=url, production=url.replace("http://", "ws://"), agent="", agent_rest=""
    )
    client = AsyncDeepgramClient(api_key="local", environment=env, httpx_client=http)
    rows = []
    try:
        for k, clip in enumerate(clips, 1):
            row = await one_clip(client, clip)
            print(f"{k:3d}/{len(clips)} {clip.id:45s} final {row['final_ms']} ms", flush=True)
            rows.append(row)
    finally:
        await http.aclose()
        proc.terminate()
        await proc.wait()
    ms = [r["final_ms"] for r in rows if r["final_ms"] is not None]
    summary = {
        "clips": len(rows),
        "measured": len(ms),
        "end_of_speech_to_final_results_ms": percentiles(ms),
        "speech_final": sum(1 for r in rows if r["speech_final"]),
        "wer": round(wer([r["reference"] for r in rows], [r["transcript"] for r in rows]), 3),
        "serve_args": serve_args,
    }
    write_json(a.out / "deepgram_listen_latency.json", summary)
    write_csv(a.out / "deepgram_listen_clips.csv", rows)
    print(summary)


if __name__ == "__main__":
    asyncio.run(main())
