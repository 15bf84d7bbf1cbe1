"""The four loaded models a session uses. Loaded once; shared by every session."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from voxloop.config import AgentConfig
from voxloop.errors import MissingExtra, ModelMissing
from voxloop.providers import registry
from voxloop.providers.base import LLM, STT, TTS, VAD
from voxloop.providers.tts.cache import with_cache
from voxloop.providers.turn import TurnModel, create_turn_model
from voxloop.tools.toolbox import Toolbox

log = logging.getLogger("voxloop")


@dataclass
class Providers:
    vad: VAD
    stt: STT
    llm: LLM
    tts: TTS
    tools: Toolbox | None = None  # what the language model may call (`--tools`)
    turn: TurnModel | None = None  # the end-of-turn model beside the silence rules (`--turn-model`)
    tool_prompt: str = ""  # the system prompt with the tools, evaluated at load (`toolcall.warm`)

    @classmethod
    def from_config(cls, config: AgentConfig) -> Providers:
        providers = cls(
            registry.create_vad(config),
            registry.create_stt(config),
            registry.create_llm(config),
            with_cache(registry.create_tts(config), config),
        )
        if config.tools.module:
            from voxloop.agent.toolcall import tool_prompt, use_tools

            providers.tools = use_tools(config, providers.llm)
            providers.tool_prompt = tool_prompt(config, providers)
        providers.turn = create_turn_model(config.turn.model)
        return providers

    async def load(self) -> None:
        t0 = time.perf_counter()
        for kind, p in (
            ("voice activity detector", self.vad),
            ("speech recogniser", self.stt),
            ("language model", self.llm),
            ("voice", self.tts),
        ):
            log.info("loading the %s (%s)...", kind, p.name)
            await p.load()
        if self.turn is not None:
            log.info("loading the end-of-turn model (%s)...", self.turn.name)
            try:
                await self.turn.load()
            except (ModelMissing, MissingExtra) as e:
                if self.turn.required:
                    raise
                log.warning(
                    "no end-of-turn model (%s): turns end by the silence rules alone. %s", e.message, e.hint
                )
                self.turn = None
        if self.tools and self.tool_prompt:
            from voxloop.agent.toolcall import warm

            await warm(self.llm, self.tool_prompt)
        log.info("all models loaded and warmed up in %.1f s", time.perf_counter() - t0)

    async def aclose(self) -> None:
        for p in (self.vad, self.stt, self.llm, self.tts, *([self.turn] if self.turn else [])):
            await p.aclose()
