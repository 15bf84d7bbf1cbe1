"""A fallback chain of recognisers (`--stt deepgram,whisper`), see providers/fallback.py.

Each session's stream keeps the audio of the turn it is hearing (since the last `finalize`). When
the member's stream fails (a push, a pause transcript or the final one), the next member's stream
takes over mid-turn: it hears the turn's audio again from its start and the hints given so far,
and nothing the user said is lost. A new turn (the first push after `finalize`) starts on the
chain's first member that is up: back on the primary once it has recovered.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import numpy as np

from voxloop.config import FallbackConfig
from voxloop.providers.base import STT, PartialCallback, Samples, STTStream, Transcript
from voxloop.providers.fallback import Chain

log = logging.getLogger("voxloop.fallback")
T = TypeVar("T")


class FallbackSTT(STT):
    def __init__(self, members: Sequence[STT], config: FallbackConfig | None = None) -> None:
        rates = {m.sample_rate for m in members}
        if len(rates) > 1:
            raise ValueError(f"the recognisers of a chain must take one sample rate, not {sorted(rates)}")
        self.chain = Chain("stt", members, config or FallbackConfig(), _probe_stt)
        self.name = self.chain.name
        self.sample_rate = members[0].sample_rate
        self.capabilities = members[0].capabilities

    async def load(self) -> None:
        await self.chain.load()

    async def aclose(self) -> None:
        await self.chain.aclose()

    def stream(self, on_partial: PartialCallback | None = None) -> STTStream:
        return FallbackSTTStream(self.chain, on_partial)


async def _probe_stt(stt: STT) -> None:
    s = stt.stream()
    try:
        await s.push(np.zeros(stt.sample_rate // 2, np.float32))
        await s.finalize()
    finally:
        await s.aclose()


class FallbackSTTStream(STTStream):
    def __init__(self, chain: Chain[STT], on_partial: PartialCallback | None) -> None:
        self.chain, self.on_partial = chain, on_partial
        self._turn: list[Samples] = []  # the audio pushed since the last finalize
        self._paused = False
        self._continues = ""
        self._keywords: list[str] = []
        self._index = chain.order()[0]
        self._stream = self._open(self._index)

    def _open(self, i: int) -> STTStream:
        stream = self.chain.members[i].stream(self.on_partial)
        if self._keywords:
            stream.keywords(self._keywords)
        return stream

    async def _run(self, step: Callable[[STTStream], Awaitable[T]]) -> T:
        """`step` on the member's stream; if it fails, on the next member's, after the turn so far."""
        tried = {self._index}
        while True:
            try:
                return await step(self._stream)
            except Exception as e:
                nxt = next((i for i in self.chain.order() if i not in tried), None)
                self.chain.failed(self._index, e, nxt)
                if nxt is None:
                    raise
                tried.add(nxt)
                with contextlib.suppress(Exception):  # a replay that fails: the step fails next
                    await self._switch(nxt)

    async def _switch(self, i: int) -> None:
        old, self._stream, self._index = self._stream, self._open(i), i
        with contextlib.suppress(Exception):
            await old.aclose()
        if self._continues:
            self._stream.continues(self._continues)
        if self._turn:
            for audio in self._turn:  # the turn so far, again: no word is lost
                await self._stream.push(audio)
            if self._paused:
                self._stream.speech_paused()

    async def push(self, audio: Samples) -> None:
        first = self.chain.order()[0]
        if not self._turn and first != self._index:  # a new turn: back to the first member up
            log.info("stt: back to %s", self.chain.members[first].name)
            await self._switch(first)
        await self._run(lambda s: s.push(audio))
        self._turn.append(audio)

    def speech_paused(self) -> None:
        self._paused = True
        self._stream.speech_paused()

    def speech_resumed(self) -> None:
        self._paused = False
        self._stream.speech_resumed()

    def continues(self, text: str) -> None:
        self._continues = text
        self._stream.continues(text)

    def keywords(self, words: Sequence[str]) -> None:
        self._keywords = list(words)
        self._stream.keywords(words)

    async def pause_transcript(self) -> Transcript | None:
        return await self._run(lambda s: s.pause_transcript())

    async def finalize(self) -> Transcript:
        final = await self._run(lambda s: s.finalize())
        self._turn, self._paused, self._continues = [], False, ""
        return final

    async def aclose(self) -> None:
        await self._stream.aclose()
