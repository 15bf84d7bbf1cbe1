"""latency.png: the stage distributions and the voice-to-voice distribution, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from voxloop.agent.timeline import STAGES


def plot_latency(path: Path, rows: list[dict[str, Any]], base: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.2, 1]})
    data = [[r[k] for r in rows if r.get(k) is not None] for k in STAGES]
    labels = [k.removesuffix("_ms").replace("_", " ") for k in STAGES]
    a1.boxplot(data, vert=False, tick_labels=labels, showfliers=True)
    for i, d in enumerate(data, 1):
        if d:
            a1.annotate(f"p50 {np.median(d):.0f}", (float(np.median(d)), i + 0.3), fontsize=8, ha="center")
    a1.set_xlabel("milliseconds")
    a1.set_title("Per-stage latency (each box: one stage over all turns)")
    a1.grid(axis="x", alpha=0.3)
    v2v = [r["v2v_ms"] for r in rows if r.get("v2v_ms") is not None]
    bins = np.linspace(0, max([*v2v, *[b["v2v_ms"] for b in base], 1000]) * 1.05, 30)
    a2.hist(v2v, bins=bins, alpha=0.75, label=f"voxloop (p50 {np.median(v2v):.0f} ms)" if v2v else "voxloop")
    if base:
        bv = [b["v2v_ms"] for b in base]
        a2.hist(bv, bins=bins, alpha=0.55, label=f"sequential baseline (p50 {np.median(bv):.0f} ms)")
    for q, style in ((50, "-"), (95, "--")):
        if v2v:
            a2.axvline(float(np.percentile(v2v, q)), color="k", ls=style, lw=1, label=f"voxloop p{q}")
    a2.set_xlabel("voice-to-voice: end of speech to first audio (ms)")
    a2.set_ylabel("turns")
    a2.set_title(f"Voice-to-voice over {len(v2v)} turns")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
