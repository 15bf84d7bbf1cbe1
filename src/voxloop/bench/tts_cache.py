"""`voxloop bench tts-cache`: how soon a cached line's first audio comes, per backend.

The cache is filled with `--lines` lines (fillers and IVR-style sentences, 1-4 s of audio each),
then `--lookups` lookups pick a line at random and time `synthesize(line)` up to its first chunk
of audio, through `CachedTTS` as a session uses it: the key, the store's read (disk: in the
cache's thread; Redis: over loopback), the checks and the conversion to float32. With
`--concurrency 1,8`, that many lookups run at once (sessions speaking at the same moment).
"memory" is the disk store with the process's own copy in front (what a session's fillers get).
The voice that fills the cache is a tone generator unless `--voice hibari`, which also times the
real voice's first audio for the same lines (the misses) for comparison. Redis: `--redis URL`,
else a redis-server started on a free loopback port for the run. Writes tts_cache.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import numpy as np

from voxloop.bench.cpuload import CpuLoad
from voxloop.bench.stats import write_json
from voxloop.errors import VoxloopError
from voxloop.providers.base import TTS, Samples
from voxloop.providers.tts.cache import CachedTTS, DiskStore, LinePolicy, Store

log = logging.getLogger("voxloop.bench")
PHRASES = (
    "One moment.",
    "Give me a second.",
    "Thanks for calling. How can I help you today?",
    "Is there anything else I can help you with?",
    "Sorry, I didn't catch that. Could you say it again?",
    "Let me check that for you.",
    "Your request has been received and will be handled shortly.",
    "Please stay on the line while I look into it.",
)


class ToneVoice(TTS):
    """A stand-in voice: 0.3 s of tone per word at 24 kHz, in 0.25 s chunks."""

    name = "tone"
    sample_rate = 24000

    async def synthesize(self, text: str) -> AsyncGenerator[Samples, None]:
        n = int(0.3 * len(text.split()) * self.sample_rate)
        audio = (0.3 * np.sin(np.arange(n) * (2 * np.pi * 220 / self.sample_rate))).astype(np.float32)
        for i in range(0, n, self.sample_rate // 4):
            yield audio[i : i + self.sample_rate // 4]


def add_parser(bench: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = bench.add_parser("tts-cache", help="first audio of cached lines: p50/p95 per backend")
    p.add_argument(
        "--backends",
        default="disk,redis,memory",
        help="comma list of disk, redis and memory (the process's own copy, over disk); default all",
    )
    p.add_argument("--redis", default="", help="a Redis to use, redis://HOST:PORT/DB (default: start one)")
    p.add_argument("--lines", type=int, default=64, help="distinct lines in the cache (default 64)")
    p.add_argument("--lookups", type=int, default=2000, help="timed lookups per run (default 2000)")
    p.add_argument("--concurrency", default="1,8", help="lookups at once, a comma list (default 1,8)")
    p.add_argument("--voice", choices=["tone", "hibari"], default="tone", help="the voice that fills it")
    p.add_argument("--cpu-load", type=int, default=0, metavar="N", help="N busy processes beside it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("bench-out"))


def _lines(n: int) -> list[str]:
    lines = list(PHRASES[:n])
    for i in range(len(lines), n):  # more: variants that cost a key and a file each
        lines.append(f"{PHRASES[i % len(PHRASES)]} Reference {chr(65 + i % 26)}{i}.")
    return lines


def _summary(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {f"p{q}": round(float(np.percentile(a, q)), 3) for q in (50, 95, 99)} | {
        "max": round(float(a.max()), 3),
        "mean": round(float(a.mean()), 3),
        "n": len(ms),
    }


async def _first_audio_ms(tts: TTS, text: str) -> float:
    t0 = time.perf_counter()
    async with contextlib.aclosing(tts.synthesize(text)) as chunks:
        async for _ in chunks:
            break
    return (time.perf_counter() - t0) * 1000


async def _fill_ms(tts: TTS, text: str) -> tuple[float, float]:
    """The first audio, and the whole audio, of a line said whole (so that it is stored)."""
    t0, first = time.perf_counter(), None
    async for _ in tts.synthesize(text):
        first = first or time.perf_counter()
    end = time.perf_counter()
    return ((first or end) - t0) * 1000, (end - t0) * 1000


async def _measure(tts: CachedTTS, lines: list[str], lookups: int, at_once: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    picks = [lines[i] for i in rng.integers(len(lines), size=lookups)]
    times: list[float] = []

    async def lane(texts: list[str]) -> None:
        for text in texts:
            times.append(await _first_audio_ms(tts, text))

    async with asyncio.TaskGroup() as tg:
        for k in range(at_once):
            tg.create_task(lane(picks[k::at_once]))
    return times


async def _backend(name: str, store: Store, voice: TTS, a: argparse.Namespace) -> dict[str, Any]:
    lines = _lines(a.lines)
    policy = LinePolicy((), replies="all", personal=lambda _: False)
    tts = CachedTTS(voice, store, policy, memory_bytes=256 * 2**20 if name == "memory" else 0)
    await tts.load()
    fill = [await _fill_ms(tts, line) for line in lines]  # misses: the voice's own audio
    await tts.flush()
    result: dict[str, Any] = {
        "backend": f"memory over {store.name}" if name == "memory" else store.name,
        "lines": len(lines),
        "fill_first_audio_ms": _summary([first for first, _ in fill]),
        "fill_whole_line_ms": _summary([whole for _, whole in fill]),
    }
    levels = [int(x) for x in a.concurrency.split(",") if x.strip()]
    for at_once in levels:
        hits_before = tts.stats.hits
        ms = await _measure(tts, lines, a.lookups, at_once, a.seed)
        if tts.stats.hits - hits_before != len(ms):
            raise VoxloopError(f"bench tts-cache: {name} missed lines it was filled with", store.name)
        result[f"hit_first_audio_ms_x{at_once}"] = _summary(ms)
    await store.aclose()
    return result


async def run(a: argparse.Namespace) -> dict[str, Any]:
    from voxloop.bench.local_redis import LocalRedis

    backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    if (
        not backends
        or set(backends) - {"disk", "redis", "memory"}
        or a.lines < 1
        or a.lookups < 1
        or a.cpu_load < 0
    ):
        raise VoxloopError(
            "bench tts-cache: nothing to measure", "--backends disk,redis,memory, --lines and --lookups >= 1"
        )
    voice: TTS = ToneVoice()
    if a.voice == "hibari":
        from voxloop.providers.tts.hibari import HibariTTS

        voice = HibariTTS()
        await voice.load()
    results: dict[str, Any] = {"voice": voice.name, "lookups": a.lookups, "runs": []}
    try:
        with CpuLoad(a.cpu_load) as load, contextlib.ExitStack() as stack:
            for name in backends:
                if name in ("disk", "memory"):
                    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="voxloop-tts-cache-"))
                    store: Store = DiskStore(Path(folder), 512 * 2**20)
                else:
                    from voxloop.providers.tts.cache.redis_store import RedisStore

                    url = a.redis or stack.enter_context(LocalRedis()).url
                    store = RedisStore(url, ttl_s=3600)
                results["runs"].append(await _backend(name, store, voice, a))
        results["cpu_load"] = load.report()  # once the burners have stopped and been counted
    finally:
        await voice.aclose()
    write_json(a.out / "tts_cache.json", results)
    for r in results["runs"]:
        for k, v in r.items():
            if k.startswith(("hit_", "fill_")):
                print(
                    f"{r['backend']:40s} {k:26s} p50 {v['p50']:8.3f}  p95 {v['p95']:8.3f}  max {v['max']:8.3f} ms"
                )
    print(f"wrote {a.out / 'tts_cache.json'}")
    return results
