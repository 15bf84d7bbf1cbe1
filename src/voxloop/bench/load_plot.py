"""load.png: latency against the number of conversations at once, and what the server spent."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_load(path: Path, rows: list[dict[str, Any]], budget_ms: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["n"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.6, 1]})
    series = (  # the answer last, so it is drawn over the first audio where they are one
        ("llm_ttft_ms", "language model's first token", "C2"),
        ("v2v_ms", "end of speech to first audio (a filler counts)", "C1"),
        ("v2v_answer_ms", "end of speech to the answer", "C0"),
    )
    for key, label, color in series:
        for q, style in (("p50", "-"), ("p95", "--")):
            ys = [r[key][q] for r in rows]
            pts = [(n, y) for n, y in zip(ns, ys, strict=True) if y is not None]
            if pts:
                a1.plot(*zip(*pts, strict=True), style, marker="o", color=color, label=f"{label}, {q}")
    a1.axhline(budget_ms, color="k", lw=1, ls=":", label=f"budget {budget_ms:.0f} ms (answer p95)")
    for r in rows:
        if r["errors"]:
            a1.annotate(f"{r['errors']} error(s)", (r["n"], 0), fontsize=8, ha="center", color="red")
    a1.set_xlabel("conversations at once")
    a1.set_ylabel("milliseconds")
    a1.set_xticks(ns)
    a1.set_title("Latency against load")
    a1.grid(alpha=0.3)
    a1.legend(fontsize=7)
    cpu = [r["cpu_percent"] if r["cpu_percent"] is not None else 0 for r in rows]
    at = list(range(len(ns)))
    a2.bar(at, cpu, color="C3", alpha=0.7)
    a2.set_xticks(at, [str(n) for n in ns])
    a2.set_xlabel("conversations at once")
    a2.set_ylabel("server CPU (100 = one core)")
    a3 = a2.twinx()
    a3.plot(at, [r["rss_mb"] or 0 for r in rows], "k-o", label="peak memory (MB)")
    a3.set_ylabel("peak memory (MB)")
    a3.set_ylim(0, max([r["rss_mb"] or 0 for r in rows] + [1]) * 1.25)
    a2.set_title("What the server spent")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
