"""Fallback chains (`--llm openai,llama`, `--tts deepgram,hibari`, `--stt deepgram,whisper`): one
provider made of several, each the same contract.

The first member that is up serves. A member that fails past its own retries (before it produced
anything: words already said are not taken back) is marked down, the request goes on with the next
member at once (an `Incident("fallback")`), and the conversation stays there. Every member but
the last knows a fallback stands behind it (`Provider.has_fallback`): it gives an endpoint it
cannot reach at all (refused, no such host, no connection in time) up at once rather than
retrying it with back-off. After a cool-down,
a probe off the conversation's path (a one-word request, in a task of the chain's own) tries the
member again; when it answers, it is up and serves again from the next request on. A member that
cannot be loaded (a cloud one without a key, or unreachable) does not stop the start: it is down
from the beginning and probed like the others. The local stack, last, is the natural last resort.

`Chain.state()` and `Chain.incidents` tell what happened, for a benchmark or a status page.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from voxloop.audio.pcm import resample
from voxloop.config import FallbackConfig
from voxloop.errors import ProviderError, classify
from voxloop.providers.base import LLM, TTS, Message, Provider, Samples, Sampling, ToolCall, Usage
from voxloop.providers.recovery import Incident, report

log = logging.getLogger("voxloop.fallback")
P = TypeVar("P", bound=Provider)
T = TypeVar("T")


class Chain(Generic[P]):
    def __init__(
        self, stage: str, members: Sequence[P], config: FallbackConfig, probe: Callable[[P], Awaitable[None]]
    ) -> None:
        if len(members) < 2:
            raise ValueError("a fallback chain needs at least two members")
        self.stage, self.members, self.config, self._probe = stage, list(members), config, probe
        for member in self.members[:-1]:
            member.has_fallback = True
        self._down: dict[int, int] = {}  # member index -> failed probes since it went down
        self._probes: dict[int, asyncio.Task[None]] = {}
        self._closed = False  # closed: no probe is scheduled any more
        self.incidents: deque[Incident] = deque(maxlen=200)

    @property
    def name(self) -> str:
        return ",".join(m.name for m in self.members)

    def order(self) -> list[int]:
        """Members to try, in order: those that are up (all of them, primary first, when none is)."""
        up = [i for i in range(len(self.members)) if i not in self._down]
        return up or list(range(len(self.members)))

    def active(self) -> P:
        return self.members[self.order()[0]]

    def state(self) -> dict[str, str]:
        return {m.name: "down" if i in self._down else "up" for i, m in enumerate(self.members)}

    def _note(self, incident: Incident) -> None:
        self.incidents.append(incident)
        report(incident)

    def failed(self, i: int, error: BaseException, to: int | None) -> None:
        """Member `i` failed past its retries: down until a probe finds it back; `to` takes over."""
        member = self.members[i]
        message = getattr(error, "message", "") or str(error) or type(error).__name__
        if not getattr(error, "reported", False):
            self._note(Incident("error", self.stage, member.name, classify(error), message))
        if to is not None:
            self._note(
                Incident(
                    "fallback",
                    self.stage,
                    member.name,
                    classify(error),
                    message,
                    to_provider=self.members[to].name,
                )
            )
        if i in self._down:
            return
        self._down[i] = 0
        wait = self.config.cooldown_s
        retry_after = getattr(error, "retry_after", None)
        self._schedule(i, max(wait, retry_after or 0.0))

    def _schedule(self, i: int, wait: float) -> None:
        if self._closed:  # a request that failed as the chain closed: nobody is left to probe for
            return
        # a context of its own: the probe belongs to no session's turn (see recovery.reporting)
        task = asyncio.get_running_loop().create_task(
            self._probe_after(i, wait), context=contextvars.Context()
        )
        self._probes[i] = task

    async def _probe_after(self, i: int, wait: float) -> None:
        await asyncio.sleep(wait)
        member = self.members[i]
        try:
            async with asyncio.timeout(self.config.probe_timeout_s):
                await member.load()
                await self._probe(member)
        except Exception as e:
            fails = self._down[i] = self._down.get(i, 0) + 1
            wait = min(self.config.max_cooldown_s, self.config.cooldown_s * 2**fails)
            log.info(
                "%s: %s is still down (%s: %s); next probe in %.0f s",
                self.stage,
                member.name,
                classify(e),
                e,
                wait,
            )
            self._schedule(i, max(wait, getattr(e, "retry_after", None) or 0.0))
            return
        self._down.pop(i, None)
        self._probes.pop(i, None)
        self._note(Incident("recovered", self.stage, member.name))

    async def serve(self, open_: Callable[[P], AsyncGenerator[T, None]]) -> AsyncGenerator[T, None]:
        """The items of the first member that can serve the request `open_` makes of it."""
        order = self.order()
        for n, i in enumerate(order):
            produced = False
            try:
                async with contextlib.aclosing(open_(self.members[i])) as items:
                    async for item in items:
                        produced = True
                        yield item
                return
            except Exception as e:
                if produced:
                    raise  # what was produced has been used: there is no taking it back
                nxt = order[n + 1] if n + 1 < len(order) else None
                self.failed(i, e, nxt)
                if nxt is None:
                    raise

    async def load(self) -> None:
        """Load every member; one that cannot be loaded is down (and probed), unless all fail."""
        errors: list[BaseException] = []
        for i, member in enumerate(self.members):
            try:
                await member.load()
            except Exception as e:
                errors.append(e)
                log.warning(
                    "%s: %s could not be loaded (%s); the chain starts without it and tries it again later",
                    self.stage,
                    member.name,
                    getattr(e, "message", "") or e,
                )
                self.failed(i, e, None)
        if len(errors) == len(self.members):
            raise ProviderError(
                f"no {self.stage} of the chain {self.name} could be loaded",
                "; ".join(
                    f"{m.name}: {getattr(e, 'message', '') or e}"
                    for m, e in zip(self.members, errors, strict=True)
                ),
                category=classify(errors[-1]),
            ) from errors[-1]

    async def aclose(self) -> None:
        """Cancel the probes (none is scheduled after this) and close every member. Whoever made
        the chain closes it: a probe left pending outlives its event loop."""
        self._closed = True
        probes, self._probes = list(self._probes.values()), {}
        for task in probes:
            task.cancel()
        await asyncio.gather(*probes, return_exceptions=True)
        for member in self.members:
            await member.aclose()


class FallbackLLM(LLM):
    def __init__(self, members: Sequence[LLM], config: FallbackConfig | None = None) -> None:
        self.chain = Chain("llm", members, config or FallbackConfig(), _probe_llm)
        self.name = self.chain.name

    async def load(self) -> None:
        await self.chain.load()

    async def aclose(self) -> None:
        await self.chain.aclose()

    def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        return self.chain.serve(lambda m: m.stream(messages))

    def stream_with(
        self, messages: Sequence[Message], sampling: Sampling, usage: Usage | None = None
    ) -> AsyncGenerator[str, None]:
        return self.chain.serve(lambda m: m.stream_with(messages, sampling, usage))

    def stream_tools(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]]
    ) -> AsyncGenerator[str | ToolCall, None]:
        return self.chain.serve(lambda m: m.stream_tools(messages, tools))  # each in its own format

    async def prefill(self, messages: Sequence[Message]) -> None:
        await self.chain.active().prefill(messages)


async def _probe_llm(llm: LLM) -> None:
    async with contextlib.aclosing(
        llm.stream_with([Message("user", "Say OK.")], Sampling(max_tokens=1))
    ) as s:
        async for _ in s:
            break


class FallbackTTS(TTS):
    """Audio from any member comes at the primary's sample rate."""

    def __init__(self, members: Sequence[TTS], config: FallbackConfig | None = None) -> None:
        self.chain = Chain("tts", members, config or FallbackConfig(), _probe_tts)
        self.name = self.chain.name
        self.sample_rate = members[0].sample_rate

    async def load(self) -> None:
        await self.chain.load()

    async def aclose(self) -> None:
        await self.chain.aclose()

    def synthesize(self, text: str) -> AsyncGenerator[Samples, None]:
        return self.chain.serve(lambda m: self._at_rate(m, m.synthesize(text)))

    def synthesize_with(self, text: str, speed: float = 1.0) -> AsyncGenerator[Samples, None]:
        return self.chain.serve(lambda m: self._at_rate(m, m.synthesize_with(text, speed)))

    async def _at_rate(
        self, member: TTS, chunks: AsyncGenerator[Samples, None]
    ) -> AsyncGenerator[Samples, None]:
        async with contextlib.aclosing(chunks):
            async for samples in chunks:
                yield (
                    samples
                    if member.sample_rate == self.sample_rate
                    else resample(samples, member.sample_rate, self.sample_rate)
                )


async def _probe_tts(tts: TTS) -> None:
    async with contextlib.aclosing(tts.synthesize("OK.")) as s:
        async for _ in s:
            break
