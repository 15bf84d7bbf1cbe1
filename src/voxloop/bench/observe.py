"""Providers that note when each stage delivers, for `bench faults` (a stage "works" when it does).

`observed(providers, log)` wraps the STT, LLM and TTS (a fallback chain or one provider) so that
`log` gets the loop time of every result: a transcript (partial, pause or final) for "stt", a
text piece for "llm", an audio chunk for "tts"; and of every LLM and TTS request begun
("llm_request", "tts_request").
Everything else is the wrapped provider's own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from voxloop.agent.providers import Providers
from voxloop.providers.base import (
    LLM,
    STT,
    TTS,
    BatchOptions,
    Message,
    PartialCallback,
    Samples,
    Sampling,
    STTStream,
    Transcript,
    Usage,
)


class StageLog:
    """Loop times of each stage's results, in order."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    def note(self, stage: str) -> None:
        self.times[stage].append(self.now())

    def first_after(self, stage: str, t: float) -> float | None:
        return next((x for x in self.times[stage] if x > t), None)


class _Stream(STTStream):
    def __init__(self, inner: STTStream, log: StageLog) -> None:
        self.inner, self.log = inner, log

    async def push(self, audio: Samples) -> None:
        await self.inner.push(audio)

    def speech_paused(self) -> None:
        self.inner.speech_paused()

    def speech_resumed(self) -> None:
        self.inner.speech_resumed()

    def continues(self, text: str) -> None:
        self.inner.continues(text)

    def rehear(self, *args: Any, **kw: Any) -> int:  # its signature is the inner stream's
        return self.inner.rehear(*args, **kw)

    def keywords(self, words: Sequence[str]) -> None:
        self.inner.keywords(words)

    async def finalize(self) -> Transcript:
        t = await self.inner.finalize()
        self.log.note("stt")
        return t

    async def pause_transcript(self) -> Transcript | None:
        t = await self.inner.pause_transcript()
        if t is not None:
            self.log.note("stt")
        return t

    async def aclose(self) -> None:
        await self.inner.aclose()


class ObservedSTT(STT):
    def __init__(self, inner: STT, log: StageLog) -> None:
        self.inner, self.log = inner, log
        self.name, self.sample_rate, self.capabilities = inner.name, inner.sample_rate, inner.capabilities

    def stream(self, on_partial: PartialCallback | None = None) -> STTStream:
        def partial(t: Transcript) -> None:
            self.log.note("stt")
            if on_partial is not None:
                on_partial(t)

        return _Stream(self.inner.stream(partial), self.log)

    async def transcribe(self, audio: Samples) -> Transcript:
        return await self.inner.transcribe(audio)

    async def transcribe_batch(self, audio: Samples, options: BatchOptions) -> Transcript:
        return await self.inner.transcribe_batch(audio, options)

    async def load(self) -> None:
        await self.inner.load()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class ObservedLLM(LLM):
    def __init__(self, inner: LLM, log: StageLog) -> None:
        self.inner, self.log, self.name = inner, log, inner.name

    def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        return self._noted(self.inner.stream(messages))

    def stream_with(
        self, messages: Sequence[Message], sampling: Sampling, usage: Usage | None = None
    ) -> AsyncGenerator[str, None]:
        return self._noted(self.inner.stream_with(messages, sampling, usage))

    async def _noted(self, pieces: AsyncGenerator[str, None]) -> AsyncGenerator[str, None]:
        self.log.note("llm_request")
        async with contextlib.aclosing(pieces):
            async for piece in pieces:
                self.log.note("llm")
                yield piece

    async def prefill(self, messages: Sequence[Message]) -> None:
        await self.inner.prefill(messages)

    async def load(self) -> None:
        await self.inner.load()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class ObservedTTS(TTS):
    def __init__(self, inner: TTS, log: StageLog) -> None:
        self.inner, self.log = inner, log
        self.name, self.sample_rate = inner.name, inner.sample_rate

    def synthesize(self, text: str) -> AsyncGenerator[Samples, None]:
        return self._noted(self.inner.synthesize(text))

    def synthesize_with(self, text: str, speed: float = 1.0) -> AsyncGenerator[Samples, None]:
        return self._noted(self.inner.synthesize_with(text, speed))

    async def _noted(self, chunks: AsyncGenerator[Samples, None]) -> AsyncGenerator[Samples, None]:
        self.log.note("tts_request")
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                self.log.note("tts")
                yield chunk

    async def load(self) -> None:
        await self.inner.load()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def observed(providers: Providers, log: StageLog) -> Providers:
    """The same providers, each stage's results noted in `log` (closing stays with the owner)."""
    return Providers(
        providers.vad,
        ObservedSTT(providers.stt, log),
        ObservedLLM(providers.llm, log),
        ObservedTTS(providers.tts, log),
    )
