"""Real models for the integration tests, loaded once per test session.

Loading is slow (the language model alone takes seconds), so every provider is a session-scoped
fixture. The providers' worker threads report back to the event loop that started them, so the whole
test session uses ONE event loop: run a coroutine on it with the `arun` fixture, never with
`asyncio.run`.

A model package that is not installed skips the tests that need it, with the command that installs
it. The speech corpus is `../shared/corpus` beside the repository (or `$VOXLOOP_CORPUS`); tests that
need it skip when it is absent.
"""

from __future__ import annotations

import asyncio
import csv
import os
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from voxloop.agent.providers import Providers
from voxloop.bench.corpus import Clip, load_corpus
from voxloop.errors import MissingExtra, ModelMissing
from voxloop.providers.base import LLM, STT, TTS, VAD, Provider, Samples

T = TypeVar("T")
P = TypeVar("P", bound=Provider)
Arun = Callable[[Coroutine[Any, Any, T]], T]

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CORPUS = Path(os.path.normpath(REPO / ".." / "shared" / "corpus"))
LAMP = "rhasspy_turn_on_the_living_room_lamp"
JFK = "jfk_inaugural_1961"


def corpus_dir() -> Path:
    """`$VOXLOOP_CORPUS` if set, else `../shared/corpus` relative to the repository root."""
    env = os.environ.get("VOXLOOP_CORPUS")
    return Path(os.path.normpath(os.path.abspath(env))) if env else DEFAULT_CORPUS


# -- one event loop for the whole session ----------------------------------------------------------
@pytest.fixture(scope="session")
def event_loop_for_models() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


@pytest.fixture(scope="session")
def arun(event_loop_for_models: asyncio.AbstractEventLoop) -> Arun[Any]:
    """arun(coro) runs `coro` to completion on the session's event loop and returns its result."""

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return event_loop_for_models.run_until_complete(coro)

    return run


def load_or_skip(arun: Arun[Any], provider: P) -> P:
    """Load a provider; skip (with the install command) when its package or model is missing."""
    try:
        arun(provider.load())
    except (ModelMissing, MissingExtra) as e:
        arun(provider.aclose())
        pytest.skip(f"{type(provider).__name__} is not installed: {e.message}. Install hint: {e.hint}")
    return provider


def _provider(arun: Arun[Any], provider: P) -> Iterator[P]:
    yield load_or_skip(arun, provider)
    arun(provider.aclose())


# -- the real providers, loaded once ---------------------------------------------------------------
@pytest.fixture(scope="session")
def vad(arun: Arun[Any]) -> Iterator[VAD]:
    from voxloop.providers.vad.silero import SileroVAD

    yield from _provider(arun, SileroVAD())


@pytest.fixture(scope="session")
def stt(arun: Arun[Any]) -> Iterator[STT]:
    from voxloop.config import STTConfig
    from voxloop.providers.stt.whisper import WhisperSTT

    yield from _provider(arun, WhisperSTT(STTConfig(model="tiny.en")))


@pytest.fixture(scope="session")
def llm(arun: Arun[Any]) -> Iterator[LLM]:
    from voxloop.config import LLMConfig
    from voxloop.providers.llm.llama import LlamaLLM

    yield from _provider(arun, LlamaLLM(LLMConfig(model="qwen2.5-1.5b")))


@pytest.fixture(scope="session")
def tts(arun: Arun[Any]) -> Iterator[TTS]:
    from voxloop.providers.tts.hibari import HibariTTS

    yield from _provider(arun, HibariTTS())


@pytest.fixture(scope="session")
def piper(arun: Arun[Any]) -> Iterator[TTS]:
    from voxloop.config import TTSConfig
    from voxloop.providers.tts.piper import PiperTTS

    yield from _provider(arun, PiperTTS(TTSConfig(provider="piper", voice="joe")))


@pytest.fixture(scope="session")
def providers(vad: VAD, stt: STT, llm: LLM, tts: TTS) -> Providers:
    """The session's loaded models as one bundle (closed by their own fixtures, not here)."""
    return Providers(vad, stt, llm, tts)


# -- the speech corpus -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Corpus:
    root: Path
    clips: dict[str, Clip]
    labels: dict[str, tuple[float, float]]  # id -> (speech start, speech end) in seconds

    def clip(self, clip_id: str) -> Clip:
        if clip_id not in self.clips:
            pytest.skip(f"the corpus at {self.root} has no clip {clip_id!r}")
        return self.clips[clip_id]

    def audio(self, clip_id: str) -> Samples:
        """The clip as mono float32 at 16 kHz."""
        return self.clip(clip_id).audio()

    def speech(self, clip_id: str) -> tuple[float, float]:
        if clip_id not in self.labels:
            pytest.skip(f"{self.root / 'speech_end_labels.tsv'} has no row for {clip_id!r}")
        return self.labels[clip_id]


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    root = corpus_dir()
    if not (root / "manifest.tsv").is_file():
        pytest.skip(
            f"speech corpus not found at {root} (expected manifest.tsv and WAVs there): put it at "
            "../shared/corpus beside the repository or set VOXLOOP_CORPUS to its folder"
        )
    clips = {c.id: c for c in load_corpus(root)}
    labels: dict[str, tuple[float, float]] = {}
    label_file = root / "speech_end_labels.tsv"
    if label_file.is_file():
        with open(label_file, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                labels[row["id"]] = (float(row["speech_start_s"]), float(row["speech_end_s"]))
    return Corpus(root, clips, labels)
