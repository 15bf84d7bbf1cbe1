"""What decodes the files: Whisper on every core, or any recogniser through its batch contract.

Measured on the shared corpus (65 files, 459 s; tiny.en, beam 5, word timings; 2 cores):
one model with two replicas on two threads of one core each 18.8-19.6x real time (one thread:
11.1x); two processes of one core each 12.1-12.3x (a model loaded twice, and no faster); one
decoder on two cores 8.5-8.6x (CTranslate2 splits one decode over two threads poorly). So
Whisper gets `workers` threads of one core each over one model with as many replicas.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from voxloop.audio.decode import read_audio
from voxloop.config import AgentConfig, STTConfig
from voxloop.providers.base import STT, BatchOptions, Transcript
from voxloop.providers.registry import create_stt

RATE = 16000
OPTIONS = BatchOptions(timings=True)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


class Engine(Protocol):
    workers: int

    async def load(self) -> None: ...

    async def transcribe(self, path: Path) -> Transcript:
        """The file decoded and transcribed (AudioFormatError when it cannot be decoded)."""
        ...

    async def aclose(self) -> None: ...


class WhisperEngine:
    """faster-whisper with `workers` threads of one core each over one model's replicas; each
    thread decodes its file and transcribes it (Whisper's offline path, beam 5, word timings)."""

    def __init__(self, config: STTConfig, workers: int) -> None:
        from voxloop.providers.stt.whisper_decoder import WhisperDecoder

        self.workers = workers
        self._config = replace(config, threads=1)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="voxloop-batch")
        self._decoder: WhisperDecoder | None = None

    async def load(self) -> None:
        from voxloop.providers.stt.whisper_decoder import WhisperDecoder

        loop = asyncio.get_running_loop()
        cfg, n = self._config, self.workers
        self._decoder = await loop.run_in_executor(self._pool, lambda: WhisperDecoder(cfg.model, cfg, n))

    async def transcribe(self, path: Path) -> Transcript:
        decoder = self._decoder
        if decoder is None:
            raise RuntimeError("WhisperEngine.load() must run before it transcribes")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, lambda: decoder.decode_batch(read_audio(path, RATE), OPTIONS)
        )

    async def aclose(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class ProviderEngine:
    """Any recogniser (or fallback chain) from the registry, through `STT.transcribe_batch`; the
    file is decoded in a thread, `workers` files at a time (a local model's own worker still
    takes them one by one; a cloud one takes them side by side)."""

    def __init__(self, config: STTConfig, workers: int) -> None:
        self.workers = workers
        self._stt: STT = create_stt(AgentConfig(stt=config))

    async def load(self) -> None:
        await self._stt.load()

    async def transcribe(self, path: Path) -> Transcript:
        audio = await asyncio.to_thread(read_audio, path, RATE)
        return await self._stt.transcribe_batch(audio, OPTIONS)

    async def aclose(self) -> None:
        await self._stt.aclose()


def make_engine(config: STTConfig, workers: int = 0) -> Engine:
    """Whisper's own engine for `--stt whisper`, the provider's batch contract otherwise;
    `workers` 0: one per core."""
    n = workers or default_workers()
    if config.provider == "whisper":
        return WhisperEngine(config, n)
    return ProviderEngine(config, n)
