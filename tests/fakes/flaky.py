"""Language models in trouble, as a cloud one is: `FlakyLLM` fails every request (and its load)
while `down` (or `load_error`) is set; `RetryingLLM` reports failed attempts and retries as
OpenAILLM does (providers/recovery.py) before it answers, each retry after `backoff_s`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from fakes.fake_llm import FakeLLM
from voxloop.providers.base import Message
from voxloop.providers.recovery import Incident, report


@dataclass
class FlakyLLM(FakeLLM):
    down: BaseException | None = None
    load_error: BaseException | None = None

    async def load(self) -> None:
        if self.load_error is not None:
            raise self.load_error

    def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        if self.down is not None:
            return self._fail(self.down)
        return super().stream(messages)

    async def _fail(self, error: BaseException) -> AsyncGenerator[str, None]:
        raise error
        yield ""  # pragma: no cover - makes this an async generator


@dataclass
class RetryingLLM(FakeLLM):
    failures: int = 0  # failed attempts before the one that answers
    backoff_s: float = 0.5
    category: str = "server"

    def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        return self._retrying(super().stream(messages))

    async def _retrying(self, answer: AsyncGenerator[str, None]) -> AsyncGenerator[str, None]:
        for attempt in range(1, self.failures + 1):
            report(Incident("error", "llm", self.name, self.category, "HTTP 503: scripted"))
            report(
                Incident(
                    "retry", "llm", self.name, self.category, "HTTP 503: scripted", attempt, self.backoff_s
                )
            )
            await asyncio.sleep(self.backoff_s)
        async for piece in answer:
            yield piece
