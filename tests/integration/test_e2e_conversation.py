"""End to end through the real stack: spoken conversations in WAV files, and what the agent said
transcribed back from the audio it actually played."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from voxloop import commands
from voxloop.agent import events as ev
from voxloop.agent.providers import Providers
from voxloop.agent.session import VoiceSession
from voxloop.audio.pcm import resample
from voxloop.audio.wav import read_wav, write_wav
from voxloop.config import AgentConfig
from voxloop.demo import SCRIPT, run_demo
from voxloop.transports.timeline import TimelineSink
from voxloop.transports.wav import PacedInput, write_outputs

from .conftest import LAMP, Arun, Corpus
from .helpers import has_phrase, missing_words, speech_dbfs, words

pytestmark = pytest.mark.integration

FIELDS = (
    "turn_id",
    "user_text",
    "agent_text",
    "speech_end_s",
    "endpoint_ms",
    "stt_final_ms",
    "llm_ttft_ms",
    "tts_first_audio_ms",
    "v2v_ms",
)
TIMES = FIELDS[3:]


@pytest.fixture(scope="module")
def demo_out(arun: Arun[Any], providers: Providers, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scripted demo conversation, run once through the session's models."""
    out = tmp_path_factory.mktemp("demo")
    arun(run_demo(out, providers=providers))
    return out


@pytest.fixture(scope="module")
def turns(demo_out: Path) -> list[dict[str, Any]]:
    lines = (demo_out / "turns.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_demo_writes_the_conversation_files(demo_out: Path):
    conv = sf.info(str(demo_out / "conversation.wav"))
    agent = sf.info(str(demo_out / "agent.wav"))
    assert conv.channels == 2, "conversation.wav must be stereo: caller left, agent right"
    assert agent.channels == 1
    assert conv.samplerate == agent.samplerate == 24000
    assert agent.frames > 0 and conv.frames >= agent.frames


def test_demo_logs_one_complete_turn_per_script_line(turns: list[dict[str, Any]]):
    assert len(turns) == len(SCRIPT), [t.get("user_text") for t in turns]
    for i, t in enumerate(turns, 1):
        assert t["turn_id"] == i
        missing = [f for f in FIELDS if t.get(f) is None]
        assert not missing, f"turn {i} lacks {missing}: {t}"
        assert all(isinstance(t[f], int | float) for f in TIMES), t
        assert t["agent_text"].strip() and not t["interrupted"], t
        assert t["v2v_ms"] >= t["endpoint_ms"] > 0, t
    ends = [t["speech_end_s"] for t in turns]
    assert ends == sorted(ends) and ends[0] > 0


def test_demo_hears_what_the_caller_said(turns: list[dict[str, Any]]):
    assert len(turns) == len(SCRIPT)
    for line, t in zip(SCRIPT, turns, strict=True):
        assert not missing_words(t["user_text"], line.expect_heard), (line.text, t["user_text"])


def test_demo_agent_audio_answers_each_question(
    arun: Arun[Any], providers: Providers, demo_out: Path, turns: list[dict[str, Any]]
):
    """Transcribe the agent's channel of conversation.wav turn by turn: the spoken reply answers."""
    assert len(turns) == len(SCRIPT)
    stereo, rate = sf.read(str(demo_out / "conversation.wav"), dtype="float32", always_2d=True)
    agent = stereo[:, 1]
    bounds = [int(t["speech_end_s"] * rate) for t in turns] + [len(agent)]
    failures = []
    for i, (line, t) in enumerate(zip(SCRIPT, turns, strict=True)):
        reply = agent[bounds[i] : bounds[i + 1]]
        assert speech_dbfs(reply, rate) > -35, f"turn {i + 1}: the agent's channel is silent"
        heard = arun(providers.stt.transcribe(resample(reply, rate, 16000))).text
        if not any(has_phrase(heard, alt) for group in line.expect_reply for alt in group):
            failures.append(f"{line.text!r}: agent said {t['agent_text']!r}, audio heard as {heard!r}")
        shared = set(words(heard)) & set(words(t["agent_text"]))
        assert len(shared) >= len(set(words(t["agent_text"]))) // 2, (
            f"turn {i + 1}: the audio ({heard!r}) is not the logged reply ({t['agent_text']!r})"
        )
    assert not failures, "\n".join(failures)


def test_a_wav_command_through_a_fresh_session(
    arun: Arun[Any], providers: Providers, corpus: Corpus, tmp_path: Path
):
    """What `voxloop run --in lamp.wav` does, on the session's models: one turn, heard and answered."""
    clip = corpus.clip(LAMP)
    audio, rate = read_wav(clip.path)
    events: list[ev.Event] = []

    async def run() -> tuple[VoiceSession, TimelineSink, bool]:
        sink = TimelineSink(providers.tts.sample_rate)
        session = VoiceSession(providers, sink, AgentConfig())
        session.subscribe(events.append)
        mic = PacedInput(session, rate)
        try:
            await mic.feed(audio)
            # a busy machine may take long to answer: allow it time, check everything after
            done = await mic.silence_until(lambda: bool(session.records) and not sink.busy(), max_s=90)
            write_outputs(tmp_path, session, mic, sink)
        finally:
            await session.aclose()
        return session, sink, done

    session, sink, done = arun(run())
    assert done, f"no turn completed within 90 s of silence: {[e.type for e in events]}"
    assert not [e for e in events if isinstance(e, ev.ErrorOccurred)]
    assert len(session.records) == 1, [r.user_text for r in session.records]
    rec = session.records[0]
    assert not missing_words(rec.user_text, [clip.transcript]), rec.user_text
    assert rec.agent_text.strip() and not rec.interrupted
    played = np.concatenate([p.audio for p in sink.placed]) if sink.placed else np.zeros(0, np.float32)
    assert len(played) / sink.sample_rate > 0.5, "the reply was not spoken"
    assert speech_dbfs(played, sink.sample_rate) > -35
    written, _ = read_wav(tmp_path / "agent.wav")
    assert np.abs(written).max() > 0.05 and (tmp_path / "turns.jsonl").read_text().count("\n") == 1


class _Borrowed(Providers):
    """The session's loaded models, lent to code that would load (and close) its own."""

    async def load(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize(
    "tail_s",
    [
        None,
        0.16,
    ],
    ids=["whole-clip", "speech-ends-near-the-end"],
)
def test_run_wav_answers_the_spoken_command(
    arun: Arun[Any],
    providers: Providers,
    corpus: Corpus,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tail_s: float | None,
):
    """commands.run_wav itself (what `voxloop run --in` calls), lent the session's models."""
    clip = corpus.clip(LAMP)
    audio = clip.audio()
    if tail_s is not None:  # cut the clip this long after the labelled end of speech
        audio = audio[: int((corpus.speech(LAMP)[1] + tail_s) * 16000)]
    wav = write_wav(tmp_path / "in.wav", audio, 16000)
    lent = _Borrowed(providers.vad, providers.stt, providers.llm, providers.tts)
    monkeypatch.setattr(commands.Providers, "from_config", classmethod(lambda cls, config: lent))
    session = arun(commands.run_wav(wav, tmp_path / "out", AgentConfig()))
    assert len(session.records) == 1, f"{len(session.records)} turns from a one-command WAV"
    assert not missing_words(session.records[0].user_text, [clip.transcript]), session.records[0].user_text
    assert session.records[0].agent_text.strip()
    assert (tmp_path / "out" / "turns.jsonl").read_text().count("\n") == 1
