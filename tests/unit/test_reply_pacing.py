"""How an answer is cut into requests for the voice, by how fast the text comes (virtual time,
fakes: FakeTTS speaks 0.25 s per word)."""

from __future__ import annotations

import pytest

from conftest import conversation, make_providers, run_virtual
from fakes import FakeLLM, FakeSTT
from voxloop.agent import events as ev

ANSWER = ("The", " capital", " of", " France", " is", " Paris", ".", " It", " is", " lovely", ".")


def _spoken(delay: float) -> tuple[list[str], float]:
    """What the voice was asked to say, and when the first request went after the first token."""
    llm = FakeLLM({"hello": ANSWER}, first_delay=0.3, delay=delay)
    out: list[str] = []
    first = [0.0]

    async def main() -> None:
        async with conversation(make_providers(stt=FakeSTT(["hello"]), llm=llm)) as c:
            await c.turn(1.0, max_s=30)
            out.extend(e.text for e in c.of(ev.AgentSpeech))
            rec = c.session.records[0]
            first[0] = rec.marks["tts_request"] - rec.marks["first_token"]
            assert rec.agent_text == "The capital of France is Paris. It is lovely."

    run_virtual(main())
    return out, first[0]


def test_fast_text_is_said_in_the_first_words_then_sentences() -> None:
    said, first = _spoken(0.05)  # an idle machine: ~55-80 ms a token
    assert said == ["The capital of", "France is Paris.", "It is lovely."]
    assert first == pytest.approx(3 * 0.05, abs=1e-6)  # the 4th word began: 3 are complete


def test_slow_text_starts_on_the_first_word_and_never_leaves_the_voice_waiting() -> None:
    said, first = _spoken(0.3)  # a busy machine: 300 ms a token, about as fast as speech
    assert said[0] == "The"  # said as soon as it was complete, not after three words
    assert first == pytest.approx(0.3, abs=1e-6)
    assert " ".join(said) == "The capital of France is Paris. It is lovely."
    assert len(said) > 3  # shorter pieces than sentences: the voice ran dry between them


def test_text_a_little_slower_than_an_idle_machine_starts_on_the_first_word() -> None:
    said, first = _spoken(0.12)  # beside two busy processes tokens came 75-240 ms apart
    assert said[0] == "The" and first == pytest.approx(0.12, abs=1e-6)
    said, first = _spoken(0.08)  # the slowest tokens of an idle machine: three words first
    assert said[0] == "The capital of" and first == pytest.approx(3 * 0.08, abs=1e-6)
