"""Turn-taking with the real models on real speech: a person interrupting mid-reply, the agent's
own echo in the microphone, a cough over the reply. Each test is one trial of `bench turns`
(`voxloop.bench.turns.run_trial`): the caller's question is spoken by Piper, the event is fed at
real-time pace while the agent's voice plays, and the events the session reported are checked."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from voxloop.agent.providers import Providers
from voxloop.bench.corpus import speech_bounds
from voxloop.bench.noises import cough
from voxloop.bench.turns import Trial, run_trial
from voxloop.config import AgentConfig
from voxloop.demo import synth
from voxloop.providers.base import TTS, Samples

from .conftest import Arun, Corpus

pytestmark = pytest.mark.integration
SPEAKER = "1688-142285-0002"  # "You don't mean that you thought me so silly?" (2.8 s)


@pytest.fixture(scope="module")
def question(arun: Arun[Any], piper: TTS) -> Samples:
    return arun(synth(piper, "Tell me about the history of Rome."))


def _trial(
    arun: Arun[Any],
    providers: Providers,
    question: Samples,
    trial: Trial,
    event: Samples | None,
    onset: float,
) -> Trial:
    rng = np.random.default_rng(0)
    return arun(run_trial(providers, AgentConfig(), question, trial, event, onset, rng))


def test_a_person_interrupting_mid_reply_stops_the_agent(
    arun: Arun[Any], providers: Providers, question: Samples, corpus: Corpus
) -> None:
    speech = corpus.audio(SPEAKER)
    onset, _ = speech_bounds(speech)
    t = _trial(arun, providers, question, Trial("interrupt", SPEAKER, 0.8), speech, onset)
    assert t.playing, t.extra
    assert t.paused >= 1 and t.interrupted, t.extra
    assert t.barge_in_ms is not None  # paused after the event began (a breath before the onset may do it)
    heard, spoken = t.extra["heard"].split(), t.extra["spoken"].split()
    assert heard and spoken[: len(heard)] == heard  # history keeps a prefix of what was played


def test_the_agents_own_echo_does_not_interrupt_it(
    arun: Arun[Any], providers: Providers, question: Samples
) -> None:
    trial = Trial("echo", "", 0.5, echo_delay_ms=100.0, echo_gain_db=-10.0)
    t = _trial(arun, providers, question, trial, None, 0.0)
    assert t.playing and not t.interrupted, t.extra
    assert t.extra["finished"], t.extra  # the whole reply played over its own echo


def test_real_speech_over_the_echo_still_interrupts(
    arun: Arun[Any], providers: Providers, question: Samples, corpus: Corpus
) -> None:
    speech = corpus.audio(SPEAKER)
    onset, _ = speech_bounds(speech)
    trial = Trial("echo_interrupt", SPEAKER, 0.6, echo_delay_ms=60.0, echo_gain_db=-8.0)
    t = _trial(arun, providers, question, trial, speech, onset)
    assert t.playing and t.interrupted, t.extra


def test_a_cough_over_the_reply_does_not_end_it(
    arun: Arun[Any], providers: Providers, question: Samples
) -> None:
    t = _trial(arun, providers, question, Trial("noise", "cough", 1.0), cough(np.random.default_rng(3)), 0.0)
    assert t.playing and not t.interrupted, t.extra
    if t.paused:  # the voice may pause for the cough; then it must go on where it stopped
        assert t.extra["resumed"], t.extra
