"""How much of the streaming / offline WER gap is the recogniser's sensitivity to its input.

Whisper tiny.en can write a clip differently when the audio changes by an amount no one hears.
Each pass here adds dither (white noise at `--dither-dbfs`, -70 dBFS by default: far below the
quietest corpus speech, -28) with its own seed to every clip, then transcribes it twice, as
`bench wer` does: by the loop's streaming recogniser (the Listener: VAD, endpointer, pieces,
re-hearing) and by Whisper's offline standard path. Seed 0 is the clips as they are. Reported per
pass and per part of the speaker split (`bench/split.py`): word errors of each, and the gap.
The spread over seeds is how far one run's gap can be from what the recogniser does on average.

    .venv/bin/python benchmarks/wer_spread.py --corpus ../shared/corpus [--seeds 5] [--long]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from voxloop.bench.corpus import load_corpus, normalize, word_errors
from voxloop.bench.long_turns import build_long_turns
from voxloop.bench.split import PARTS, part_of
from voxloop.bench.wer import streaming_text
from voxloop.config import AgentConfig
from voxloop.providers import registry
from voxloop.providers.base import Samples


@dataclass(frozen=True)
class Dithered:
    """A clip as `streaming_text` reads it, with its audio already dithered."""

    id: str
    transcript: str
    samples: Samples

    def audio(self) -> Samples:
        return self.samples


def dither(clean: Samples, seed: int, dbfs: float) -> Samples:
    """`clean` with white noise at `dbfs` of its own seed (0: unchanged)."""
    if not seed:
        return clean
    rng = np.random.default_rng(seed * 100_003 + len(clean))
    noise = rng.standard_normal(len(clean)).astype(np.float32) * 10 ** (dbfs / 20)
    return (clean + noise).astype(np.float32)


async def run(corpus: Path, seeds: int, long: bool, dbfs: float) -> None:
    clips = load_corpus(corpus)
    if long:
        clips = list(build_long_turns(clips))
    config = AgentConfig()
    config = replace(config, turn=replace(config.turn, stage_timeout_s=600.0))  # as bench wer
    vad, stt = registry.create_vad(config), registry.create_stt(config)
    await vad.load()
    await stt.load()
    gaps: dict[str, list[float]] = {p: [] for p in PARTS}
    try:
        for seed in range(seeds):
            errors = {p: [0, 0] for p in PARTS}  # streaming, offline
            words = dict.fromkeys(PARTS, 0)
            for i, c in enumerate(clips, 1):
                clip = Dithered(c.id, c.transcript, dither(c.audio(), seed, dbfs))
                ref, part = normalize(clip.transcript), part_of(clip.id)
                streamed = await streaming_text(vad, stt, config, clip)  # type: ignore[arg-type]
                offline = (await stt.transcribe(clip.samples)).text
                errors[part][0] += word_errors(ref, normalize(streamed))
                errors[part][1] += word_errors(ref, normalize(offline))
                words[part] += len(ref)
                print(f"\rseed {seed}: {i}/{len(clips)}", end="", flush=True)
            cells = []
            for p in PARTS:
                s, o = errors[p]
                gaps[p].append(s / max(1, o) - 1)
                cells.append(f"{p} {s} / {o} errors of {words[p]} words (gap {gaps[p][-1]:+.1%})")
            print(f"\rseed {seed}: streaming / offline: " + "; ".join(cells))
    finally:
        await stt.aclose()
    for p in PARTS:
        g = gaps[p]
        spread = f" (sd {statistics.stdev(g):.1%})" if len(g) > 1 else ""
        print(f"{p}: gap mean {statistics.mean(g):+.1%}{spread}, min {min(g):+.1%}, max {max(g):+.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    ap.add_argument("--seeds", type=int, default=5, help="passes (the first without dither)")
    ap.add_argument("--long", action="store_true", help="the long turns of bench wer --long")
    ap.add_argument("--dither-dbfs", type=float, default=-70.0)
    a = ap.parse_args()
    asyncio.run(run(a.corpus, a.seeds, a.long, a.dither_dbfs))


if __name__ == "__main__":
    main()
