"""Shared test helpers: a virtual-time event loop, fake providers, a paced microphone.

Conversation tests run on `VirtualTimeLoop`: its clock stands still while there is work to do and
jumps straight to the next timer when the loop would otherwise wait. `asyncio.sleep(2.0)` costs no
wall time, and every run of a test sees exactly the same clock readings.

Import the helpers with `from conftest import ...` (pytest puts this directory on `sys.path`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import selectors
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pytest

from fakes import FakeLLM, FakeSTT, FakeTTS, FakeVAD
from voxloop.agent import events as ev
from voxloop.agent.chunker import clean_for_speech
from voxloop.agent.providers import Providers
from voxloop.agent.session import VoiceSession
from voxloop.config import AgentConfig, TurnConfig
from voxloop.providers.base import Message, Samples
from voxloop.redact.logs import RedactPII
from voxloop.transports.timeline import TimelineSink

T = TypeVar("T")
E = TypeVar("E", bound=ev.Event)


# -- virtual time ----------------------------------------------------------------------------------
class VirtualTimeError(RuntimeError):
    """The loop would block forever, or virtual time ran past the test's limit."""


class _VirtualSelector:
    """Wraps the real selector. Where the loop would block waiting for a timer, time jumps instead."""

    def __init__(self, inner: selectors.BaseSelector) -> None:
        self._inner = inner
        self.loop: VirtualTimeLoop | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self.loop
        assert loop is not None
        if timeout is not None and timeout <= 0:
            return self._inner.select(0)
        if loop.threads_pending:
            # A worker thread is busy: in virtual time its work takes no time, so wait (for real) for
            # it to report back through the loop's self-pipe before any timer may fire.
            return self._inner.select(None)
        events = self._inner.select(0)  # I/O already waiting (or a wake-up from a thread)?
        if events:
            return events
        if timeout is None:
            raise VirtualTimeError("deadlock: nothing is scheduled and nothing can wake the loop")
        loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose `time()` is a virtual clock (see the module docstring).

    Work handed to threads through `run_in_executor` is tracked: while any is pending the clock
    does not move and the loop waits for it for real. Every task the loop creates is kept in
    `tasks` (strong references), so a task nobody awaits any more is still found (and cancelled
    cleanly when the loop shuts down) instead of vanishing with the garbage collector.
    """

    def __init__(self, start: float = 1000.0, max_virtual_s: float = 3600.0) -> None:
        self._now = start
        self._limit = start + max_virtual_s
        self.threads_pending = 0
        self.tasks: list[asyncio.Task[Any]] = []
        selector = _VirtualSelector(selectors.DefaultSelector())
        super().__init__(selector)  # type: ignore[arg-type]
        selector.loop = self

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
        if self._now > self._limit:
            raise VirtualTimeError(f"virtual time passed its limit ({self._limit:.0f} s): a runaway test?")

    def create_task(self, coro: Any, **kw: Any) -> asyncio.Task[Any]:
        task = super().create_task(coro, **kw)
        self.tasks.append(task)
        return task

    def run_in_executor(  # type: ignore[override]
        self, executor: Executor | None, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        fut = super().run_in_executor(executor, func, *args)
        self._track(fut)
        return fut

    async def shutdown_default_executor(self) -> None:
        self.threads_pending += 1  # joins the executor in a thread of its own
        try:
            await super().shutdown_default_executor()
        finally:
            self.threads_pending -= 1

    def _track(self, fut: asyncio.Future[Any]) -> None:
        self.threads_pending += 1

        def done(_: asyncio.Future[Any]) -> None:
            self.threads_pending -= 1

        fut.add_done_callback(done)


def run_virtual(coro: Coroutine[Any, Any, T], *, max_virtual_s: float = 3600.0) -> T:
    """Run `coro` to completion on a fresh `VirtualTimeLoop`; the loop is closed afterwards."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(max_virtual_s=max_virtual_s)) as runner:
        return runner.run(coro)


def run_guarded(coro: Awaitable[T], hang_s: float = 30.0) -> T:
    """Run `coro` to completion on a fresh event loop in real time (real sockets, real threads);
    `hang_s` only fails a test that hangs: nothing is timed."""

    async def guard() -> T:
        async with asyncio.timeout(hang_s):
            return await coro

    return asyncio.run(guard())


def pending_tasks(since: int = 0) -> list[asyncio.Task[Any]]:
    """Tasks the running VirtualTimeLoop created (from index `since` on) that have not finished,
    apart from the caller's. Unlike `asyncio.all_tasks()` this also finds abandoned tasks."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop), "pending_tasks() needs run_virtual()"
    me = asyncio.current_task()
    return [t for t in loop.tasks[since:] if t is not me and not t.done()]


def tasks_created() -> int:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    return len(loop.tasks)


# -- providers and audio ---------------------------------------------------------------------------
def make_providers(
    vad: FakeVAD | None = None,
    stt: FakeSTT | None = None,
    llm: FakeLLM | None = None,
    tts: FakeTTS | None = None,
) -> Providers:
    """A `Providers` made of fakes (the defaults where none is given)."""
    return Providers(vad or FakeVAD(), stt or FakeSTT(), llm or FakeLLM(), tts or FakeTTS())


def tone(seconds: float, rate: int = 16000, freq: float = 440.0, amplitude: float = 0.3) -> Samples:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float, rate: int = 16000) -> Samples:
    return np.zeros(int(round(seconds * rate)), np.float32)


class Mic:
    """Feeds a session at real-time pace (on the loop's clock), one chunk when it is complete."""

    def __init__(self, session: VoiceSession, rate: int = 16000, chunk_ms: int = 20) -> None:
        self.session, self.rate = session, rate
        self.chunk = rate * chunk_ms // 1000
        self.fed = 0  # samples fed so far
        self.t0: float | None = None

    async def feed(self, audio: Samples) -> None:
        loop = asyncio.get_running_loop()
        if self.t0 is None:
            self.t0 = loop.time()
        for i in range(0, len(audio), self.chunk):
            part = audio[i : i + self.chunk]
            due = self.t0 + (self.fed + len(part)) / self.rate
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)  # models the microphone: this audio is not recorded yet
            self.fed += len(part)
            await self.session.push_audio(part, self.rate)

    async def speak(self, seconds: float, **kw: Any) -> None:
        await self.feed(tone(seconds, self.rate, **kw))

    async def silence(self, seconds: float) -> None:
        await self.feed(silence(seconds, self.rate))

    async def silence_until(self, done: Callable[[], bool], max_s: float = 20.0) -> bool:
        """Feed silence chunk by chunk until `done()` or `max_s` seconds; True if done."""
        for _ in range(int(max_s * self.rate / self.chunk)):
            if done():
                return True
            await self.feed(silence(self.chunk / self.rate, self.rate))
        return done()


@dataclass
class Conversation:
    session: VoiceSession
    sink: TimelineSink
    mic: Mic
    providers: Providers
    events: list[ev.Event] = field(default_factory=list)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def kinds(self, *keep: type[ev.Event]) -> list[str]:
        """Event type names in order (only those of `keep`, if given)."""
        return [type(e).__name__ for e in self.events if not keep or isinstance(e, keep)]

    def completed(self, n: int = 1) -> Callable[[], bool]:
        return lambda: len(self.of(ev.TurnCompleted)) + len(self.of(ev.TurnDropped)) >= n

    async def turn(self, seconds: float = 1.0, *, lead_s: float = 0.3, max_s: float = 20.0) -> None:
        """The user speaks for `seconds` after `lead_s` of silence, then is silent until a turn ends."""
        n = len(self.of(ev.TurnCompleted)) + len(self.of(ev.TurnDropped)) + 1
        await self.mic.silence(lead_s)
        await self.mic.speak(seconds)
        assert await self.mic.silence_until(self.completed(n), max_s), (
            f"turn {n} did not finish: {self.kinds()}"
        )

    @property
    def agent_audio_s(self) -> float:
        return sum(len(p.audio) for p in self.sink.placed) / self.sink.sample_rate


@asynccontextmanager
async def conversation(
    providers: Providers | None = None, config: AgentConfig | None = None
) -> AsyncIterator[Conversation]:
    """A session on a TimelineSink with a paced Mic; closed on exit, which must leave no task behind."""
    providers = providers or make_providers()
    first_task = tasks_created()
    await providers.load()
    sink = TimelineSink(providers.tts.sample_rate)
    session = VoiceSession(providers, sink, config or AgentConfig())
    conv = Conversation(session, sink, Mic(session), providers)
    session.subscribe(conv.events.append)
    try:
        yield conv
    finally:
        await session.aclose()
        await providers.aclose()
    left = pending_tasks(first_task)
    assert not left, f"tasks left running after VoiceSession.aclose(): {left}"


# -- scripting helpers shared by the session tests --------------------------------------------------
LONG_REPLY = (
    "One",
    " two",
    " three",
    " four",
    " five",
    ".",
    " Six",
    " seven",
    " eight",
    " nine",
    " ten",
    ".",
    " Eleven",
    " twelve",
    " thirteen",
    " fourteen",
    " fifteen",
    ".",
)
LONG_TEXT = clean_for_speech("".join(LONG_REPLY))  # 15 words: 3.75 s of FakeTTS audio


def config(**turn: object) -> AgentConfig:
    return AgentConfig(turn=dataclasses.replace(TurnConfig(), **turn))


def roles(messages: list[Message]) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in messages]


# -- the process-wide log filter of --redact-logs --------------------------------------------------
def remove_redact_filters() -> None:
    """Take off the log filter a session or command with redact_logs installs process-wide."""
    for h in [*logging.getLogger().handlers, logging.lastResort]:
        if h is not None:
            for f in [f for f in h.filters if isinstance(f, RedactPII)]:
                h.removeFilter(f)


@pytest.fixture
def no_redact_filters_left() -> Iterator[None]:
    """Use in tests that turn redact_logs on: the filter is taken off again afterwards."""
    yield
    remove_redact_filters()
