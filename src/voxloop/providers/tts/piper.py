"""Piper (en_US joe, 22.05 kHz). Optional: the piper-tts runtime is GPL-3.0, the voice CC0."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import numpy as np

from voxloop.audio.pcm import normalize_loudness
from voxloop.config import TTSConfig
from voxloop.errors import ModelMissing
from voxloop.models import model_path
from voxloop.providers._imports import require
from voxloop.providers._worker import Worker
from voxloop.providers.base import TTS, Samples

log = logging.getLogger("voxloop.tts")
VOICES = {"joe": "joe"}


class PiperTTS(TTS):
    name = "piper"
    sample_rate = 22050

    def __init__(self, config: TTSConfig | None = None) -> None:
        self.config = config or TTSConfig(provider="piper", voice="joe")
        if self.config.voice not in VOICES:
            self.config.voice = "joe"
        self._voice: Any = None
        self._syn: Any = None
        self._worker = Worker("tts-piper")

    async def load(self) -> None:
        if self._voice is None:
            await self._worker.run(self._load)

    def _load(self) -> None:
        piper = require("piper", "piper")
        path = model_path(VOICES[self.config.voice])
        if not path.with_name(path.name + ".json").exists():
            raise ModelMissing(
                f"Piper voice config {path}.json is missing", 'reinstall: pip install "voxloop[piper]"'
            )
        t0 = time.perf_counter()
        self._voice = piper.PiperVoice.load(path)
        v = self.config.variation
        self._syn = piper.SynthesisConfig(
            length_scale=1.0 / max(self.config.speed, 0.1), noise_scale=0.667 * v, noise_w_scale=0.8 * v
        )
        self.sample_rate = int(self._voice.config.sample_rate)
        list(self._chunks("Hello."))
        log.info("tts piper/%s loaded in %.1f s", self.config.voice, time.perf_counter() - t0)

    def _chunks(self, text: str) -> Iterator[Samples]:
        for chunk in self._voice.synthesize(text, syn_config=self._syn):
            audio = np.asarray(chunk.audio_float_array, dtype=np.float32)
            yield normalize_loudness(audio, self.config.loudness_dbfs)

    def synthesize(self, text: str) -> AsyncGenerator[Samples, None]:
        if self._voice is None:
            raise RuntimeError("PiperTTS.load() must run before synthesize()")
        return self._worker.iterate(lambda: self._chunks(text))

    async def aclose(self) -> None:
        self._worker.shutdown()
