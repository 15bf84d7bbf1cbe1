"""The model names the compatible APIs accept, and the local model each stands for: ONE table.

Clients name the service's own models; voxloop runs its loaded models for all of them. A name
not in the table (and not a local model's own name) gets the API's own "model not found" error.

| name                                                          | kind | local model                  |
|---------------------------------------------------------------|------|------------------------------|
| whisper-1, gpt-4o-transcribe, gpt-4o-mini-transcribe, nova-3, | stt  | the loaded recogniser        |
| nova-3-general, nova-2, nova-2-general, nova-3-medical,       |      | (Whisper tiny.en by default) |
| nova-2-{meeting,phonecall,conversationalai,voicemail,medical},|      |                              |
| nova, enhanced, whisper-{tiny,base,small,medium,large}        |      |                              |
| tts-1, tts-1-hd, gpt-4o-mini-tts, aura-2-* , aura-*           | tts  | the loaded voice (hibari)    |
| gpt-4o-mini, gpt-4o, gpt-4.1, gpt-4.1-mini, gpt-4.1-nano,     | llm  | the loaded language model    |
| gpt-3.5-turbo, gpt-5-mini, gpt-5-nano                         |      |                              |
| the local models' own names (`qwen2.5-1.5b`, `tiny.en`, ...)  | each | that model, when it is loaded|

Every kind maps to the one model of that kind the server loaded (`voxloop serve --stt-model ...`,
`--llm-model ...`, `--tts ...`): the names say which kind of work is asked for, not which weights.
"""

from __future__ import annotations

from typing import Literal

from voxloop.config import AgentConfig

Kind = Literal["stt", "tts", "llm"]

MODEL_NAMES: dict[str, Kind] = {
    # speech to text
    "whisper-1": "stt",
    "gpt-4o-transcribe": "stt",
    "gpt-4o-mini-transcribe": "stt",
    "nova-3": "stt",
    "nova-3-general": "stt",
    "nova-2": "stt",
    "nova-2-general": "stt",
    # Deepgram's other recognisers (its domain models and its hosted Whisper)
    "nova-3-medical": "stt",
    "nova-2-meeting": "stt",
    "nova-2-phonecall": "stt",
    "nova-2-conversationalai": "stt",
    "nova-2-voicemail": "stt",
    "nova-2-medical": "stt",
    "nova": "stt",
    "enhanced": "stt",
    "whisper-tiny": "stt",
    "whisper-base": "stt",
    "whisper-small": "stt",
    "whisper-medium": "stt",
    "whisper-large": "stt",
    # text to speech
    "tts-1": "tts",
    "tts-1-hd": "tts",
    "gpt-4o-mini-tts": "tts",
    # chat
    "gpt-4o-mini": "llm",
    "gpt-4o": "llm",
    "gpt-4.1": "llm",
    "gpt-4.1-mini": "llm",
    "gpt-4.1-nano": "llm",
    "gpt-3.5-turbo": "llm",
    "gpt-5-mini": "llm",
    "gpt-5-nano": "llm",
}
# families named by a prefix (Deepgram's voices: aura-2-thalia-en, aura-asteria-en, ...)
MODEL_PREFIXES: tuple[tuple[str, Kind], ...] = (("aura-", "tts"),)


def local_names(config: AgentConfig) -> dict[str, Kind]:
    """The loaded models' own names (a client may name them directly)."""
    stt = config.stt.model if config.stt.provider == "whisper" else config.stt.provider
    return {
        stt: "stt",
        f"{config.stt.provider}-{config.stt.model}": "stt",
        config.llm.model: "llm",
        config.tts.provider: "tts",
        f"{config.tts.provider}-{config.tts.voice}": "tts",
    }


def kind_of(name: str, config: AgentConfig) -> Kind | None:
    """What kind of model `name` stands for here; None when it stands for nothing."""
    name = name.strip()
    found = MODEL_NAMES.get(name) or local_names(config).get(name)
    if found is not None:
        return found
    return next((kind for prefix, kind in MODEL_PREFIXES if name.startswith(prefix)), None)


def serves(name: str, kind: Kind, config: AgentConfig) -> bool:
    """Does `name` name a model of this kind here?"""
    return kind_of(name, config) == kind


def listed(config: AgentConfig) -> list[tuple[str, Kind]]:
    """Every exact name (the table, then the local names), for model listings."""
    names = {**MODEL_NAMES, **local_names(config)}
    return list(names.items())
