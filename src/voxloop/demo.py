"""`voxloop demo`: a short spoken conversation, the caller voiced by the second local voice.

The caller (Piper's "joe") speaks a line, waits for the agent (hibari "heart") to finish its reply,
pauses like a person would, and speaks the next line. Everything runs through the real stack at
real-time pace; nothing but the repo and its model packages is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxloop.agent import events as ev
from voxloop.agent.providers import Providers
from voxloop.agent.session import VoiceSession
from voxloop.audio.pcm import resample
from voxloop.config import AgentConfig, TTSConfig
from voxloop.errors import VoxloopError
from voxloop.providers.base import TTS, Samples
from voxloop.providers.registry import provider_class
from voxloop.transports.timeline import TimelineSink
from voxloop.transports.wav import PacedInput, write_outputs

log = logging.getLogger("voxloop.demo")


@dataclass(frozen=True)
class CallerLine:
    text: str
    expect_heard: tuple[str, ...]  # words the transcript must hold
    expect_reply: tuple[tuple[str, ...], ...]  # each tuple: one of these must be in the reply


SCRIPT = (
    CallerLine("Hello! Tell me the capital of France, please.", ("capital", "france"), (("paris",),)),
    CallerLine("And what language do people speak there?", ("language", "speak"), (("french",),)),
    CallerLine(
        "Can you set a timer for ten minutes?",
        ("timer",),
        (("can't", "cannot", "can not", "unable", "not able", "don't have", "i'm sorry", "not"),),
    ),
    CallerLine(
        "Thanks. What is twelve times twelve?",
        ("12", "times"),
        (("144", "hundred forty", "hundred and forty", "one hundred"),),
    ),
)


def _count_reached(items: list[int], n: int) -> Callable[[], bool]:
    return lambda: len(items) >= n


async def caller_voice() -> TTS:
    """Piper joe when installed (the second local voice), else hibari heart at a slower pace."""
    try:
        # variation 0: the caller says each line the same way every run, so runs compare.
        tts: TTS = provider_class("tts", "piper")(TTSConfig(provider="piper", voice="joe", variation=0.0))
        await tts.load()
        return tts
    except VoxloopError as e:
        log.warning(
            "the caller's voice (Piper joe) is unavailable (%s); using hibari heart instead", e.message
        )
        tts = provider_class("tts", "hibari")(TTSConfig(speed=0.9))
        await tts.load()
        return tts


async def synth(tts: TTS, text: str, rate: int = 16000) -> Samples:
    parts = [a async for a in tts.synthesize(text)]
    audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return resample(audio, tts.sample_rate, rate)


async def run_demo(
    out_dir: Path,
    config: AgentConfig | None = None,
    providers: Providers | None = None,
    script: tuple[CallerLine, ...] = SCRIPT,
    gap_s: float = 0.8,
) -> VoiceSession:
    config = config or AgentConfig()
    own = providers is None
    if providers is None:
        providers = Providers.from_config(config)
        await providers.load()
    voice = await caller_voice()
    lines = [await synth(voice, line.text) for line in script]
    await voice.aclose()

    sink = TimelineSink(providers.tts.sample_rate)
    session = VoiceSession(providers, sink, config)
    finished: list[int] = []

    def on_event(e: ev.Event) -> None:
        if isinstance(e, ev.TurnCompleted | ev.TurnDropped):
            finished.append(1)
        if isinstance(e, ev.FinalTranscript):
            log.info("caller said: %r", e.text)

    session.subscribe(on_event)
    mic = PacedInput(session)
    try:
        await mic.feed(np.zeros(int(0.5 * mic.rate), np.float32))
        for i, (line, audio) in enumerate(zip(script, lines, strict=True), 1):
            log.info("caller line %d/%d: %r", i, len(script), line.text)
            await mic.feed(audio)
            if not await mic.silence_until(_count_reached(finished, i), max_s=30):
                log.warning("no reply finished within 30 s of caller line %d", i)
                await session.interrupt()
            await mic.feed(np.zeros(int(gap_s * mic.rate), np.float32))
        table = write_outputs(out_dir, session, mic, sink)
        print(table)
    finally:
        await session.aclose()
        if own:
            await providers.aclose()
    return session
