"""A language model that replies with scripted pieces, keyed by the last user message.

Each piece takes `delay` seconds on the loop clock (generation time), the first `first_delay` more. A script that is an exception
is raised after the first delay. Every `stream` call is kept as an `LLMCall`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field

from voxloop.providers.base import LLM, Message

Script = Sequence[str] | BaseException


@dataclass
class LLMCall:
    messages: list[Message]
    sent: int = 0  # pieces handed to the consumer
    finished: bool = False  # every piece was generated
    closed_early: bool = False  # the consumer closed or cancelled the stream before the end

    @property
    def user_text(self) -> str:
        return next((m.content for m in reversed(self.messages) if m.role == "user"), "")


@dataclass
class FakeLLM(LLM):
    replies: Mapping[str, Script] = field(default_factory=dict)
    default: Script = ("Sure", ",", " happy", " to", " help", ".")
    delay: float = 0.0
    first_delay: float = 0.0  # extra time before the first piece (a slow or stuck prompt evaluation)
    calls: list[LLMCall] = field(default_factory=list)
    prefills: list[list[Message]] = field(default_factory=list)
    name: str = "fake-llm"

    def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        call = LLMCall(list(messages))
        self.calls.append(call)
        return self._generate(call, self.replies.get(call.user_text, self.default))

    async def _generate(self, call: LLMCall, script: Script) -> AsyncGenerator[str, None]:
        try:
            await asyncio.sleep(self.first_delay)
            if isinstance(script, BaseException):
                await asyncio.sleep(self.delay)
                raise script
            for piece in script:
                await asyncio.sleep(self.delay)
                call.sent += 1
                yield piece
            call.finished = True
        except (GeneratorExit, asyncio.CancelledError):
            call.closed_early = True
            raise

    async def prefill(self, messages: Sequence[Message]) -> None:
        self.prefills.append(list(messages))
