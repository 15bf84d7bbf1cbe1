"""`CachedTTS`: any voice, with its lines kept in a store (disk or Redis).

A line the store has is one chunk of audio at once, without the voice. A line it has not is
streamed from the voice as usual while its chunks are collected; when the voice finished the
line (not cancelled by a barge-in, not failed) its audio is written to the store by a task of
the cache's own, off the reply's path. `policy.py` says which lines are looked up and stored.

With `memory_bytes`, the most used lines are also kept in the process (`memory.py`): looked up
there first, they need no thread or socket at all, and they stay while the store is down.

A fallback chain (`--tts deepgram,hibari`) is cached as one voice whose key names every member;
a line is stored only when the chain's first member spoke it (the fallback's voice is not kept
under the chain's key), and a hit plays the first member's voice even while it is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any, Protocol

import numpy as np

from voxloop.audio.pcm import resample
from voxloop.providers.base import TTS, Samples
from voxloop.providers.tts.cache.entry import Entry
from voxloop.providers.tts.cache.key import cache_key, voice_identity
from voxloop.providers.tts.cache.memory import MemoryFront
from voxloop.providers.tts.cache.policy import LinePolicy
from voxloop.providers.tts.cache.stats import CacheStats

log = logging.getLogger("voxloop.tts.cache")
CLOSE_WAIT_S = 2.0  # writes still under way at close get this long
PREPARE_S = 10.0  # preparing the fixed lines at load gets this long (a cloud voice may be down)


class Store(Protocol):
    name: str

    async def open(self) -> None: ...
    async def get(self, key: str) -> Entry | None: ...
    async def put(self, key: str, entry: Entry) -> bool: ...  # False: not stored (it logs why)
    async def aclose(self) -> None: ...


class CachedTTS(TTS):
    def __init__(
        self, inner: TTS, store: Store, policy: LinePolicy | None = None, memory_bytes: int = 0
    ) -> None:
        self.inner, self.store = inner, store
        self.policy = policy or LinePolicy()
        self.memory = MemoryFront(memory_bytes) if memory_bytes > 0 else None
        self.name = inner.name
        self.stats = CacheStats()
        self._writes: set[asyncio.Task[None]] = set()
        self._identity: dict[str, Any] | None = None

    @property
    def sample_rate(self) -> int:  # the voice's (known once it has loaded)
        return self.inner.sample_rate

    @sample_rate.setter
    def sample_rate(self, rate: int) -> None:
        self.inner.sample_rate = rate

    def key(self, text: str, speed: float = 1.0) -> str:
        if self._identity is None:
            self._identity = voice_identity(self.inner)
        return cache_key(self._identity, text, speed)

    async def load(self) -> None:
        await self.inner.load()
        self._identity = voice_identity(self.inner)  # the sample rate is known now
        await self.store.open()
        try:
            await asyncio.wait_for(self._prewarm(), PREPARE_S)
        except TimeoutError:
            log.warning(
                "tts cache: the fixed lines took over %.0f s to prepare; the rest are cached when said",
                PREPARE_S,
            )

    async def _prewarm(self) -> None:
        """Synthesize the fixed lines the store does not have yet, so their first use is a hit."""
        t0, made = time.perf_counter(), 0
        for line in self.policy.fixed_lines:
            key = self.key(line)
            if await self._lookup(key) is not None:
                continue
            try:
                parts = [chunk async for chunk in self.inner.synthesize(line)]
            except Exception as e:
                log.warning("tts cache: could not prepare %r (%s); it is cached when first said", line, e)
                continue
            entry = Entry(np.concatenate(parts), self.inner.sample_rate) if parts else None
            if entry is None or not self._primary_spoke():
                continue
            if self.memory is not None:
                self.memory.put(key, entry)
            if await self.store.put(key, entry) or self.memory is not None:
                self.stats.count("prewarmed")
                made += 1
        log.info(
            "tts cache (%s): %d fixed lines ready, %d synthesized now in %.1f s",
            self.store.name,
            len(self.policy.fixed_lines),
            made,
            time.perf_counter() - t0,
        )

    def synthesize(self, text: str) -> AsyncGenerator[Samples, None]:
        return self._serve(text, 1.0, lambda: self.inner.synthesize(text))

    def synthesize_with(self, text: str, speed: float = 1.0) -> AsyncGenerator[Samples, None]:
        if speed == 1.0:
            return self.synthesize(text)
        first = self.inner.synthesize_with(text, speed)  # a voice with one pace says no here, now
        return self._serve(text, speed, lambda: first, unused=first)

    async def _serve(
        self,
        text: str,
        speed: float,
        open_: Callable[[], AsyncGenerator[Samples, None]],
        unused: AsyncGenerator[Samples, None] | None = None,
    ) -> AsyncGenerator[Samples, None]:
        key = self.key(text, speed)
        decision = self.policy.decide(text, key)
        if decision.lookup:
            entry = await self._lookup(key)
            if entry is not None:
                self.stats.count("hit")
                if unused is not None:
                    await unused.aclose()
                rate = self.inner.sample_rate
                yield (
                    entry.audio
                    if entry.sample_rate == rate
                    else resample(entry.audio, entry.sample_rate, rate)
                )
                return
            self.stats.count("miss")
        else:
            self.stats.count("bypass")
        parts: list[Samples] = []
        async with contextlib.aclosing(open_()) as chunks:
            async for chunk in chunks:
                if decision.store:
                    parts.append(chunk.copy())  # the consumer may change its chunk in place
                yield chunk
        # only here when the voice finished the line: a barge-in closes us at the yield above
        if decision.store and parts and self._primary_spoke():
            self._write(key, Entry(np.concatenate(parts), self.inner.sample_rate))

    async def _lookup(self, key: str) -> Entry | None:
        """The memory front first, then the store (a store hit is kept in memory for next time)."""
        if self.memory is not None and (entry := self.memory.get(key)) is not None:
            return entry
        entry = await self.store.get(key)
        if entry is not None and self.memory is not None:
            self.memory.put(key, entry)
        return entry

    def _primary_spoke(self) -> bool:
        """False when a fallback chain's first member is down (another member spoke the line)."""
        chain = getattr(self.inner, "chain", None)
        return chain is None or chain.order()[0] == 0

    def _write(self, key: str, entry: Entry) -> None:
        if self.memory is not None:  # at once, and even when the store cannot take it
            self.memory.put(key, entry)
        task = asyncio.get_running_loop().create_task(self._put(key, entry))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _put(self, key: str, entry: Entry) -> None:
        try:
            stored = await self.store.put(key, entry)
        except Exception:  # a store reports its own failures; anything else is a bug worth a trace
            log.exception("tts cache: storing a line in %s failed", self.store.name)
            return
        if stored:
            self.stats.count("stored")

    async def flush(self) -> None:
        """Wait for the writes under way (tests, benchmarks, shutdown)."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    async def aclose(self) -> None:
        try:
            await asyncio.wait_for(self.flush(), CLOSE_WAIT_S)
        except TimeoutError:
            log.warning(
                "tts cache: %d writes did not finish in %.0f s; dropped", len(self._writes), CLOSE_WAIT_S
            )
            for task in list(self._writes):
                task.cancel()
            await asyncio.gather(*list(self._writes), return_exceptions=True)
        await self.store.aclose()
        await self.inner.aclose()
