"""The per-turn latency timeline: one record per turn, as written to turns.jsonl.

All stage times are measured on the session clock:
  speech end (the frame holding the last speech sample is fed)
  -> turn decided            endpoint_ms
  -> final transcript        stt_final_ms
  -> first LLM token         llm_ttft_ms (from the request to the LLM)
  -> first TTS audio         tts_first_audio_ms (from the first text sent to TTS)
  -> first sample out        v2v_ms (from speech end)
  -> the answer's first sample  v2v_answer_ms (from speech end; a filler said first is not the answer)
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

STAGES = ("endpoint_ms", "stt_final_ms", "llm_ttft_ms", "tts_first_audio_ms", "v2v_ms")


@dataclass
class TurnRecord:
    turn_id: int
    user_text: str = ""
    revises: str = ""  # the last turn's words, which `user_text` holds heard again (the user had paused)
    agent_text: str = ""
    speech_end_s: float = 0.0
    endpoint_ms: float | None = None
    stt_final_ms: float | None = None
    llm_ttft_ms: float | None = None
    tts_first_audio_ms: float | None = None
    v2v_ms: float | None = None
    v2v_answer_ms: float | None = None  # to the first audio of the answer itself (a filler does not count)
    interrupted: bool = False
    # recovery in this turn: provider requests tried again, moves to the next provider of a
    # fallback chain, fillers said while waiting ("One moment.", "Give me a second.")
    retries: int = 0
    fallbacks: int = 0
    fillers: int = 0
    # the tools called in this turn, in order: {name, arguments, ok, result, error, ms}
    tools: list[dict[str, Any]] = field(default_factory=list)
    # what happened in this turn, in order: {"type", "t" (session seconds), and the event's fields}
    events: list[dict[str, Any]] = field(default_factory=list)
    # session-clock stamps the figures above are derived from (not written to turns.jsonl)
    marks: dict[str, float] = field(default_factory=dict, repr=False)

    def mark(self, name: str, t: float) -> None:
        self.marks.setdefault(name, t)

    def forget(self, *names: str) -> None:
        for n in names:
            self.marks.pop(n, None)

    def finish(self) -> None:
        m = self.marks

        def span(a: str, b: str) -> float | None:
            return round((m[b] - m[a]) * 1000, 1) if a in m and b in m else None

        self.endpoint_ms = span("speech_end", "decided")
        self.stt_final_ms = span("decided", "final")
        self.llm_ttft_ms = span("llm_request", "first_token")
        self.tts_first_audio_ms = span("tts_request", "tts_audio")
        self.v2v_ms = span("speech_end", "audio_out")
        self.v2v_answer_ms = span("speech_end", "answer_out")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("marks")
        return d

    def log_line(self) -> str:
        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f} ms"

        return (
            f"turn {self.turn_id}: user said {self.user_text!r} (speech ended at {self.speech_end_s:.2f} s) | "
            f"endpoint {f(self.endpoint_ms)} | stt final {f(self.stt_final_ms)} | "
            f"llm first token {f(self.llm_ttft_ms)} | tts first audio {f(self.tts_first_audio_ms)} | "
            f"voice-to-voice {f(self.v2v_ms)}"
            + (" | interrupted" if self.interrupted else "")
            + f" | agent: {self.agent_text!r}"
        )


def summary(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """median and max of each stage over the turns that have it."""
    out: dict[str, dict[str, float]] = {}
    for k in STAGES:
        vals = [r[k] for r in records if r.get(k) is not None]
        if vals:
            out[k] = {"median": round(statistics.median(vals), 1), "max": round(max(vals), 1), "n": len(vals)}
    return out


def table(records: list[dict[str, Any]]) -> str:
    """A fixed-width table of the turns and their stage times, with median and max rows."""
    heads = ["turn", "endpoint", "stt final", "llm ttft", "tts 1st", "v2v", "user -> agent"]
    rows = []
    for r in records:
        cells = [str(r["turn_id"])] + [_ms(r.get(k)) for k in STAGES]
        text = f"{r['user_text']!s} -> {r['agent_text']!s}"
        rows.append([*cells, text if len(text) <= 70 else text[:67] + "..."])
    s = summary(records)
    for label in ("median", "max"):
        rows.append([label] + [_ms(s.get(k, {}).get(label)) for k in STAGES] + [""])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(heads)]
    line = "  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))
    body = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join([line, "-" * len(line), *body])


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} ms"
