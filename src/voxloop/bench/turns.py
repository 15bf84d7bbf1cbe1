"""`voxloop bench turns`: barge-in, echo and noise scenarios through the full default stack.

Every trial is one short conversation fed at real-time pace. The caller (the demo's second voice)
asks for something long; once the agent's voice has played for a random 0.3-1.5 s, one of:
  interrupt       a corpus clip (real speech, at most 2.5 s) talks over the agent
  echo            nothing but the agent's own voice coming back into the microphone, delayed
                  20-200 ms at -20 to -6 dB, with a -60 dBFS noise floor, for the whole reply
  echo_interrupt  that echo, and a corpus clip talking over it
  noise           a cough, a click train, a noise burst or a listener's "uh-huh" over the agent
barge_in_ms runs from the labelled speech onset (Silero offline, as in `bench latency`) of the
interrupting clip, measured when the frame holding it is fed, to the first pause of the speaker
after the event began; it is negative when a breath just before the onset paused it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from tqdm import tqdm

from voxloop.agent import events as ev
from voxloop.agent.providers import Providers
from voxloop.agent.session import VoiceSession
from voxloop.audio.pcm import resample
from voxloop.bench.corpus import Clip, load_corpus, speech_bounds
from voxloop.bench.cpuload import CpuLoad
from voxloop.bench.noises import NOISES
from voxloop.bench.split import part_of
from voxloop.bench.stats import percentiles, write_csv, write_json
from voxloop.bench.telephone import PhoneLine
from voxloop.config import AgentConfig
from voxloop.errors import VoxloopError
from voxloop.providers.base import TTS, Samples
from voxloop.transports.timeline import TimelineSink
from voxloop.transports.wav import PacedInput

log = logging.getLogger("voxloop.bench")
RATE = 16000
SCENARIOS = ("interrupt", "echo", "echo_interrupt", "noise")
PROMPTS = (
    "Tell me a story about a brave little dragon.",
    "Describe a walk through a forest in autumn.",
    "Tell me about the history of Rome.",
    "Explain how a rainbow forms.",
)
BACKCHANNELS = ("Uh-huh.", "Mm-hmm.", "Yeah.")
# Each wait below is for the session's verdict (its voice interrupted, resumed or finished), however
# long a busy machine takes to reach it; this bound only guards against a hang (a stalled stage
# ends the turn with an error event within `TurnConfig.stage_timeout_s` anyway).
HANG_S = 180.0
NOISE_QUIET_S = 3.0  # a noise that paused nothing is judged harmless after this much silence


@dataclass
class EchoPath:
    """The agent's own voice as the microphone hears it: delayed, quieter, over a noise floor."""

    sink: TimelineSink
    delay_s: float
    gain_db: float
    rng: np.random.Generator
    floor_dbfs: float = -60.0

    def __call__(self, t: float, n: int) -> Samples:
        dur = n / RATE
        played = self.sink.render(t - dur - self.delay_s, dur + 0.01)
        echo = resample(played, self.sink.sample_rate, RATE)[:n]
        echo = np.pad(echo, (0, n - len(echo))) * 10 ** (self.gain_db / 20)
        floor = self.rng.normal(0, 10 ** (self.floor_dbfs / 20), n)
        return (echo + floor).astype(np.float32)


@dataclass
class Trial:
    scenario: str
    event: str  # the clip id or noise kind
    offset_s: float  # how far into the agent's voice the event began
    echo_delay_ms: float | None = None
    echo_gain_db: float | None = None
    playing: bool = False  # the agent's voice was playing when the event began
    paused: int = 0  # AgentPaused events after the event onset
    interrupted: bool = False
    barge_in_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def run_trial(
    providers: Providers,
    config: AgentConfig,
    prompt: Samples,
    trial: Trial,
    event: Samples | None,
    onset_s: float,
    rng: np.random.Generator,
    telephone: bool = False,
) -> Trial:
    loop = asyncio.get_running_loop()
    sink = TimelineSink(providers.tts.sample_rate)
    session = VoiceSession(providers, sink, config)
    seen: list[tuple[ev.Event, float]] = []
    session.subscribe(lambda e: seen.append((e, loop.time())))
    echo = None
    if trial.echo_gain_db is not None and trial.echo_delay_ms is not None:
        echo = EchoPath(sink, trial.echo_delay_ms / 1000, trial.echo_gain_db, rng)
    mic = PacedInput(cast(VoiceSession, PhoneLine(session)) if telephone else session, RATE, mix=echo)

    def any_of(*kinds: type[ev.Event], after: float = 0.0) -> bool:
        return any(isinstance(e, kinds) and t >= after for e, t in seen)

    try:
        await mic.feed(np.concatenate([np.zeros(RATE // 2, np.float32), prompt]))
        if not await mic.silence_until(lambda: any_of(ev.AgentSpeech), HANG_S):
            trial.extra["error"] = "no reply"
            return trial
        await mic.feed(np.zeros(int(trial.offset_s * RATE), np.float32))
        trial.playing = sink.busy()
        start = mic.seconds
        if event is not None:
            await mic.feed(event)
        t_onset = mic.fed_at(int((start + onset_s) * RATE))
        t_event = mic.fed_at(int(start * RATE))  # the event's first sample (a breath may lead the onset)
        if trial.scenario in ("interrupt", "echo_interrupt"):
            await mic.silence_until(lambda: any_of(ev.Interrupted, ev.PlaybackFinished), HANG_S)
        elif trial.scenario == "noise":
            fed = mic.seconds

            def settled() -> bool:  # interrupted, or every pause it caused resumed (none: 3 s on)
                if any_of(ev.Interrupted, ev.PlaybackFinished, after=t_event):
                    return True
                paused = sum(1 for e, t in seen if isinstance(e, ev.AgentPaused) and t >= t_event)
                resumed = sum(1 for e, t in seen if isinstance(e, ev.AgentResumed) and t >= t_event)
                return paused == resumed and (resumed > 0 or mic.seconds - fed >= NOISE_QUIET_S)

            await mic.silence_until(settled, HANG_S)
        else:  # echo: the whole reply plays over its own echo
            await mic.silence_until(lambda: any_of(ev.Interrupted, ev.PlaybackFinished), HANG_S)
        trial.extra["spoken"] = " ".join(e.text for e, _ in seen if isinstance(e, ev.AgentSpeech))
        trial.extra["heard"] = next((e.heard_text for e, _ in seen if isinstance(e, ev.Interrupted)), None)
        trial.extra["resumed"] = [e.reason for e, _ in seen if isinstance(e, ev.AgentResumed)]
        trial.extra["finished"] = any_of(ev.PlaybackFinished)
        pauses = [t for e, t in seen if isinstance(e, ev.AgentPaused) and t >= t_event]
        trial.paused = len(pauses)
        trial.interrupted = any_of(ev.Interrupted, after=t_event if event is not None else 0.0)
        if pauses and event is not None:
            trial.barge_in_ms = round((pauses[0] - t_onset) * 1000, 1)
    finally:
        await session.aclose()
    return trial


async def _synth(tts: TTS, text: str) -> Samples:
    parts = [a async for a in tts.synthesize(text)]
    return resample(np.concatenate(parts), tts.sample_rate, RATE)


def _speakers(clips: list[Clip]) -> list[tuple[Clip, Samples, float]]:
    """Interrupting speech: each clip's first 2.5 s from its labelled onset, with that onset."""
    out = []
    for c in clips:
        audio = c.audio()
        start, _ = speech_bounds(audio)
        lead = max(0, int((start - 0.1) * RATE))
        part = audio[lead : lead + int(2.5 * RATE)]
        out.append((c, part, start - lead / RATE))
    return out


async def run(
    corpus: Path,
    out: Path,
    config: AgentConfig,
    trials: int,
    seed: int = 0,
    scenarios: tuple[str, ...] = SCENARIOS,
    cpu_load: int = 0,
    telephone: bool = False,
) -> dict[str, Any]:
    """`cpu_load`: busy processes (`bench.cpuload`) beside the loop for all the trials.
    `telephone`: the caller's microphone through a phone line (8 kHz mu-law, `bench.telephone`)."""
    from voxloop.demo import caller_voice

    unknown = [x for x in scenarios if x not in SCENARIOS]
    if unknown:
        raise VoxloopError(
            f"unknown scenario(s): {', '.join(unknown)}", f"choose from {', '.join(SCENARIOS)}"
        )
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    speakers = _speakers(load_corpus(corpus))
    providers = Providers.from_config(config)
    await providers.load()
    voice = await caller_voice()
    try:
        prompts = [await _synth(voice, p) for p in PROMPTS]
        nods = [(b, await _synth(voice, b)) for b in BACKCHANNELS]
        results: list[Trial] = []
        plan = [s for s in scenarios for _ in range(trials)]
        with CpuLoad(cpu_load) as load:
            for scenario in tqdm(plan, desc="turn-taking trials", unit="trial"):
                trial = Trial(scenario, "", round(pick.uniform(0.3, 1.5), 2))
                event: Samples | None = None
                onset = 0.0
                if scenario.startswith("echo"):
                    trial.echo_delay_ms = round(pick.uniform(20, 200), 1)
                    trial.echo_gain_db = round(pick.uniform(-20, -6), 1)
                if scenario.endswith("interrupt"):
                    clip, event, onset = pick.choice(speakers)
                    trial.event = clip.id
                elif scenario == "noise":
                    kind = pick.choice([*NOISES, "backchannel"])
                    if kind == "backchannel":
                        trial.event, event = pick.choice(nods)
                        onset = speech_bounds(event)[0]
                    else:
                        trial.event, event = kind, NOISES[kind](rng)
                results.append(
                    await run_trial(
                        providers, config, pick.choice(prompts), trial, event, onset, rng, telephone
                    )
                )
    finally:
        await voice.aclose()
        await providers.aclose()
    summary = summarise(results, seed)
    summary["cpu_load"] = load.report()
    summary["line"] = "phone: 8 kHz mu-law" if telephone else "16 kHz"
    write_json(out / "turns.json", summary)
    write_csv(out / "trials.csv", [_row(t) for t in results])
    print(format_table(summary))
    return summary


def _row(t: Trial) -> dict[str, Any]:
    d = {k: v for k, v in t.__dict__.items() if k != "extra"}
    return {**d, **t.extra}


def summarise(results: list[Trial], seed: int) -> dict[str, Any]:
    valid = [t for t in results if t.playing]
    by = {s: [t for t in valid if t.scenario == s] for s in SCENARIOS}
    res: dict[str, Any] = {"seed": seed, "skipped": len(results) - len(valid)}
    talk = by["interrupt"] + by["echo_interrupt"]
    res["barge_in_ms"] = percentiles([t.barge_in_ms for t in talk if t.barge_in_ms is not None])
    missed = sum(1 for t in talk if not t.interrupted)
    res["missed_interruptions"] = {"count": missed, "n": len(talk), "rate": _rate(missed, len(talk))}
    selfi = sum(1 for t in by["echo"] if t.interrupted)
    res["self_interruptions"] = {
        "count": selfi,
        "n": len(by["echo"]),
        "rate": _rate(selfi, len(by["echo"])),
        "pauses": sum(t.paused for t in by["echo"]),  # the voice stopped for its own echo, then went on
    }
    false = [t for t in by["noise"] if t.interrupted]
    res["false_interruptions"] = {
        "count": len(false),
        "n": len(by["noise"]),
        "rate": _rate(len(false), len(by["noise"])),
        "by_kind": {k: sum(1 for t in false if t.event == k) for k in sorted({t.event for t in by["noise"]})},
    }
    # the interrupting speech by part of the speaker split (bench/split.py)
    res["parts"] = {
        part: {
            "n": len(sel),
            "barge_in_ms": percentiles([t.barge_in_ms for t in sel if t.barge_in_ms is not None]),
            "missed": sum(1 for t in sel if not t.interrupted),
        }
        for part in ("tuning", "validation")
        if (sel := [t for t in talk if part_of(t.event) == part])
    }
    for s in SCENARIOS:
        miss = sum(1 for t in by[s] if not t.interrupted) if s.endswith("interrupt") else None
        res[s] = {
            "n": len(by[s]),
            "barge_in_ms": percentiles([t.barge_in_ms for t in by[s] if t.barge_in_ms is not None]),
            "interrupted": sum(1 for t in by[s] if t.interrupted),
            **({"missed": miss} if miss is not None else {}),
        }
    return res


def _rate(k: int, n: int) -> float | None:
    return round(k / n, 3) if n else None


def format_table(res: dict[str, Any]) -> str:
    b = res["barge_in_ms"]
    m, s, f = res["missed_interruptions"], res["self_interruptions"], res["false_interruptions"]
    return "\n".join(
        [
            f"barge-in (speech onset -> voice paused): p50 {b['p50']:.0f} ms  p95 {b['p95']:.0f} ms  "
            f"max {b['max']:.0f} ms",
            f"missed interruptions: {m['count']}/{m['n']}",
            f"self-interruptions under echo: {s['count']}/{s['n']} (voice paused for its echo {s['pauses']} times)",
            f"false interruptions under noise: {f['count']}/{f['n']} {f['by_kind']}",
            *(
                f"  {name} speakers: barge-in p50 {p['barge_in_ms']['p50']:.0f} ms, "
                f"p95 {p['barge_in_ms']['p95']:.0f} ms, missed {p['missed']}/{p['n']}"
                for name, p in res.get("parts", {}).items()
            ),
            f"trials skipped (the reply had ended before the event): {res['skipped']}",
            *(
                [f"with {c['processes']} busy process(es) beside it ({c['cores_used']} cores used)"]
                if (c := res.get("cpu_load", {})).get("processes")
                else []
            ),
        ]
    )
