"""`voxloop bench load`: N conversations at once against a running server, for each N asked.

Every conversation is a caller of bench/load_client.py (corpus clips at real-time pace, one turn
each, its answer played and reported like a well-behaved client); callers start `stagger_s`
apart, each with its own clips. For each N, OUT/load.json gets

    {"n", "turns", "errors", "v2v_ms", "v2v_answer_ms", "llm_ttft_ms", "cpu_percent", "rss_mb", "parts"}

`turns`: answered turns; `errors`: error events, callers refused or cut off, answers that never
came, clips heard as nothing; the latencies (p50, p95, max) are the server's timelines of the
answered turns: `v2v_ms` to the first audio, `v2v_answer_ms` to the answer's first audio (a filler
is not the answer), `llm_ttft_ms` the model's first token; `cpu_percent` (100 = one core) and
`rss_mb` (peak) of the server process and its children over the run. OUT/load_turns.jsonl has a
row per turn (with the client's own view of the answer's latency) and OUT/load.png the
latencies against N. `parts` has the turns and latencies again for each part of the speaker
split (`bench.split`) the clips came from: {"tuning": {"turns", "dropped", "v2v_ms", ...}, ...}
(a caller's own errors, such as a refusal, belong to no clip and are only in `errors`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from itertools import zip_longest
from pathlib import Path
from typing import Any

from voxloop.bench.corpus import Clip, load_corpus, speech_bounds
from voxloop.bench.load_client import RATE, Caller, CallResult, Turn
from voxloop.bench.load_server import Usage, find_pid
from voxloop.bench.split import PARTS, by_part, part_of
from voxloop.bench.stats import percentiles, write_json
from voxloop.errors import VoxloopError

log = logging.getLogger("voxloop.bench")
BUDGET_MS = 1500.0  # the target: v2v_answer_ms p95 within this with 2 conversations


def choose_clips(clips: list[Clip], max_clip_s: float, need: int) -> list[tuple[Clip, float]]:
    """Up to `need` clips short enough, each with its labelled speech end (Silero, as bench
    latency labels it; without faster-whisper, the clip's end). The parts of the speaker split
    take turns, so that a short run hears both."""
    try:
        import faster_whisper  # noqa: F401  (speech_bounds runs its Silero VAD)
    except ImportError:
        log.warning("no faster-whisper: each clip's speech is taken to end with the clip")
        labelled = False
    else:
        labelled = True
    chosen = []
    for clip in alternating(clips):
        audio = clip.audio()
        if len(audio) / RATE <= max_clip_s:
            chosen.append((clip, speech_bounds(audio)[1] if labelled else len(audio) / RATE))
        if len(chosen) == need:
            break
    if not chosen:
        raise VoxloopError(f"no clip of the corpus is {max_clip_s:g} s or shorter", "raise --max-clip-s")
    return chosen


def alternating(clips: Sequence[Clip]) -> list[Clip]:
    """The clips with the parts taking turns (tuning, validation, tuning, ...), each in its order."""
    parts = [p for p in by_part(clips).values() if p]
    return [c for group in zip_longest(*parts) for c in group if c is not None]


def summarize(
    n: int, results: Sequence[CallResult], cpu_percent: float | None, rss_mb: float | None
) -> dict[str, Any]:
    turns = [t for r in results for t in r.turns]
    whole = _figures(turns)
    dropped = whole.pop("dropped")
    parts = {p: _figures(mine) for p in PARTS if (mine := [t for t in turns if part_of(t.clip) == p])}
    return {
        "n": n,
        **whole,
        "errors": sum(len(r.errors) for r in results) + dropped,
        "cpu_percent": cpu_percent,
        "rss_mb": rss_mb,
        "parts": parts,
    }


def _figures(turns: Sequence[Turn]) -> dict[str, Any]:
    """Answered and dropped turns, and the latencies (p50, p95, max) of the answered ones."""
    records = [t.record for t in turns if t.record is not None]

    def stat(key: str) -> dict[str, float | None]:
        p = percentiles([float(x[key]) for x in records if x.get(key) is not None])
        return {k: None if v != v else v for k, v in p.items()}  # no value: null, not NaN

    return {
        "turns": len(records),
        "dropped": sum(1 for t in turns if t.error.startswith("dropped")),
        **{key: stat(key) for key in ("v2v_ms", "v2v_answer_ms", "llm_ttft_ms")},
    }


async def one_level(
    url: str, n: int, clips: list[tuple[Clip, float]], turns: int, key: str, stagger_s: float
) -> list[CallResult]:
    """N callers at once, `stagger_s` apart, each with `turns` clips of its own."""

    async def call(i: int) -> CallResult:
        await asyncio.sleep(i * stagger_s)  # callers arrive a little apart, as people do
        mine = [clips[(i * turns + j) % len(clips)] for j in range(turns)]
        log.info("caller %d of %d: calling with %d clip(s)", i + 1, n, len(mine))
        return await Caller(url, i + 1, mine, key).run()

    return list(await asyncio.gather(*(call(i) for i in range(n))))


async def run(
    url: str,
    levels: Sequence[int],
    corpus: Path,
    out: Path,
    *,
    turns: int = 3,
    key: str = "",
    server_pid: int | None = None,
    stagger_s: float = 1.0,
    max_clip_s: float = 10.0,
) -> dict[str, Any]:
    clips = await asyncio.to_thread(
        lambda: choose_clips(load_corpus(corpus), max_clip_s, max(levels) * turns)
    )
    pid = server_pid if server_pid is not None else await asyncio.to_thread(find_pid, url, key)
    if pid is None:
        log.warning("the server's process is unknown (give --server-pid): no CPU or memory figures")
    log.info("bench load: %s, %s conversation(s) at once, %d turn(s) each", url, levels, turns)
    rows, lines = [], []
    for n in levels:
        log.info("-- %d conversation(s) at once --", n)
        async with Usage(pid) as usage:
            results = await one_level(url, n, clips, turns, key, stagger_s)
        row = summarize(n, results, usage.cpu_percent, usage.rss_mb)
        rows.append(row)
        lines += [_turn_line(n, t) for r in results for t in r.turns]
        log.info(
            "%d at once: %d turn(s), %d error(s); answer p50 %s / p95 %s ms (first audio p95 %s ms, "
            "first token p95 %s ms); server CPU %s%%, memory %s MB",
            n,
            row["turns"],
            row["errors"],
            row["v2v_answer_ms"]["p50"],
            row["v2v_answer_ms"]["p95"],
            row["v2v_ms"]["p95"],
            row["llm_ttft_ms"]["p95"],
            row["cpu_percent"],
            row["rss_mb"],
        )
        for part, fig in row["parts"].items():
            log.info(
                "  %s part: %d turn(s), %d dropped; answer p50 %s / p95 %s ms",
                part,
                fig["turns"],
                fig["dropped"],
                fig["v2v_answer_ms"]["p50"],
                fig["v2v_answer_ms"]["p95"],
            )
        for r in results:
            for e in r.errors:
                log.info("  caller %d: %s", r.session, e)
    report = {"sessions": rows}
    await asyncio.to_thread(write_files, out, report, lines)
    fits = [r["n"] for r in rows if within_budget(r)]
    log.info(
        "the most conversations at once answered within %.0f ms (p95) without errors: %s",
        BUDGET_MS,
        max(fits) if fits else "none of those tried",
    )
    log.info("wrote %s, %s and load.png", out / "load.json", out / "load_turns.jsonl")
    return report


def within_budget(row: dict[str, Any], budget_ms: float = BUDGET_MS) -> bool:
    p95 = row["v2v_answer_ms"]["p95"]
    return row["errors"] == 0 and row["turns"] > 0 and p95 is not None and p95 <= budget_ms


def write_files(out: Path, report: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    write_json(out / "load.json", report)
    (out / "load_turns.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    try:
        from voxloop.bench.load_plot import plot_load

        plot_load(out / "load.png", report["sessions"], BUDGET_MS)
    except ImportError:
        log.warning("no matplotlib: load.png not drawn (pip install 'voxloop[bench]')")


def _turn_line(n: int, t: Any) -> dict[str, Any]:
    rec = t.record or {}
    keys = ("turn_id", "user_text", "agent_text", "v2v_ms", "v2v_answer_ms", "llm_ttft_ms", "fillers")
    return {
        "n": n,
        "session": t.session,
        "clip": t.clip,
        **{k: rec.get(k) for k in keys},
        "client_v2v_answer_ms": t.client_v2v_answer_ms,
        "error": t.error,
    }
