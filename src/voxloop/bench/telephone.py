"""`voxloop bench wer --telephone`: the recogniser and the end-of-turn rules on phone audio.

Every clip goes through two lines: as recorded (16 kHz) and as a phone call carries it (down to
8 kHz, G.711 mu-law and back: what `/v1/telephony/twilio` receives), the phone line fed to the
Listener at 8 kHz as a call feeds it. For each line: the streaming WER (the loop's own Listener,
as `bench wer` drives it, fast as it decodes), the offline WER (the recogniser on the whole clip,
the phone line upsampled to 16 kHz), and the turn-taking: how many turns the end-of-turn rules
decided in each clip, whether the clip's last turn was decided by them (not by the audio
running out), turns ended before the speaker had finished (a labelled speech end, Silero offline
as in `bench latency`), and the endpoint delay: from the labelled speech end to the frame whose
silence decided the turn, in audio time (compute excluded). Reported for the whole corpus and
each part of the speaker split (`bench/split.py`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from voxloop.agent.endpoint import Boundary
from voxloop.agent.listener import Listener
from voxloop.agent.session import VoiceSession
from voxloop.audio.g711 import mulaw_decode, mulaw_encode
from voxloop.audio.pcm import resample
from voxloop.bench.corpus import Clip, load_corpus, normalize, said_once, speech_bounds, wer, word_errors
from voxloop.bench.cpuload import CpuLoad
from voxloop.bench.split import part_of, parts_of
from voxloop.bench.stats import percentiles, write_csv, write_json
from voxloop.config import AgentConfig
from voxloop.providers import registry
from voxloop.providers.base import STT, VAD, Samples, Transcript

LINES = ("wide", "phone")  # 16 kHz as recorded; 8 kHz mu-law
LEAD_S, TAIL_S = 0.5, 1.0  # silence before and after each clip, as `bench wer`


class Halver:
    """16 kHz -> 8 kHz for a stream, chunk by chunk with no seams and a delay of 2 ms (a 65-tap
    windowed-sinc low-pass at 3.6 kHz, then every second sample). A high-quality stream
    resampler holds back 30-70 ms, which would count as the caller's own delay in `bench turns`."""

    TAPS = 65

    def __init__(self) -> None:
        n = np.arange(self.TAPS) - (self.TAPS - 1) / 2
        h = np.sinc(2 * 3600 / 16000 * n) * np.hamming(self.TAPS)
        self._h = (h / h.sum()).astype(np.float32)
        self._tail = np.zeros(self.TAPS - 1, np.float32)
        self._phase = 0  # which input sample the next output is taken at

    def __call__(self, x: Samples) -> Samples:
        buf = np.concatenate([self._tail, x.astype(np.float32)])
        y = np.convolve(buf, self._h, mode="valid")  # one per input sample
        self._tail = buf[len(buf) - (self.TAPS - 1) :]
        out = y[self._phase :: 2]
        self._phase = (self._phase + len(x)) % 2
        return out.astype(np.float32)


class PhoneLine:
    """A session's microphone through a phone line, for `bench turns --telephone`: each chunk
    down to 8 kHz (`Halver`), through mu-law, and into the session at 8 kHz, as a call feeds it.
    Stands in for the session where a PacedInput feeds it."""

    def __init__(self, session: VoiceSession) -> None:
        self.session = session
        self._down = Halver()

    async def push_audio(self, audio: Samples, rate: int) -> None:
        if rate != 16000:
            raise ValueError(f"PhoneLine takes 16 kHz, got {rate}")
        narrow = self._down(audio)
        if len(narrow):
            await self.session.push_audio(mulaw_decode(mulaw_encode(narrow)), 8000)


def phone_line(audio: Samples, rate: int = 16000) -> Samples:
    """`audio` as a phone call carries it: 8 kHz, through G.711 mu-law (8 bits a sample)."""
    return mulaw_decode(mulaw_encode(resample(audio, rate, 8000)))


async def hear(vad: VAD, stt: STT, config: AgentConfig, audio: Samples, rate: int) -> dict[str, Any]:
    """`audio` through the loop's Listener as fast as it decodes: the text, and where each turn
    was decided (seconds into the audio) and whether the rules decided it (not the end of audio)."""
    listener = Listener(vad, stt, config, rehear=True)
    finals: list[tuple[str, str]] = []
    decided: list[tuple[float, bool]] = []
    total = len(audio) / rate
    try:
        async for x in listener.listen(audio, rate):
            if isinstance(x, Transcript):
                finals.append((x.text, x.revises))
            elif isinstance(x, Boundary) and x.kind == "turn_end":
                at = listener.position / listener.rate
                decided.append((at, at < total - 1e-3))
    finally:
        await listener.aclose()
    return {"text": said_once(finals), "decided": decided}


def _row(
    clip: Clip, line: str, heard: dict[str, Any], offline: str, end_s: float, secs: float
) -> dict[str, Any]:
    ref = normalize(clip.transcript)
    decided: list[tuple[float, bool]] = heard["decided"]
    by_rules = [at for at, rule in decided if rule]
    last = decided[-1] if decided else None
    return {
        "id": clip.id,
        "part": part_of(clip.id),
        "line": line,
        "reference": clip.transcript,
        "streaming": heard["text"],
        "offline": offline,
        "words": len(ref),
        "streaming_errors": word_errors(ref, normalize(heard["text"])),
        "offline_errors": word_errors(ref, normalize(offline)),
        "turns": len(decided),
        "early_turns": sum(at < end_s for at in by_rules),  # decided before the speaker had finished
        "last_by_rules": bool(last and last[1]),
        "endpoint_ms": round((last[0] - end_s) * 1000) if last and last[1] else None,
        "decode_s": round(secs, 2),
    }


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    refs = [r["reference"] for r in rows]
    delays = [float(r["endpoint_ms"]) for r in rows if r["endpoint_ms"] is not None]
    return {
        "n": len(rows),
        "words": sum(r["words"] for r in rows),
        "streaming_wer": round(wer(refs, [r["streaming"] for r in rows]), 4),
        "offline_wer": round(wer(refs, [r["offline"] for r in rows]), 4),
        "turns_per_clip": round(sum(r["turns"] for r in rows) / max(1, len(rows)), 3),
        "early_turns": sum(r["early_turns"] for r in rows),
        "decided_by_rules": sum(r["last_by_rules"] for r in rows),
        "endpoint_ms": percentiles(delays) if delays else None,
    }


async def run(
    corpus: Path, out: Path, config: AgentConfig, limit: int | None = None, cpu_load: int = 0
) -> dict[str, Any]:
    clips = load_corpus(corpus, limit)
    listening = replace(config, turn=replace(config.turn, stage_timeout_s=600.0))  # as `bench wer`
    vad, stt = registry.create_vad(config), registry.create_stt(config)
    await vad.load()
    await stt.load()
    rows: list[dict[str, Any]] = []
    try:
        with CpuLoad(cpu_load) as load:
            for clip in tqdm(clips, desc="wer (16 kHz and phone)", unit="clip"):
                wide = clip.audio()
                end_s = LEAD_S + speech_bounds(wide)[1]
                padded = np.concatenate(
                    [
                        np.zeros(int(LEAD_S * 16000), np.float32),
                        wide,
                        np.zeros(int(TAIL_S * 16000), np.float32),
                    ]
                )
                for line in LINES:
                    t0 = time.perf_counter()
                    if line == "wide":
                        heard = await hear(vad, stt, listening, padded, 16000)
                        offline = (await stt.transcribe(wide)).text
                    else:
                        phone = phone_line(padded)
                        heard = await hear(vad, stt, listening, phone, 8000)
                        offline = (await stt.transcribe(resample(phone_line(wide), 8000, 16000))).text
                    rows.append(_row(clip, line, heard, offline, end_s, time.perf_counter() - t0))
    finally:
        await stt.aclose()
    res: dict[str, Any] = {
        "stt": config.stt.provider,
        "model": config.stt.model,
        "end_silence_ms": config.turn.end_silence_ms,
        "cpu_load": load.report(),
        "phone": "16 kHz -> 8 kHz (soxr HQ) -> G.711 mu-law -> decoded; the Listener takes it at 8 kHz",
        "endpoint_ms": "labelled speech end (Silero offline) to the frame that decided the turn, audio time",
        "lines": {},
    }
    for line in LINES:
        sel = [r for r in rows if r["line"] == line]
        parts = parts_of([r["id"] for r in sel])
        res["lines"][line] = {p: _summary([sel[i] for i in idx]) for p, idx in parts.items()}
    write_json(out / "telephone.json", res)
    write_csv(out / "telephone.csv", rows)
    print(format_table(res))
    return res


def format_table(res: dict[str, Any]) -> str:
    lines = [
        f"{res['stt']} {res['model']}, end silence {res['end_silence_ms']} ms: 16 kHz beside the phone line"
    ]
    for part in ("all", "tuning", "validation"):
        for line in LINES:
            s = res["lines"][line].get(part)
            if s is None:
                continue
            ep = s["endpoint_ms"] or {}
            lines.append(
                f"  {part:<10} {line:<5} {s['n']:>3} clips {s['words']:>5} words: streaming WER {s['streaming_wer']:.3f},"
                f" offline {s['offline_wer']:.3f}; turns/clip {s['turns_per_clip']:.2f}, decided by the rules"
                f" {s['decided_by_rules']}/{s['n']}, early {s['early_turns']}; endpoint ms p50 {ep.get('p50', '-')}"
                f" p95 {ep.get('p95', '-')}"
            )
    return "\n".join(lines)
