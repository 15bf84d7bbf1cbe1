"""The TTS cache in front of the real hibari voice: the second time a line is asked for, its audio
comes from the cache (the voice is not asked again) and is the first synthesis's audio (to 16-bit
precision); a fixed line is in the cache from the load, and a new process finds it on disk."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voxloop.providers.base import TTS, Samples
from voxloop.providers.tts.cache import CachedTTS, DiskStore, LinePolicy

pytestmark = pytest.mark.integration
LINE = "Thanks for calling. Is there anything else I can help you with?"


class Counted(TTS):
    """The session's hibari voice, counting the requests it gets (it stays open for the others)."""

    def __init__(self, inner: TTS) -> None:
        self.inner, self.name, self.config = inner, inner.name, getattr(inner, "config", None)
        self.sample_rate = inner.sample_rate
        self.texts: list[str] = []

    def synthesize(self, text: str) -> AsyncGenerator[Samples, None]:
        self.texts.append(text)
        return self.inner.synthesize(text)


def cached(voice: Counted, folder: Path) -> CachedTTS:
    return CachedTTS(voice, DiskStore(folder, 50_000_000), LinePolicy(("One moment.",), replies="all"))


async def say(tts: CachedTTS, text: str) -> Samples:
    chunks = [c async for c in tts.synthesize(text)]
    await tts.flush()
    return np.concatenate(chunks)


def test_the_second_synthesis_of_a_line_comes_from_the_cache(arun: Any, tts: TTS, tmp_path: Path) -> None:
    voice = Counted(tts)
    cache = cached(voice, tmp_path)
    arun(cache.load())
    assert voice.texts == ["One moment."]  # the filler, prepared at load
    first = arun(say(cache, LINE))
    second = arun(say(cache, LINE))
    assert voice.texts == ["One moment.", LINE]  # the voice was asked once for the line
    assert (cache.stats.misses, cache.stats.hits) == (1, 1)
    assert len(first) == len(second) and len(first) > tts.sample_rate  # over a second of speech
    assert np.max(np.abs(first - second)) <= 1.0 / 32767 + 1e-6
    arun(cache.store.aclose())

    again = cached(Counted(tts), tmp_path)  # another process, the same folder
    arun(again.load())
    assert len(arun(say(again, LINE))) == len(first) and len(arun(say(again, "One moment."))) > 0
    assert again.stats.hits == 2 and again.inner.texts == []  # type: ignore[attr-defined]
    arun(again.store.aclose())
