"""`voxloop bench answers`: are the spoken replies right, and how soon do they begin?

The corpus is laid out like ../shared/corpus (`<id>.wav` anywhere below it, `manifest.tsv` with
`id` and `transcript`, and an optional `conversation` column that groups follow-ups) plus
`answers.tsv` with `id` and `expected`: alternatives separated by `|`; a reply is right when it
contains one, case-insensitive. Each conversation is one voice session through the full default
stack (recogniser, model, voice); its questions are asked in manifest order at real-time pace,
each once the last reply has been played. `--make-corpus` voices the built-in question set
(`bench/data/questions.tsv`: general knowledge, arithmetic, requests the agent cannot do, things
it can do, and follow-ups that need the history) with Piper's joe, a voice unlike the agent's.

`v2v_answer_ms` runs from the labelled end of the question's speech (as in `bench latency`) to
the first audio of the reply's own words (a filler is not an answer).
"""

from __future__ import annotations

import asyncio
import csv
import logging
import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from voxloop.agent.providers import Providers
from voxloop.agent.session import VoiceSession
from voxloop.bench.corpus import Clip, load_corpus, said_once, speech_bounds
from voxloop.bench.stats import percentiles, write_json
from voxloop.config import AgentConfig
from voxloop.errors import VoxloopError
from voxloop.transports.timeline import TimelineSink
from voxloop.transports.wav import PacedInput

log = logging.getLogger("voxloop.bench")
LEAD_S = 0.5  # silence before each question
MAX_REPLY_S = 40.0  # a bound against a hang only


@dataclass(frozen=True)
class Question:
    clip: Clip
    conversation: str
    expected: tuple[str, ...]


def _norm(text: str) -> str:
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"\s+", " ", text)


def is_right(reply: str, expected: tuple[str, ...]) -> bool:
    said = _norm(reply)
    return any(_norm(e).strip() in said for e in expected if e.strip())


def load_questions(folder: Path, limit: int | None = None) -> list[Question]:
    answers = folder / "answers.tsv"
    if not answers.is_file():
        raise VoxloopError(
            f"no answers.tsv in {folder}",
            "give --corpus a folder with answers.tsv (id, expected), or add --make-corpus to voice the built-in set",
        )
    with open(answers, newline="") as f:
        expected = {r["id"]: tuple(r["expected"].split("|")) for r in csv.DictReader(f, delimiter="\t")}
    with open(folder / "manifest.tsv", newline="") as f:
        groups = {r["id"]: r.get("conversation") or r["id"] for r in csv.DictReader(f, delimiter="\t")}
    out = []
    for clip in load_corpus(folder, limit):
        if clip.id not in expected:
            raise VoxloopError(f"answers.tsv has no row for {clip.id}", "add its expected answer")
        out.append(Question(clip, groups[clip.id], expected[clip.id]))
    return out


async def make_corpus(folder: Path) -> None:
    """Voice the built-in questions with Piper's joe into `folder` (16 kHz WAVs, manifest.tsv,
    answers.tsv)."""
    from voxloop.audio.pcm import resample
    from voxloop.audio.wav import write_wav
    from voxloop.config import TTSConfig
    from voxloop.providers.tts.piper import PiperTTS

    text = resources.files("voxloop.bench").joinpath("data/questions.tsv").read_text()
    rows = list(csv.DictReader(text.splitlines(), delimiter="\t"))
    voice = PiperTTS(TTSConfig(provider="piper", voice="joe", variation=0.0))
    await voice.load()
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    try:
        for r in tqdm(rows, desc="voicing the questions (Piper joe)", unit="question"):
            chunks = [c async for c in voice.synthesize(r["transcript"])]
            audio = resample(np.concatenate(chunks), voice.sample_rate, 16000)
            write_wav(folder / f"{r['id']}.wav", audio, 16000)
    finally:
        await voice.aclose()
    await asyncio.to_thread(_write_tables, folder, rows)
    log.info("wrote %d spoken questions to %s", len(rows), folder)


def _write_tables(folder: Path, rows: list[dict[str, str]]) -> None:
    with open(folder / "manifest.tsv", "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["id", "conversation", "transcript"])
        w.writerows([r["id"], r["conversation"], r["transcript"]] for r in rows)
    with open(folder / "answers.tsv", "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["id", "expected"])
        w.writerows([r["id"], r["expected"]] for r in rows)


async def ask(providers: Providers, config: AgentConfig, questions: list[Question]) -> list[dict[str, Any]]:
    """One conversation: each question in turn, each after the last reply has been played."""
    sink = TimelineSink(providers.tts.sample_rate)
    session = VoiceSession(providers, sink, config)
    mic = PacedInput(session)
    rows: list[dict[str, Any]] = []
    try:
        for q in questions:
            audio = q.clip.audio()
            _, end_s = speech_bounds(audio)
            begin = mic.seconds
            t_begin = asyncio.get_running_loop().time()
            await mic.feed(np.concatenate([np.zeros(int(LEAD_S * mic.rate), np.float32), audio]))
            t_end = mic.fed_at(int((begin + LEAD_S + end_s) * mic.rate) - 1)
            fed_end = mic.seconds

            def mine(t0: float = t_begin) -> list[Any]:
                return [r for r in session.records if r.marks.get("decided", 0) >= t0]

            def replied(fed: float = fed_end) -> bool:  # an answer has been played to its end
                if not (session.idle and not sink.busy()):
                    return False
                return any(r.agent_text for r in mine()) or mic.seconds > fed + 3.0

            await mic.silence_until(replied, MAX_REPLY_S)
            recs = mine()
            answer = next((r for r in reversed(recs) if r.agent_text), None)
            reply = " ".join(r.agent_text for r in recs if r.agent_text)
            at = answer.marks.get("answer_out") if answer is not None else None
            rows.append(
                {
                    "id": q.clip.id,
                    "conversation": q.conversation,
                    "question": q.clip.transcript,
                    "heard": said_once((r.user_text, r.revises) for r in recs),
                    "reply": reply,
                    "expected": "|".join(q.expected),
                    "right": is_right(reply, q.expected),
                    "v2v_answer_ms": None if at is None else round((at - t_end) * 1000, 1),
                    "fillers": sum(r.fillers for r in recs),
                }
            )
            await mic.silence_until(lambda: False, 1.0)  # a breath between questions
    finally:
        await session.aclose()
    return rows


async def run(
    corpus: Path, out: Path, config: AgentConfig, limit: int | None = None, make: bool = False
) -> dict[str, Any]:
    if make and not (corpus / "answers.tsv").is_file():
        await make_corpus(corpus)
    questions = load_questions(corpus, limit)
    conversations: dict[str, list[Question]] = {}
    for q in questions:
        conversations.setdefault(q.conversation, []).append(q)
    providers = Providers.from_config(config)
    await providers.load()
    rows: list[dict[str, Any]] = []
    try:
        log.info("warming up on %s", questions[0].clip.id)
        await ask(providers, config, questions[:1])
        bar = tqdm(conversations.values(), desc="asking", unit="conversation")
        for group in bar:
            rows += await ask(providers, config, group)
            bar.set_postfix(right=f"{sum(r['right'] for r in rows)}/{len(rows)}")
    finally:
        await providers.aclose()
    lat = [r["v2v_answer_ms"] for r in rows if r["v2v_answer_ms"] is not None]
    result = {
        "right": sum(r["right"] for r in rows),
        "n": len(rows),
        "heard_right": sum(
            _norm(r["heard"]).strip(" .?!") == _norm(r["question"]).strip(" .?!") for r in rows
        ),
        "v2v_answer_ms": percentiles(lat),
        "no_answer": sum(1 for r in rows if r["v2v_answer_ms"] is None),
        "llm_model": config.llm.model if config.llm.provider == "llama" else config.llm.provider,
        # the recogniser that heard: Whisper's model by its size, any other provider by its name
        "stt_model": config.stt.model if config.stt.provider == "whisper" else config.stt.provider,
        "questions": rows,
        "config": {k: v for k, v in asdict(config.llm).items() if k in ("model", "provider", "temperature")},
    }
    write_json(out / "answers.json", result)
    print(format_table(result))
    return result


def format_table(res: dict[str, Any]) -> str:
    lines = [f"{'id':5s} {'right':5s} {'ms':>6s}  heard -> reply"]
    for r in res["questions"]:
        ms = "-" if r["v2v_answer_ms"] is None else f"{r['v2v_answer_ms']:.0f}"
        lines.append(
            f"{r['id']:5s} {'yes' if r['right'] else 'NO':5s} {ms:>6s}  {r['heard']!r} -> {r['reply'][:90]!r}"
        )
    v = res["v2v_answer_ms"]
    lines.append(
        f"{res['right']} of {res['n']} answers right ({res['llm_model']}, {res['stt_model']}); "
        f"heard word for word {res['heard_right']}; v2v_answer p50 {v['p50']} / p95 {v['p95']} ms; "
        f"no answer {res['no_answer']}"
    )
    return "\n".join(lines)
