"""Provider names -> "module:Class", imported only when asked for. No import-time magic."""

from __future__ import annotations

import importlib
from typing import Any

from voxloop.config import AgentConfig
from voxloop.errors import UnknownProvider
from voxloop.providers.base import LLM, STT, TTS, VAD

PROVIDERS: dict[str, dict[str, str]] = {
    "vad": {"silero": "voxloop.providers.vad.silero:SileroVAD"},
    "stt": {
        "whisper": "voxloop.providers.stt.whisper:WhisperSTT",
        "moonshine": "voxloop.providers.stt.moonshine:MoonshineSTT",
    },
    "llm": {"llama": "voxloop.providers.llm.llama:LlamaLLM"},
    "tts": {
        "hibari": "voxloop.providers.tts.hibari:HibariTTS",
        "piper": "voxloop.providers.tts.piper:PiperTTS",
    },
}


def provider_class(kind: str, name: str) -> type[Any]:
    table = PROVIDERS.get(kind)
    if table is None:
        raise UnknownProvider(f"unknown provider kind '{kind}'", f"kinds: {', '.join(PROVIDERS)}")
    target = table.get(name)
    if target is None:
        raise UnknownProvider(f"unknown {kind} provider '{name}'", f"available: {', '.join(table)}")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def create_vad(config: AgentConfig) -> VAD:
    return provider_class("vad", config.vad.provider)()


def create_stt(config: AgentConfig) -> STT:
    return provider_class("stt", config.stt.provider)(config.stt)


def create_llm(config: AgentConfig) -> LLM:
    return provider_class("llm", config.llm.provider)(config.llm)


def create_tts(config: AgentConfig) -> TTS:
    return provider_class("tts", config.tts.provider)(config.tts)
