"""Two or more `bench latency` runs side by side: where each turn's time went, and run against run.

Reads each run's `turns.csv` (the `--out` folder). Prints, per run, the p50 / p95 of every stage
(ms after the labelled speech end: the pause heard, its transcript, the LLM's first token, the first
TTS request and its audio, the turn decided, the voice), the turns decided after their answer was
ready, and the cut-offs. With two runs or more, every later run is also compared with the first
clip by clip: the median difference and how many clips came sooner. One run's p50 moves by tens of
ms from run to run on this machine; the paired figures show a change more clearly than the p50s.

    .venv/bin/python benchmarks/compare_latency.py OUT_BEFORE OUT_AFTER [...]
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from voxloop.bench.stats import percentiles

STAGES = [
    ("pause heard", "at_pause_ms"),
    ("its transcript", "at_pause_text_ms"),
    ("first token", "at_first_token_ms"),
    ("first TTS request", "at_tts_request_ms"),
    ("its audio", "at_tts_audio_ms"),
    ("turn decided", "at_decided_ms"),
    ("voice (v2v)", "v2v_ms"),
    ("answer (v2v_answer)", "v2v_answer_ms"),
]
PAIRED = ["at_pause_text_ms", "at_first_token_ms", "at_tts_audio_ms", "v2v_answer_ms"]


def load(folder: Path) -> dict[str, dict[str, str]]:
    path = folder / "turns.csv"
    if not path.is_file():
        raise SystemExit(f"no turns.csv in {folder}: give the --out folder of a `voxloop bench latency` run")
    with open(path, newline="") as f:
        return {row["id"]: row for row in csv.DictReader(f)}


def values(rows: dict[str, dict[str, str]], col: str) -> list[float]:
    return [float(r[col]) for r in rows.values() if r.get(col)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "runs", nargs="+", type=Path, help="`bench latency --out` folders; the first is the reference"
    )
    a = ap.parse_args()
    runs = [(p.name, load(p)) for p in a.runs]
    width = max(24, *(len(n) + 2 for n, _ in runs))
    print("ms after the speech end".ljust(22) + "".join(n.rjust(width) for n, _ in runs))
    for label, col in STAGES:
        cells = []
        for _, rows in runs:
            v = values(rows, col)
            p = percentiles(v)
            cells.append(f"p50 {p['p50']:5.0f} p95 {p['p95']:5.0f}" if v else "-")
        print(label.ljust(22) + "".join(c.rjust(width) for c in cells))
    for name, rows in runs:
        late = sum(
            1
            for r in rows.values()
            if r.get("at_decided_ms")
            and r.get("at_tts_audio_ms")
            and float(r["at_decided_ms"]) > float(r["at_tts_audio_ms"]) + 5
        )
        cut = sum(int(r["cutoffs"]) for r in rows.values() if r.get("cutoffs"))
        print(f"{name}: {len(rows)} clips, {late} decided after their answer was ready, {cut} decided early")
    ref_name, ref = runs[0]
    for name, rows in runs[1:]:
        for col in PAIRED:
            diffs = [
                float(rows[k][col]) - float(ref[k][col])
                for k in ref
                if k in rows and ref[k].get(col) and rows[k].get(col)
            ]
            if diffs:
                sooner = sum(d < 0 for d in diffs)
                print(
                    f"{name} against {ref_name}, {col}: median {statistics.median(diffs):+.0f} ms, "
                    f"sooner in {sooner} of {len(diffs)} clips"
                )


if __name__ == "__main__":
    main()
