"""`voxloop bench latency`: every stage of every turn, through the full default stack.

Each clip is fed at real-time pace after 0.5 s of silence and followed by silence until the reply
has played. Speech end is an offline label (Silero v6 over the whole clip, threshold 0.5, minimum
silence 100 ms, no padding): `v2v_ms` and `endpoint_ms` run from the moment the frame holding the
last speech sample is fed, so the loop's own endpointing delay is inside them. The same clips then
go through a plain sequential baseline built from the same models.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from voxloop.agent import events as ev
from voxloop.agent.providers import Providers
from voxloop.agent.session import VoiceSession
from voxloop.agent.timeline import STAGES, TurnRecord
from voxloop.bench.corpus import Clip, load_corpus, said_once, speech_bounds, wer
from voxloop.bench.cpuload import CpuLoad
from voxloop.bench.split import parts_of
from voxloop.bench.stats import peak_rss_mb, percentiles, write_csv, write_json
from voxloop.config import AgentConfig
from voxloop.providers.base import Message
from voxloop.transports.timeline import TimelineSink
from voxloop.transports.wav import PacedInput

log = logging.getLogger("voxloop.bench")
LEAD_S = 0.5
BASELINE_SILENCE_MS = 500.0
PATH = (
    "pause",
    "pause_text",
    "llm_request",
    "first_token",
    "tts_request",
    "tts_audio",
    "decided",
    "final",
    "audio_out",
)


@dataclass
class ClipHooks:
    """For benchmarks built on this loop (`bench faults`): each clip's session as it starts, and an
    action `act_at_s` seconds after the labelled speech onset (`act_from_end`: its end), fed at
    real-time pace."""

    on_session: Callable[[VoiceSession], None] | None = None
    act: Callable[[], None] | None = None
    act_at_s: float = 0.0
    act_from_end: bool = False
    whole_reply: bool = False  # the clip is over once its reply has been played to the end


async def stream_clip(
    providers: Providers, config: AgentConfig, clip: Clip, hooks: ClipHooks | None = None
) -> dict[str, Any]:
    hooks = hooks or ClipHooks()
    audio = clip.audio()
    start_s, end_s = speech_bounds(audio)
    sink = TimelineSink(providers.tts.sample_rate)
    session = VoiceSession(providers, sink, config)
    if hooks.on_session is not None:
        hooks.on_session(session)
    dropped: list[ev.Event] = []
    errors: list[ev.Event] = []
    session.subscribe(lambda e: dropped.append(e) if isinstance(e, ev.TurnDropped) else None)
    session.subscribe(lambda e: errors.append(e) if isinstance(e, ev.ErrorOccurred) else None)
    loop = asyncio.get_running_loop()
    speech: list[tuple[ev.AgentSpeech, float]] = []  # what the agent began to say, and when
    session.subscribe(lambda e: speech.append((e, loop.time())) if isinstance(e, ev.AgentSpeech) else None)
    mic = PacedInput(session)
    lead = int(LEAD_S * mic.rate)
    t0 = asyncio.get_running_loop().time()
    fillers = (config.turn.filler_text, config.turn.retry_filler_text)
    try:
        fed = np.concatenate([np.zeros(lead, np.float32), audio])
        at = (end_s if hooks.act_from_end else start_s) + hooks.act_at_s
        cut = len(fed) if hooks.act is None else min(len(fed), lead + int(at * mic.rate))
        await mic.feed(fed[:cut])
        if hooks.act is not None:
            hooks.act()
        await mic.feed(fed[cut:])
        fed_end = mic.seconds
        t_end = mic.fed_at(lead + int(end_s * mic.rate) - 1)

        def answered() -> bool:  # the answer to the whole clip has begun: its latency is known
            cur = session.current_turn
            if cur is not None and cur.marks.get("decided", 0) >= t_end and _answer_began(cur.turn_id):
                return not hooks.whole_reply or (session.idle and not sink.busy())
            return mic.seconds > fed_end + 1.0 and session.idle and not sink.busy()

        def _answer_began(turn_id: int) -> bool:  # its words, not only a filler
            return any(e.turn_id == turn_id and e.text not in fillers for e, _ in speech)

        # a bound against a hang only: a stalled stage ends the turn with an error event sooner
        hung = not await mic.silence_until(answered, max_s=60)
    finally:
        await session.aclose()
    t_label = mic.fed_at(lead + int(end_s * mic.rate) - 1)
    recs = session.records
    after = [r for r in recs if r.marks.get("decided", 0) >= t_label]
    answer = after[0] if after else (recs[-1] if recs else None)
    row: dict[str, Any] = {
        "id": clip.id,
        "speech_end_s": round(end_s, 3),
        "hung": hung,  # neither answered nor idle 60 s after the clip
        "turns": len(recs),
        "dropped": len(dropped),
        "errors": len(errors),
        "cutoffs": sum(1 for r in recs if r.marks.get("decided", 0) < t_label),
        # turns whose voice was actually heard while the speaker was still talking (audio held by a
        # paused speaker, then dropped on interruption, was never heard), and for how long
        "talked_over": _heard_before(recs, sink, t_label),
        "talked_over_s": round(float(np.count_nonzero(sink.played_audio(t0, t_label))) / sink.sample_rate, 2),
        "user_text": said_once((r.user_text, r.revises) for r in recs),
        "agent_text": answer.agent_text if answer else "",
    }
    m = answer.marks if answer else {}
    row["filler"] = "filler" in m  # the answer began with "One moment." (no LLM token in time)
    row["endpoint_ms"] = _ms(m.get("decided"), t_label)
    row["v2v_ms"] = _ms(m.get("audio_out"), t_label)
    # the answer itself (after the filler, if one was said)
    words = [t for e, t in speech if answer and e.turn_id == answer.turn_id and e.text not in fillers]
    row["v2v_answer_ms"] = _ms(words[0], t_label) if words else None
    for k in ("stt_final_ms", "llm_ttft_ms", "tts_first_audio_ms"):
        row[k] = getattr(answer, k) if answer else None
    # the critical path, each step in ms after the labelled speech end (turns.csv only)
    for name in PATH:
        row[f"at_{name}_ms"] = _ms(m.get(name), t_label)
    return row


def _heard_before(recs: list[TurnRecord], sink: TimelineSink, t_label: float) -> int:
    """How many turns' replies had samples played before `t_label`."""
    starts = sorted(r.marks["decided"] for r in recs if "decided" in r.marks)
    heard = {max((d for d in starts if d <= p.start), default=None) for p in sink.placed if p.start < t_label}
    return len(heard - {None})


def _ms(t: float | None, t0: float) -> float | None:
    return None if t is None else round((t - t0) * 1000, 1)


async def baseline_clip(providers: Providers, config: AgentConfig, clip: Clip) -> dict[str, Any]:
    """Fixed 500 ms silence, whole-utterance transcription, the whole reply, all of it synthesised."""
    audio = clip.audio()
    t0 = time.perf_counter()
    text = (await providers.stt.transcribe(audio)).text
    t1 = time.perf_counter()
    msgs = [Message("system", config.llm.system_prompt), Message("user", text)]
    reply = "".join([p async for p in providers.llm.stream(msgs)])
    t2 = time.perf_counter()
    _ = [a async for a in providers.tts.synthesize(reply or "Okay.")]
    t3 = time.perf_counter()
    return {
        "id": clip.id,
        "offline_text": text,
        "stt_ms": round((t1 - t0) * 1000, 1),
        "llm_ms": round((t2 - t1) * 1000, 1),
        "tts_ms": round((t3 - t2) * 1000, 1),
        "v2v_ms": round(BASELINE_SILENCE_MS + (t3 - t0) * 1000, 1),
    }


async def run(
    corpus: Path,
    out: Path,
    config: AgentConfig,
    limit: int | None = None,
    baseline: bool = True,
    cpu_load: int = 0,
) -> dict[str, Any]:
    """`cpu_load`: busy processes (`bench.cpuload`) beside the loop from the warm-up to the end."""
    clips = load_corpus(corpus, limit)
    providers = Providers.from_config(config)
    await providers.load()
    try:
        with CpuLoad(cpu_load) as load:
            log.info("warming up on %s", clips[0].id)
            await stream_clip(providers, config, clips[0])
            rows = []
            bar = tqdm(clips, desc="streaming turns", unit="clip")
            for clip in bar:
                row = await stream_clip(providers, config, clip)
                rows.append(row)
                bar.set_postfix(v2v=f"{row['v2v_ms']} ms")
            base = []
            if baseline:
                for clip in tqdm(clips, desc="sequential baseline", unit="clip"):
                    base.append(await baseline_clip(providers, config, clip))
    finally:
        await providers.aclose()
    result = summarise(rows, base, clips, config)
    result["cpu_load"] = load.report()
    write_json(out / "latency.json", result)
    merged = [
        {**r, **{f"baseline_{k}": v for k, v in b.items() if k != "id"}}
        for r, b in zip(rows, base or [{}] * len(rows), strict=True)
    ]
    write_csv(out / "turns.csv", merged)
    from voxloop.bench.plot import plot_latency

    plot_latency(out / "latency.png", rows, base)
    print(format_table(result))
    return result


def summarise(
    rows: list[dict[str, Any]], base: list[dict[str, Any]], clips: list[Clip], config: AgentConfig
) -> dict[str, Any]:
    res: dict[str, Any] = {"n": len(rows)}
    for k in (*STAGES, "v2v_answer_ms"):
        res[k] = percentiles([r[k] for r in rows if r.get(k) is not None])
    res["no_reply"] = sum(1 for r in rows if r["v2v_ms"] is None)
    res["no_answer"] = sum(1 for r in rows if r["v2v_answer_ms"] is None)  # a filler at most
    res["fillers"] = sum(1 for r in rows if r["filler"])
    res["errors"] = sum(r["errors"] for r in rows)
    res["cutoffs"] = sum(r["cutoffs"] for r in rows)
    res["talked_over"] = sum(r["talked_over"] for r in rows)
    res["talked_over_s"] = round(sum(r["talked_over_s"] for r in rows), 2)
    res["streaming_wer"] = round(wer([c.transcript for c in clips], [r["user_text"] for r in rows]), 4)
    if base:
        res["baseline"] = {
            "v2v_ms": percentiles([b["v2v_ms"] for b in base]),
            "stt_ms": percentiles([b["stt_ms"] for b in base]),
            "llm_ms": percentiles([b["llm_ms"] for b in base]),
            "tts_ms": percentiles([b["tts_ms"] for b in base]),
        }
        res["offline_wer"] = round(wer([c.transcript for c in clips], [b["offline_text"] for b in base]), 4)
        res["speedup_p50"] = round(res["baseline"]["v2v_ms"]["p50"] / res["v2v_ms"]["p50"], 2)
    # each part of the speaker split (bench/split.py): tuned on one, judged on the other
    parts = parts_of([r["id"] for r in rows])
    refs = {c.id: c.transcript for c in clips}
    res["parts"] = {p: _part(rows, idx, refs) for p, idx in parts.items() if p != "all"}
    res["peak_rss_mb"] = peak_rss_mb()
    res["config"] = asdict(config)
    res["config"]["llm"].pop("system_prompt", None)
    return res


def _part(rows: list[dict[str, Any]], idx: list[int], refs: dict[str, str]) -> dict[str, Any]:
    sel = [rows[i] for i in idx]
    out: dict[str, Any] = {"n": len(sel)}
    for k in ("v2v_ms", "v2v_answer_ms", "endpoint_ms", "llm_ttft_ms"):
        out[k] = percentiles([r[k] for r in sel if r.get(k) is not None])
    for k in ("fillers", "cutoffs"):
        out[k] = sum(int(r["filler" if k == "fillers" else k]) for r in sel)
    out["no_reply"] = sum(1 for r in sel if r["v2v_ms"] is None)
    out["streaming_wer"] = round(wer([refs[r["id"]] for r in sel], [r["user_text"] for r in sel]), 4)
    return out


def format_table(res: dict[str, Any]) -> str:
    lines = [f"latency over {res['n']} turns (ms)", f"{'stage':22s} {'p50':>8s} {'p95':>8s} {'max':>8s}"]
    for k in (*STAGES, "v2v_answer_ms"):
        p = res[k]
        lines.append(f"{k:22s} {p['p50']:8.0f} {p['p95']:8.0f} {p['max']:8.0f}")
    if "baseline" in res:
        p = res["baseline"]["v2v_ms"]
        lines.append(f"{'baseline v2v_ms':22s} {p['p50']:8.0f} {p['p95']:8.0f} {p['max']:8.0f}")
        lines.append(f"speed-up (baseline p50 / v2v p50): {res['speedup_p50']}x")
    for name, part in res.get("parts", {}).items():
        v = part["v2v_ms"]
        lines.append(
            f"{name + ' part':11s} {part['n']:>3d} clips: v2v p50 {v['p50']:.0f} / p95 {v['p95']:.0f} ms, "
            f"{part['fillers']} fillers, {part['cutoffs']} decided early, {part['no_reply']} no reply, "
            f"streaming WER {part['streaming_wer']:.3f}"
        )
    if res.get("cpu_load", {}).get("processes"):
        c = res["cpu_load"]
        lines.append(f"with {c['processes']} busy process(es) beside it ({c['cores_used']} cores used)")
    lines.append(
        f"cut-offs: {res['cutoffs']} decided early, {res['talked_over']} spoken over "
        f"({res['talked_over_s']:.1f} s of voice)   "
        f"no reply: {res['no_reply']}   no answer: {res['no_answer']}   fillers: {res['fillers']}   "
        f"errors: {res['errors']}   "
        f"streaming WER {res['streaming_wer']:.3f}"
        + (f"   offline WER {res['offline_wer']:.3f}" if "offline_wer" in res else "")
        + f"   peak RSS {res['peak_rss_mb']:.0f} MB"
    )
    return "\n".join(lines)
