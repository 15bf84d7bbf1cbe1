"""`voxloop bench`'s options, one subcommand a benchmark, and running the one asked for."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from voxloop.agent.options import add_options as add_agent_options
from voxloop.agent.options import config
from voxloop.errors import VoxloopError

CORPUS_BENCHMARKS = (
    ("latency", "every stage of every turn, and a sequential baseline"),
    ("wer", "word error rate of the streaming recogniser beside offline decoding"),
    ("turns", "barge-in, echo and noise scenarios over the agent's voice"),
    ("faults", "recovery from cloud provider faults, injected on a schedule against a local server"),
    ("answers", "spoken questions with expected answers: replies right, and how soon they begin"),
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = sub.add_parser("bench", help="benchmarks: latency, wer, turns, faults, answers, load")
    bsub = b.add_subparsers(dest="bench", required=True)
    for name, what in CORPUS_BENCHMARKS:
        bp = bsub.add_parser(name, help=what)
        bp.add_argument(
            "--corpus",
            type=Path,
            required=name != "faults",
            help="a folder with manifest.tsv and WAVs (faults: $VOXLOOP_CORPUS or ../shared/corpus)",
        )
        bp.add_argument("--out", type=Path, default=Path("bench-out"))
        bp.add_argument("--limit", type=int, default=None, help="only the first N clips")
        bp.add_argument(
            "--cpu-load",
            type=int,
            default=0,
            metavar="N",
            help="run N busy processes (one core each) beside the benchmark, for all of it (default 0)",
        )
        _add_own_options(name, bp)
        add_agent_options(bp)

    from voxloop.bench.load_cli import add_parser as add_load
    from voxloop.bench.tts_cache import add_parser as add_tts_cache

    add_load(bsub)
    add_tts_cache(bsub)


def _add_own_options(name: str, bp: argparse.ArgumentParser) -> None:
    if name == "latency":
        bp.add_argument("--no-baseline", action="store_true", help="skip the sequential baseline")
    if name == "wer":
        bp.add_argument(
            "--long",
            action="store_true",
            help="long turns (20-40 s) built from the corpus's speakers instead of its clips",
        )
        bp.add_argument(
            "--opus-kbps",
            type=int,
            default=0,
            help="hear the clips through Opus at this bitrate (16 kHz)",
        )
        bp.add_argument(
            "--telephone",
            action="store_true",
            help="each clip also as a phone call carries it (8 kHz mu-law), with the end-of-turn rules on both",
        )
    if name == "turns":
        bp.add_argument("--trials", type=int, default=20, help="trials per scenario (default 20)")
        bp.add_argument("--seed", type=int, default=0)
        bp.add_argument(
            "--scenarios",
            default="",
            help="comma-separated, of: interrupt, echo, echo_interrupt, noise (default: all)",
        )
        bp.add_argument(
            "--telephone",
            action="store_true",
            help="the caller's microphone through a phone line (8 kHz mu-law)",
        )
    if name == "answers":
        bp.add_argument(
            "--make-corpus",
            action="store_true",
            help="voice the built-in question set into --corpus first (Piper joe), if it has no answers.tsv",
        )
    if name == "faults":
        bp.add_argument(
            "--kinds", default="", help="comma-separated fault kinds, one per clip (default: all)"
        )


async def dispatch(a: argparse.Namespace) -> None:
    if a.bench == "tts-cache":
        from voxloop.bench import tts_cache as tts_cache_bench

        await tts_cache_bench.run(a)
    elif a.bench == "load":
        from voxloop.bench.load_cli import dispatch as run_load

        await run_load(a)
    elif a.cpu_load < 0:
        raise VoxloopError(f"--cpu-load {a.cpu_load} is out of range", "use 0 or more busy processes")
    elif a.bench == "latency":
        from voxloop.bench import latency

        await latency.run(a.corpus, a.out, config(a), a.limit, not a.no_baseline, cpu_load=a.cpu_load)
    elif a.bench == "wer":
        from voxloop.bench import wer as wer_bench

        if a.telephone:
            from voxloop.bench import telephone

            await telephone.run(a.corpus, a.out, config(a), a.limit, cpu_load=a.cpu_load)
        else:
            await wer_bench.run(
                a.corpus, a.out, config(a), a.limit, long=a.long, cpu_load=a.cpu_load, opus_kbps=a.opus_kbps
            )
    elif a.bench == "turns":
        from voxloop.bench import turns

        chosen = tuple(x.strip() for x in a.scenarios.split(",") if x.strip()) or turns.SCENARIOS
        await turns.run(
            a.corpus, a.out, config(a), a.trials, a.seed, chosen, cpu_load=a.cpu_load, telephone=a.telephone
        )
    elif a.bench == "answers":
        from voxloop.bench import answers

        await answers.run(a.corpus, a.out, config(a), a.limit, make=a.make_corpus)
    elif a.bench == "faults":
        from voxloop.bench import faults

        corpus = a.corpus or Path(os.environ.get("VOXLOOP_CORPUS", "../shared/corpus"))
        kinds = tuple(x.strip() for x in a.kinds.split(",") if x.strip()) or faults.KINDS
        await faults.run(corpus, a.out, config(a), a.limit, kinds, cpu_load=a.cpu_load)
