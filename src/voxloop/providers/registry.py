"""Provider names -> "module:Class", imported only when asked for. No import-time magic.

A comma-separated name (`openai,llama`) is a fallback chain of those providers, in that order
(providers/fallback.py); every member gets the same settings of its kind.
"""

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
        "deepgram": "voxloop.providers.stt.deepgram:DeepgramSTT",
    },
    "llm": {
        "llama": "voxloop.providers.llm.llama:LlamaLLM",
        "openai": "voxloop.providers.llm.openai:OpenAILLM",
    },
    "tts": {
        "hibari": "voxloop.providers.tts.hibari:HibariTTS",
        "piper": "voxloop.providers.tts.piper:PiperTTS",
        "deepgram": "voxloop.providers.tts.deepgram:DeepgramTTS",
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


FALLBACK = {
    "stt": "voxloop.providers.fallback_stt:FallbackSTT",
    "llm": "voxloop.providers.fallback:FallbackLLM",
    "tts": "voxloop.providers.fallback:FallbackTTS",
}


def names(kind: str, provider: str) -> list[str]:
    """The provider names in `provider` (one, or a comma-separated chain), each checked."""
    chain = [n.strip() for n in provider.split(",") if n.strip()]
    if len(chain) > 1 and kind not in FALLBACK:
        raise UnknownProvider(f"a {kind} cannot be a fallback chain ('{provider}')", "name one provider")
    if len(set(chain)) != len(chain) or not chain:
        raise UnknownProvider(
            f"'{provider}' is not a {kind} chain", "name each provider once, e.g. openai,llama"
        )
    for name in chain:
        provider_class(kind, name)
    return chain


def _create(kind: str, provider: str, config: AgentConfig, settings: object) -> Any:
    chain = names(kind, provider)
    members = [provider_class(kind, n)(settings) for n in chain]
    if len(members) == 1:
        return members[0]
    module, _, cls = FALLBACK[kind].partition(":")
    return getattr(importlib.import_module(module), cls)(members, config.fallback)


def create_vad(config: AgentConfig) -> VAD:
    return provider_class("vad", config.vad.provider)()


def create_stt(config: AgentConfig) -> STT:
    return _create("stt", config.stt.provider, config, config.stt)


def create_llm(config: AgentConfig) -> LLM:
    return _create("llm", config.llm.provider, config, config.llm)


def create_tts(config: AgentConfig) -> TTS:
    return _create("tts", config.tts.provider, config, config.tts)
