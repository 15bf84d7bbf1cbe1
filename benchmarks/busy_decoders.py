"""The loop's decoders side by side, idle and beside busy processes: what a final decode costs and
how accurate it is, to choose the recogniser of a busy machine (`STTConfig.busy_model`).

Each corpus clip is decoded whole, one thread each, by Whisper tiny.en with the final beam (the
idle default), tiny.en greedy (the busy fallback) and Moonshine tiny; first on the idle machine,
then beside `--cpu-load` busy processes. Reported per decoder: milliseconds per second of audio
(p50 / p95 over the clips) and WER on each part of the speaker split (`bench/split.py`).

    .venv/bin/python benchmarks/busy_decoders.py --corpus ../shared/corpus [--cpu-load 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from voxloop.bench.corpus import Clip, load_corpus, normalize, word_errors
from voxloop.bench.cpuload import CpuLoad
from voxloop.bench.split import part_of
from voxloop.bench.stats import percentiles
from voxloop.config import STTConfig
from voxloop.providers.base import Samples
from voxloop.providers.stt.moonshine import MoonshineSTT
from voxloop.providers.stt.whisper_decoder import WhisperDecoder

Decoder = Callable[[Samples], str]


def measure(label: str, clips: list[Clip], decoders: dict[str, Decoder]) -> None:
    for name, decode in decoders.items():
        cost: list[float] = []
        errors = {"tuning": 0, "validation": 0}
        words = {"tuning": 0, "validation": 0}
        for i, clip in enumerate(clips, 1):
            audio = clip.audio()
            t0 = time.perf_counter()
            text = decode(audio)
            cost.append((time.perf_counter() - t0) * 1000 / (len(audio) / 16000))
            ref, part = normalize(clip.transcript), part_of(clip.id)
            errors[part] += word_errors(ref, normalize(text))
            words[part] += len(ref)
            print(f"\r{label} {name}: {i}/{len(clips)} clips", end="", flush=True)
        wer = " / ".join(f"{errors[p] / max(1, words[p]):.3f}" for p in ("tuning", "validation"))
        p = percentiles(cost)
        print(
            f"\r{label} {name}: ms per s of audio p50 {p['p50']} p95 {p['p95']}; WER tuning / validation {wer}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    ap.add_argument("--cpu-load", type=int, default=2, help="busy processes for the second pass")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    clips = load_corpus(args.corpus, args.limit)
    config = STTConfig()
    tiny = WhisperDecoder("tiny.en", config)
    moon = MoonshineSTT(STTConfig(provider="moonshine"))
    moon._load()
    decoders: dict[str, Decoder] = {
        f"tiny.en beam {config.final_beam_size}": lambda a: tiny.decode(a, config.final_beam_size),
        "tiny.en greedy": lambda a: tiny.decode(a, 1),
        "moonshine tiny": moon.decode,
    }
    measure("idle", clips, decoders)
    with CpuLoad(args.cpu_load):
        measure(f"beside {args.cpu_load} busy", clips, decoders)


if __name__ == "__main__":
    main()
