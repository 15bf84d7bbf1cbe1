"""What `voxloop bench faults` writes and prints: faults.json's figures, for the whole run and for
each part of the speaker split (bench/split.py), and the tables printed after a run.

    turns, turns_completed, hangs, words_lost, fillers, faults, recovery_ms   the whole run
    parts    part -> turns, turns_completed, hangs, words_lost, fillers, recovery_ms (each kind,
             and "all": every kind's recoveries together); a part with no clip is left out
    voice_first_audio_ms   (when measured) the cloud voice's first audio in the fault-free run:
             path ("socket", "rest") -> p50, p95, p99, max, n; what `tts_hedge_after_s` is
             chosen from
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxloop.bench.split import parts_of


@dataclass
class ClipResult:
    id: str
    kind: str  # "" in the fault-free run
    acted: bool = False
    recovery_ms: float | None = None
    recovered: bool = False
    waited_ms: float | None = None  # of recovery_ms, the stage not asked (faultplan.waited_s)
    completed: bool = False
    hung: bool = False
    heard: str = ""
    reference: str = ""
    words_lost: int = 0
    fillers: int = 0
    retries: int = 0
    fallbacks: int = 0


def _pcts(ms: Sequence[float], qs: Iterable[int] = (50, 95)) -> dict[str, float | int | None]:
    out: dict[str, float | int | None] = {
        f"p{q}": round(float(np.percentile(ms, q)), 1) if len(ms) else None for q in qs
    }
    out["n"] = len(ms)
    return out


def _counts(results: Sequence[ClipResult]) -> dict[str, int]:
    return {
        "turns": len(results),
        "turns_completed": sum(r.completed for r in results),
        "hangs": sum(r.hung for r in results),
        "words_lost": sum(r.words_lost for r in results),
        "fillers": sum(r.fillers for r in results),
    }


def _recovery(results: Sequence[ClipResult], kinds: Sequence[str]) -> dict[str, Any]:
    ms = {
        k: [r.recovery_ms for r in results if r.acted and r.kind == k and r.recovery_ms is not None]
        for k in kinds
    }
    return {k: _pcts(v) for k, v in ms.items()}


def summarise(results: Sequence[ClipResult], kinds: Sequence[str]) -> dict[str, Any]:
    """faults.json's figures (the module's docstring) of the faulted run's `results`."""
    count = Counter(r.kind for r in results if r.acted)
    parts = parts_of([r.id for r in results])
    out: dict[str, Any] = {
        **_counts(results),
        "faults": {k: count[k] for k in kinds},
        "recovery_ms": _recovery(results, kinds),
        "parts": {},
    }
    for part, rows in parts.items():
        if part == "all":
            continue
        mine = [results[i] for i in rows]
        every = [r.recovery_ms for r in mine if r.acted and r.kind in kinds and r.recovery_ms is not None]
        out["parts"][part] = {**_counts(mine), "recovery_ms": {**_recovery(mine, kinds), "all": _pcts(every)}}
    return out


def first_audio(seconds: dict[str, Iterable[float]]) -> dict[str, dict[str, float | int | None]]:
    """path -> p50, p95, p99, max, n of first-audio times given in seconds, in ms."""
    out: dict[str, dict[str, float | int | None]] = {}
    for path, values in seconds.items():
        ms = [1000 * s for s in values]
        out[path] = {**_pcts(ms, (50, 95, 99)), "max": round(max(ms), 1) if ms else None}
    return out


def _ms(x: float | int | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def format_summary(s: dict[str, Any]) -> str:
    lines = [
        f"turns completed {s['turns_completed']}/{s['turns']}, hangs {s['hangs']}, "
        f"words lost {s['words_lost']}, fillers {s['fillers']}",
        f"{'fault':15s} {'n':>3s} {'p50 ms':>8s} {'p95 ms':>8s}",
    ]
    for kind, r in s["recovery_ms"].items():
        lines.append(f"{kind:15s} {r['n']:3d} {_ms(r['p50']):>8s} {_ms(r['p95']):>8s}")
    return "\n".join(lines)


def format_parts(s: dict[str, Any]) -> str:
    """The speaker split: each part's counts, then recovery p50 / p95 (n) per kind and over all."""
    parts: dict[str, Any] = s.get("parts", {})
    if not parts:
        return "speaker split: no clip in either part"
    lines = ["speaker split:"]
    for part, p in parts.items():
        lines.append(
            f"  {part:<10} turns completed {p['turns_completed']}/{p['turns']}, hangs {p['hangs']}, "
            f"words lost {p['words_lost']}, fillers {p['fillers']}"
        )
    lines.append(f"  {'recovery ms':15s}" + "".join(f" {part + ' p50/p95 (n)':>26s}" for part in parts))
    for kind in [*s["recovery_ms"], "all"]:
        cells = []
        for p in parts.values():
            r = p["recovery_ms"][kind]
            cells.append(f" {_ms(r['p50']) + ' / ' + _ms(r['p95']) + ' (' + str(r['n']) + ')':>26s}")
        lines.append(f"  {kind:15s}" + "".join(cells))
    return "\n".join(lines)


def format_first_audio(fa: dict[str, dict[str, float | int | None]], hedge_after_s: float) -> str:
    said = "; ".join(
        f"{path} p50 {_ms(r['p50'])}, p95 {_ms(r['p95'])}, p99 {_ms(r['p99'])}, max {_ms(r['max'])} (n {r['n']})"
        for path, r in fa.items()
    )
    return f"  the cloud voice's first audio (ms): {said}; it is hedged after {1000 * hedge_after_s:.0f}"
