"""How each model of the loop degrades when other processes keep the CPU busy.

For each round, and within it each load (0, 1, 2 ... busy processes from `voxloop.bench.cpuload`,
in a rotated order so no condition always runs first), it times:
  llm tN    Qwen 1.5B with N llama threads: first token with the user's last word and the reply
            opening still to evaluate (8 tokens, the loop's usual case), and ms per token after it
  stt bK    Whisper tiny.en's loop decode (`WhisperDecoder.decode`, 1 thread) of a 3 s clip, beam K
  vad       Silero v6, one 32 ms frame (1 thread)
Conditions are interleaved (A B C A B C ...) because the machine may be busy with other work
too; the table reports the median and the 10th-90th percentile spread of every condition, and
the median's ratio to the same measure with no load.

The OpenMP runtime reads its spin count once, when llama.cpp loads. Importing voxloop sets
GOMP_SPINCOUNT=10000 unless a wait policy or spin count is set, so compare them across runs:
    GOMP_SPINCOUNT=300000 .venv/bin/python benchmarks/under_load.py   # GNU OpenMP's default
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/under_load.py  # sleep at once
    .venv/bin/python benchmarks/under_load.py                          # voxloop's 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from voxloop.bench.corpus import load_corpus
from voxloop.bench.cpuload import CpuLoad
from voxloop.config import LLMConfig, STTConfig
from voxloop.models import model_path
from voxloop.providers.base import Message
from voxloop.providers.llm.llama import chatml

QUESTIONS = [
    "What is the capital of France?",
    "Can you set a timer for ten minutes?",
    "What is twelve times twelve?",
    "Tell me a fun fact about cats.",
]
LEFT = 8  # prompt tokens still to evaluate when the turn ends (last word + ChatML reply opening)
DECODE = 8  # tokens timed after the first
Samples = dict[str, list[float]]


def llm_round(llm: Any, threads: int, questions: list[str], out: Samples) -> None:
    import llama_cpp

    cfg = LLMConfig()
    llama_cpp.llama_set_n_threads(llm._ctx.ctx, threads, threads)
    system = Message("system", cfg.system_prompt)
    for q in questions:
        tokens = llm.tokenize(chatml([system, Message("user", q)]).encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(tokens[: len(tokens) - LEFT])
        t0 = time.perf_counter()
        stamps = []
        for n, _ in enumerate(llm.generate(tokens, temp=0.0)):
            stamps.append(time.perf_counter() - t0)
            if n >= DECODE:
                break
        out[f"llm t{threads} first token ms"].append(stamps[0] * 1000)
        out[f"llm t{threads} ms/token"].append((stamps[-1] - stamps[0]) * 1000 / DECODE)


def stt_round(stt: Any, audio: np.ndarray, out: Samples) -> None:
    for beam in (1, 5):
        t0 = time.perf_counter()
        stt.decode(audio, beam_size=beam)
        out[f"stt b{beam} decode ms"].append((time.perf_counter() - t0) * 1000)


def vad_round(vad: Any, out: Samples, frames: int = 60) -> None:
    stream = vad.stream()
    rng = np.random.default_rng(0)
    for _ in range(frames):
        frame = (rng.normal(0, 0.05, 512)).astype(np.float32)
        t0 = time.perf_counter()
        stream(frame)
        out["vad frame ms"].append((time.perf_counter() - t0) * 1000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loads", default="0,1,2", help="busy processes per condition (default 0,1,2)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--llm-threads", default="1,2")
    ap.add_argument("--questions", type=int, default=2, help="LLM questions per condition and round")
    ap.add_argument("--no-stt", action="store_true")
    ap.add_argument("--no-vad", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write every sample here")
    a = ap.parse_args()
    loads = [int(x) for x in a.loads.split(",")]
    threads = [int(x) for x in a.llm_threads.split(",") if x]

    import llama_cpp

    cfg = LLMConfig()
    llm = llama_cpp.Llama(
        model_path=str(model_path(cfg.model)),
        n_ctx=cfg.context,
        n_threads=2,
        n_threads_batch=2,
        verbose=False,
    )
    stt = vad = None
    audio = np.zeros(0, np.float32)
    if not a.no_stt:
        from voxloop.providers.stt.whisper_decoder import WhisperDecoder

        stt = WhisperDecoder("tiny.en", STTConfig(threads=1), replicas=1)
        corpus = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
        clip = next(c for c in load_corpus(corpus) if 2.5 <= len(c.audio()) / 16000 <= 4.0)
        audio = clip.audio()
    if not a.no_vad:
        from voxloop.providers.vad.silero import SileroVAD

        vad = SileroVAD()
        asyncio.run(vad.load())

    samples: dict[int, Samples] = {n: defaultdict(list) for n in loads}
    for r in range(a.rounds):
        order = loads[r % len(loads) :] + loads[: r % len(loads)]
        for n in order:
            with CpuLoad(n, limit_s=600):
                time.sleep(0.5)  # the busy processes are up and spinning
                qs = [QUESTIONS[(r * a.questions + i) % len(QUESTIONS)] for i in range(a.questions)]
                for t in threads:
                    llm_round(llm, t, qs, samples[n])
                if stt is not None:
                    stt_round(stt, audio, samples[n])
                if vad is not None:
                    vad_round(vad, samples[n])
            print(f"round {r + 1}/{a.rounds}, load {n} done", file=sys.stderr)

    policy = os.environ.get("OMP_WAIT_POLICY", "(unset)")
    policy += f", GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', '(unset)')}"
    print(f"\nOMP_WAIT_POLICY={policy}; {a.rounds} rounds; median [p10-p90] (x the median with no load)")
    base = samples[loads[0]] if loads[0] == 0 else None
    names = list(samples[loads[0]])
    print(f"{'measure':22s}" + "".join(f"{f'load {n}':>28s}" for n in loads))
    for name in names:
        cells = []
        for n in loads:
            xs = samples[n][name]
            med = statistics.median(xs)
            q = np.percentile(xs, [10, 90])
            ratio = f" x{med / statistics.median(base[name]):.1f}" if base is not None and n else ""
            digits = 2 if med < 10 else 0
            cells.append(f"{med:.{digits}f} [{q[0]:.{digits}f}-{q[1]:.{digits}f}]{ratio}")
        print(f"{name:22s}" + "".join(f"{c:>28s}" for c in cells))
    if a.json is not None:
        a.json.write_text(json.dumps({"omp_wait_policy": policy, "samples": samples}, indent=1))


if __name__ == "__main__":
    main()
