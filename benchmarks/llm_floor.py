"""How fast can the default LLM start a reply on this machine, whatever the loop does around it?

For a few short questions it times, from the moment the prompt is complete, the first token and
the fourth (about three spoken words, the loop's first TTS request) in three cases: the user's
last word and the ChatML reply opening still to evaluate (8 tokens), only the opening (5), and
nothing (the prompt fully cached; llama.cpp re-evaluates one token for its logits). The loop's
latency can never beat the middle case plus the recogniser's final decode and the VAD's pause.

    .venv/bin/python benchmarks/llm_floor.py [--threads 1] [--cpu-load 2]

`--cpu-load N` runs N busy processes (`voxloop.bench.cpuload`) beside it; `benchmarks/under_load.py`
compares loads and thread counts side by side.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from voxloop.bench.cpuload import CpuLoad
from voxloop.config import LLMConfig
from voxloop.models import model_path
from voxloop.providers.base import Message
from voxloop.providers.llm.llama import chatml

QUESTIONS = [
    "What is the capital of France?",
    "Can you set a timer for ten minutes?",
    "What is twelve times twelve?",
    "Tell me a fun fact about cats.",
]
CASES = {"last word + opening left": 8, "opening left": 5, "all cached": 1}


def main() -> None:
    ap = argparse.ArgumentParser(description="time to the first tokens of the default LLM")
    ap.add_argument("--threads", type=int, default=LLMConfig.threads)
    ap.add_argument("--cpu-load", type=int, default=0, metavar="N", help="busy processes beside it")
    a = ap.parse_args()
    import llama_cpp

    cfg = LLMConfig(threads=a.threads)
    llm = llama_cpp.Llama(
        model_path=str(model_path(cfg.model)),
        n_ctx=cfg.context,
        n_threads=cfg.threads,
        n_threads_batch=cfg.threads,
        verbose=False,
    )
    system = Message("system", cfg.system_prompt)
    print(
        f"{cfg.model}, {cfg.threads} threads, {a.cpu_load} busy process(es) beside it; "
        "ms from the complete prompt (median of 2 x 4 questions)"
    )
    print(f"{'case':26s} {'first token':>12s} {'4th token':>10s} {'ms/token':>9s}")
    with CpuLoad(a.cpu_load, limit_s=1800):
        for case, left in CASES.items():
            _case(llm, system, case, left)


def _case(llm: Any, system: Message, case: str, left: int) -> None:
    first, fourth, per = [], [], []
    for q in QUESTIONS * 2:
        tokens = llm.tokenize(chatml([system, Message("user", q)]).encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(tokens[: len(tokens) - left])
        t0 = time.perf_counter()
        stamps = []
        for n, _ in enumerate(llm.generate(tokens, temp=0.0)):
            stamps.append((time.perf_counter() - t0) * 1000)
            if n >= 5:
                break
        first.append(stamps[0])
        fourth.append(stamps[3])
        per.append((stamps[5] - stamps[1]) / 4)
    med = statistics.median
    print(f"{case:26s} {med(first):12.0f} {med(fourth):10.0f} {med(per):9.0f}")


if __name__ == "__main__":
    main()
