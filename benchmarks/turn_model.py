"""Where turns end with and without the end-of-turn model, on the corpus, without the agent.

Each clip goes through the Listener as `bench wer` feeds it (Silero VAD, the endpointer, adaptive
silence), with a recogniser that hears nothing (so no transcript holds a pause: the session has
that rule too), once per configuration. Per part of the speaker split it prints: turns decided
before the labelled speech end ("early": the user was still going to speak), and the endpoint in
audio time (labelled speech end to the decision; the model's own compute time comes on top in a
live session: its p50/p95 is printed). Tune on `tuning`, read `validation`.

    PYTHONPATH=src .venv/bin/python benchmarks/turn_model.py [--corpus ../shared/corpus]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from voxloop.agent.listener import Listener
from voxloop.bench.corpus import load_corpus, speech_bounds
from voxloop.bench.split import parts_of
from voxloop.bench.stats import percentiles
from voxloop.config import AgentConfig, TurnConfig
from voxloop.providers.base import STT, PartialCallback, Samples, STTStream, Transcript
from voxloop.providers.turn import TurnModel
from voxloop.providers.turn.smart_turn import SmartTurn
from voxloop.providers.vad.silero import SileroVAD


class _Deaf(STTStream):
    async def push(self, audio: Samples) -> None:
        return None

    async def finalize(self) -> Transcript:
        return Transcript("", True)


class Deaf(STT):
    name = "deaf"

    def stream(self, on_partial: PartialCallback | None = None) -> STTStream:
        return _Deaf()


class Timed(TurnModel):
    def __init__(self, inner: TurnModel) -> None:
        self.inner, self.ms = inner, list[float]()

    async def complete(self, audio: Samples) -> float:
        t0 = time.perf_counter()
        p = await self.inner.complete(audio)
        self.ms.append((time.perf_counter() - t0) * 1000)
        return p


async def clip_turns(vad: SileroVAD, model: TurnModel | None, cfg: AgentConfig, audio: Samples, end: float):  # type: ignore[no-untyped-def]
    ear = Listener(vad, Deaf(), cfg, rehear=False, turn_model=model)
    lead = np.zeros(8000, np.float32)  # 0.5 s before the clip, as bench latency feeds it
    end_sample = len(lead) + int(end * 16000)
    decided: list[int] = []
    async for item in ear.listen(np.concatenate([lead, audio, np.zeros(32000, np.float32)]), 16000):
        if getattr(item, "kind", None) == "turn_end":
            decided.append(ear.position)
    await ear.aclose()
    early = sum(1 for d in decided if d < end_sample)
    last = [d for d in decided if d >= end_sample]
    return early, ((last[0] - end_sample) / 16 if last else None)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    ap.add_argument(
        "--grid",
        default="200:0.5:0.5,200:0.9:0.5,200:0.95:0.05,400:0.9:0.5,200:2.0:0.5",
        help="configurations to try: after_ms:threshold:hold_below, comma-separated",
    )
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    clips = load_corpus(a.corpus)
    audios = [c.audio() for c in clips]
    ends = [speech_bounds(x)[1] for x in audios]
    parts = {k: v for k, v in parts_of([c.id for c in clips]).items() if k != "all"}
    vad, model = SileroVAD(), SmartTurn()
    await vad.load()
    await model.load()
    configs: list[tuple[str, TurnModel | None, TurnConfig]] = [("none", None, TurnConfig())]
    for cell in a.grid.split(","):
        after, th, below = cell.split(":")
        tc = TurnConfig(
            model="smart-turn",
            model_after_ms=int(after),
            model_threshold=float(th),
            model_hold_below=float(below),
        )
        configs.append((f"smart-turn {after} ms, >= {th} ends, < {below} holds", Timed(model), tc))
    results: dict[str, Any] = {}
    for name, m, tc in configs:
        cfg = dataclasses.replace(AgentConfig(), turn=tc)
        rows = [await clip_turns(vad, m, cfg, x, e) for x, e in zip(audios, ends, strict=True)]
        res: dict[str, Any] = {}
        for part, idx in parts.items():
            eps = [rows[i][1] for i in idx if rows[i][1] is not None]
            res[part] = {
                "n": len(idx),
                "early": sum(rows[i][0] for i in idx),
                "endpoint_ms": percentiles(eps),
            }
        if isinstance(m, Timed):
            res["model_ms"] = percentiles(m.ms)
        results[name] = res
        cells = "  ".join(
            f"{p}: {r['early']:2d} early, endpoint p50 {r['endpoint_ms']['p50']:.0f} p95 {r['endpoint_ms']['p95']:.0f} ms"
            for p, r in res.items()
            if p != "model_ms"
        )
        print(f"{name:40s} {cells}", flush=True)
    await model.aclose()
    await vad.aclose()
    if a.out:
        a.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
