"""Tool calls with the real local stack on spoken requests: the caller's voice (Piper joe, or
hibari) says the request, Silero and Whisper hear it at real-time pace, Qwen2.5 1.5B calls the
demo tool through its text tool format, and the answer (hibari) must use the tool's result.

The model takes its most likely words here (temperature 0), so each test gives the same answer
on every run; `benchmarks/tool_calls.py` measures how often it calls the right tool at its
configured temperature over ten phrasings of each request (README, "Tools").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voxloop.agent import events as ev
from voxloop.agent.providers import Providers
from voxloop.agent.session import VoiceSession
from voxloop.agent.toolcall import tool_prompt, use_tools, warm
from voxloop.config import AgentConfig
from voxloop.demo import caller_voice, synth
from voxloop.providers.base import LLM, STT, TTS, VAD
from voxloop.transports.timeline import TimelineSink
from voxloop.transports.wav import PacedInput, write_outputs

from .conftest import Arun
from .helpers import words

pytestmark = pytest.mark.integration
REQUESTS = {
    "time": "What time is it?",
    "hours": "Look up our opening hours.",
    "person": "Let me talk to a person.",
}


@pytest.fixture(scope="module")
def tool_providers(arun: Arun[Any], vad: VAD, stt: STT, llm: LLM, tts: TTS) -> Iterator[Providers]:
    """The session's models with the demo tools, as `voxloop --tools demo` loads them: the
    language model's cache warmed with the tools' system prompt (`toolcall.warm`); greedy."""
    config = AgentConfig()
    config.tools.module = "demo"
    tools = use_tools(config, llm)
    providers = Providers(vad, stt, llm, tts, tools=tools)
    arun(warm(llm, tool_prompt(config, providers)))
    settings = getattr(llm, "config", None)
    before = settings.temperature if settings is not None else None
    if settings is not None:
        settings.temperature = 0.0
    yield providers
    if settings is not None:
        settings.temperature = before


@pytest.fixture(scope="module")
def spoken(arun: Arun[Any]) -> dict[str, np.ndarray]:
    async def make() -> dict[str, np.ndarray]:
        voice = await caller_voice()
        try:
            return {k: await synth(voice, text) for k, text in REQUESTS.items()}
        finally:
            await voice.aclose()

    return arun(make())


def one_turn(
    arun: Arun[Any], providers: Providers, audio: np.ndarray, out: Path
) -> tuple[dict[str, Any], list[ev.Event]]:
    """The request spoken into a fresh session; its turn's record (from turns.jsonl) and events."""
    events: list[ev.Event] = []

    async def run() -> dict[str, Any]:
        sink = TimelineSink(providers.tts.sample_rate)
        session = VoiceSession(providers, sink, AgentConfig())
        session.subscribe(events.append)
        mic = PacedInput(session)
        try:
            await mic.feed(np.zeros(8000, np.float32))
            await mic.feed(audio)
            done = await mic.silence_until(lambda: any(isinstance(e, ev.TurnCompleted) for e in events), 60)
            assert done, f"no turn completed: {[e.type for e in events]}"
            write_outputs(out, session, mic, sink)
        finally:
            await session.aclose()
        lines = (out / "turns.jsonl").read_text().splitlines()
        return json.loads(lines[0])

    return arun(run()), events


def test_what_time_is_it(
    arun: Arun[Any], tool_providers: Providers, spoken: dict[str, np.ndarray], tmp_path: Path
):
    rec, _ = one_turn(arun, tool_providers, spoken["time"], tmp_path)
    assert "time" in words(rec["user_text"]), rec["user_text"]
    assert [t["name"] for t in rec["tools"]] == ["get_date_and_time"], rec
    result = rec["tools"][0]["result"]
    hour, minute = re.search(r"It is (\d+):(\d+)", result).groups()  # type: ignore[union-attr]
    said = rec["agent_text"]
    assert f"{hour}:{minute}" in said or hour in words(said), (said, result)
    assert "{" not in said and "name" not in words(said)  # the call itself is never spoken


def test_look_up_our_opening_hours(
    arun: Arun[Any], tool_providers: Providers, spoken: dict[str, np.ndarray], tmp_path: Path
):
    rec, _ = one_turn(arun, tool_providers, spoken["hours"], tmp_path)
    # the lookup; the 1.5B sometimes asks it again, which is answered from the first result, not run
    names, errors = [t["name"] for t in rec["tools"]], [t["error"] for t in rec["tools"]]
    assert set(names) == {"search_knowledge_base"} and errors[0] == "", rec
    assert all(e == "repeated call" for e in errors[1:]), rec
    assert "opening hours" in rec["tools"][0]["result"].lower()
    said = words(rec["agent_text"])
    assert {"9", "6", "10", "4", "monday", "saturday", "sunday"} & set(said), rec["agent_text"]


def test_let_me_talk_to_a_person(
    arun: Arun[Any], tool_providers: Providers, spoken: dict[str, np.ndarray], tmp_path: Path
):
    rec, events = one_turn(arun, tool_providers, spoken["person"], tmp_path)
    assert [t["name"] for t in rec["tools"]] == ["transfer_to_human"], rec
    transfers = [e for e in events if isinstance(e, ev.Transfer)]
    assert len(transfers) == 1 and transfers[0].reason.strip(), transfers
    assert "transfer" in [e["type"] for e in rec["events"]]
    assert rec["agent_text"].strip()  # the caller is told before the hand-over
