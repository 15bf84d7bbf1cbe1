"""`voxloop bench faults`: a conversation through the cloud providers while their endpoints fail.

A local voxloop server with the real models stands in for Deepgram and OpenAI; a session with
`--stt deepgram,whisper --llm openai,llama --tts deepgram,hibari` talks to it through fault
injectors (bench/faultrig.py). The same corpus clips go through twice, each clip fed at real-time
pace by the loop of `bench latency` (`stream_clip`): first with no fault (the reference
transcripts), then with one fault per clip, the kinds in turn (bench/faultplan.py). Writes
OUT/faults.json:

    turns            clips fed (each one user turn)
    turns_completed  clips the agent began to answer
    hangs            clips neither answered nor idle 60 s after they ended
    words_lost       words of the fault-free run's transcripts missing from the faulted run's
                     (deleted by a minimum-edit alignment; a word heard differently is not lost)
    fillers          fillers said in the faulted run ("One moment.", "Give me a second.")
    faults           kind -> how many acted (met a request)
    recovery_ms      kind -> p50, p95, n: from the fault acting to the stage's next result (a
                     stage that gave nothing more in its clip counts until the clip's end)
    parts            the same counts and recoveries for each part of the speaker split
                     (bench/split.py), recoveries also over all kinds (bench/faultsummary.py)
    voice_first_audio_ms  the cloud voice's first audio in the fault-free run, per path

and OUT/clips.csv, a row per clip of both runs. Targets: every turn completes, no hang, no word
lost, recovery p95 under 2 s for every kind.
"""

from __future__ import annotations

import copy
import itertools
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from voxloop.agent.session import VoiceSession
from voxloop.bench.corpus import Clip, alignment, load_corpus, normalize
from voxloop.bench.cpuload import CpuLoad
from voxloop.bench.faultplan import KINDS, Injection
from voxloop.bench.faultrig import Rig, rig
from voxloop.bench.faultsummary import (
    ClipResult,
    first_audio,
    format_first_audio,
    format_parts,
    format_summary,
    summarise,
)
from voxloop.bench.latency import ClipHooks, stream_clip
from voxloop.bench.stats import write_csv, write_json
from voxloop.config import AgentConfig
from voxloop.errors import VoxloopError

log = logging.getLogger("voxloop.bench")
DEFAULT_CLIPS = 16  # each kind twice
MIN_S, MAX_S = 3.5, 9.0  # clips long enough for a mid-speech fault, short enough to be one turn


def lost_words(reference: str, heard: str) -> int:
    """Words of `reference` that a minimum-edit alignment of `heard` deletes."""
    return sum(op == "del" for op in alignment(normalize(reference), normalize(heard)))


def pick_clips(clips: list[Clip], limit: int | None) -> list[Clip]:
    """Clips of MIN_S to MAX_S (all of them when none is that long), a speaker at a time in turn."""
    fit = [c for c in clips if MIN_S * 16000 <= len(c.audio()) <= MAX_S * 16000] or clips
    by: dict[str, list[Clip]] = {}
    for c in fit:
        by.setdefault(c.id.split("-")[0].split("_")[0], []).append(c)
    mixed = [c for row in itertools.zip_longest(*by.values()) for c in row if c is not None]
    return mixed[:limit] if limit else mixed


async def _clip(r: Rig, config: AgentConfig, clip: Clip, kind: str) -> ClipResult:
    sessions: list[VoiceSession] = []
    inj = Injection(kind, r) if kind else None
    hooks = ClipHooks(on_session=sessions.append, whole_reply=True)
    if inj is not None:  # the recogniser's faults mid-speech, the others as the last turn ends
        hooks.act, hooks.act_at_s, hooks.act_from_end = inj.arm, inj.at_s, not inj.mid_speech
    try:
        row = await stream_clip(r.providers, config, clip, hooks)
    finally:
        end = r.log.now()
        if inj is not None:
            await inj.undo()
    if down := r.down():  # each clip's fault on its own: the chains back on their first member
        waited = await r.settle()
        still = r.down()
        print(
            f"    waited {waited:.1f} s for {', '.join(down)} to come back"
            + (f"; still down: {', '.join(still)}" if still else ""),
            flush=True,
        )
    recs = sessions[0].records if sessions else []
    res = ClipResult(clip.id, kind, hung=row["hung"], heard=row["user_text"])
    res.completed = row["v2v_answer_ms"] is not None and not row["hung"]
    res.fillers = sum(x.fillers for x in recs)
    res.retries, res.fallbacks = sum(x.retries for x in recs), sum(x.fallbacks for x in recs)
    if inj is not None and (t := inj.acted_at()) is not None:
        res.acted = True
        took = inj.recovery_s()
        res.recovered = took is not None
        res.recovery_ms = round(1000 * (took if took is not None else end - t), 1)
        if (idle := inj.waited_s()) is not None:
            res.waited_ms = round(1000 * idle, 1)
    return res


def _say(res: ClipResult, i: int, n: int) -> str:
    what = "answered" if res.completed else "HUNG" if res.hung else "NOT answered"
    line = f"  clip {i}/{n} {res.id}: {what}; heard {len(normalize(res.heard))} words"
    if res.kind:
        if not res.acted:
            line += f"; {res.kind} never met a request"
        elif res.recovered:
            line += f"; {res.kind}: the stage worked again after {res.recovery_ms:.0f} ms"
            if res.waited_ms:
                line += f" (not asked for the first {res.waited_ms:.0f} ms)"
        else:
            line += f"; {res.kind}: the stage gave nothing more in {res.recovery_ms:.0f} ms"
        if res.words_lost:
            line += f"; {res.words_lost} words lost"
    if res.retries or res.fallbacks or res.fillers:
        line += f" ({res.retries} retries, {res.fallbacks} fallbacks, {res.fillers} fillers)"
    return line


async def run(
    corpus: Path,
    out: Path,
    config: AgentConfig,
    limit: int | None = None,
    kinds: tuple[str, ...] = KINDS,
    cpu_load: int = 0,
) -> dict[str, Any]:
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise VoxloopError(f"unknown fault kind(s): {', '.join(unknown)}", f"choose from {', '.join(KINDS)}")
    clips = pick_clips(load_corpus(corpus), limit or DEFAULT_CLIPS)
    cfg = copy.deepcopy(config)
    cfg.turn.speculate = False  # each reply starts at its turn's end: a fault meets the one it needs
    print(f"bench faults: {len(clips)} clips, faults {', '.join(kinds)}; starting a local server", flush=True)
    with CpuLoad(cpu_load):
        async with rig(config) as r:
            print("the fault-free run (the reference transcripts):", flush=True)
            ref: list[ClipResult] = []
            for i, clip in enumerate(clips, 1):
                ref.append(await _clip(r, cfg, clip, ""))
                print(_say(ref[-1], i, len(clips)), flush=True)
            print(_recogniser(r, "the fault-free run"), flush=True)
            voice = r.chains[2].members[0] if len(r.chains) > 2 else None
            fa = first_audio(getattr(voice, "first_audio_s", {}))
            hedge_after_s = float(getattr(getattr(voice, "dg", None), "tts_hedge_after_s", 0.0))
            print(format_first_audio(fa, hedge_after_s), flush=True)
            print("the run with faults:", flush=True)
            got: list[ClipResult] = []
            for i, clip in enumerate(clips, 1):
                res = await _clip(r, cfg, clip, kinds[(i - 1) % len(kinds)])
                res.reference = ref[i - 1].heard
                res.words_lost = lost_words(res.reference, res.heard)
                got.append(res)
                print(_say(res, i, len(clips)), flush=True)
            print(_recogniser(r, "both runs"), flush=True)
    summary = {**summarise(got, kinds), "voice_first_audio_ms": fa}
    write_json(out / "faults.json", summary)
    write_csv(
        out / "clips.csv",
        [{"run": "reference", **asdict(x)} for x in ref] + [{"run": "faults", **asdict(x)} for x in got],
    )
    print(format_summary(summary))
    print(format_parts(summary))
    return summary


def _recogniser(r: Rig, when: str) -> str:
    """What the cloud recogniser's recovery did so far (hedges, stalls, reconnects), in words."""
    counters = getattr(r.chains[0].members[0], "counters", {}) if r.chains else {}
    keys = (
        "hedge",
        "hedge_won",
        "hedge_lost",
        "hedge_failed",
        "hedge_took_over",
        "stall_speech",
        "reconnect",
    )
    said = ", ".join(f"{k} {counters.get(k, 0)}" for k in keys)
    return f"  the recogniser's recovery in {when}: {said}"
