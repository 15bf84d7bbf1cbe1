"""Hedged requests (providers/hedge.py): a backup races a first request that produced nothing in
time, the first to produce serves and the other is cancelled and closed. The streams here wait on
events, never on time; `after_s` is the only clock, and no assertion is about time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from conftest import run_guarded as run
from voxloop.providers.hedge import hedged


class Script:
    """A stream that waits for `go` (if any), then fails or yields its items; `closed` once done."""

    def __init__(self, items: tuple[str, ...], go: asyncio.Event | None = None, fail: str = "") -> None:
        self.items, self.go, self.fail = items, go, fail
        self.started = asyncio.Event()
        self.closed = False

    async def stream(self) -> AsyncGenerator[str, None]:
        self.started.set()
        try:
            if self.go is not None:
                await self.go.wait()
            if self.fail:
                raise RuntimeError(self.fail)
            for item in self.items:
                yield item
        finally:
            self.closed = True


async def collect(stream: AsyncGenerator[str, None]) -> list[str]:
    return [x async for x in stream]


def test_a_first_stream_that_answers_in_time_is_never_hedged() -> None:
    async def main() -> None:
        first, backup = Script(("a", "b")), Script(("x",))
        hedges: list[int] = []
        got = await collect(hedged(first.stream(), backup.stream, 30.0, lambda: hedges.append(1)))
        assert got == ["a", "b"] and hedges == [] and not backup.started.is_set()

    run(main())


def test_a_stalled_first_stream_is_raced_and_the_backup_serves() -> None:
    async def main() -> None:
        first, backup = Script(("a",), go=asyncio.Event()), Script(("x", "y"))
        won: list[int] = []
        got = await collect(hedged(first.stream(), backup.stream, 0.01, on_win=won.append))
        assert got == ["x", "y"] and won == [1]
        assert first.closed  # the stalled request is cancelled and closed

    run(main())


def test_a_slow_first_stream_still_wins_when_it_answers_first() -> None:
    async def main() -> None:
        go = asyncio.Event()
        first = Script(("a", "b"), go=go)
        backup = Script(("x",), go=asyncio.Event())  # never answers

        def start_backup() -> AsyncGenerator[str, None]:
            go.set()  # the first one answers as soon as the race begins
            return backup.stream()

        won: list[int] = []
        got = await collect(hedged(first.stream(), start_backup, 0.01, on_win=won.append))
        assert got == ["a", "b"] and won == [0] and backup.closed

    run(main())


def test_one_failing_while_the_other_runs_is_waited_out() -> None:
    async def main() -> None:
        go = asyncio.Event()
        first = Script((), go=go, fail="first broke")
        backup = Script(("x",), go=asyncio.Event())

        def start_backup() -> AsyncGenerator[str, None]:
            go.set()
            assert backup.go is not None
            backup.go.set()
            return backup.stream()

        assert await collect(hedged(first.stream(), start_backup, 0.01)) == ["x"]

    run(main())


def test_both_failing_raise_the_first_ones_error_and_a_quick_failure_is_not_hedged() -> None:
    async def main() -> None:
        first, backup = Script((), go=asyncio.Event(), fail="first broke"), Script((), fail="backup broke")

        def start_backup() -> AsyncGenerator[str, None]:
            assert first.go is not None
            first.go.set()
            return backup.stream()

        with pytest.raises(RuntimeError, match="first broke"):
            await collect(hedged(first.stream(), start_backup, 0.01))
        quick, unused = Script((), fail="at once"), Script(("x",))
        with pytest.raises(RuntimeError, match="at once"):
            await collect(hedged(quick.stream(), unused.stream, 30.0))
        assert not unused.started.is_set()

    run(main())


def test_closing_the_hedged_stream_early_closes_both() -> None:
    async def main() -> None:
        first = Script(("a", "b"), go=asyncio.Event())
        backup = Script(("x", "y"))
        stream = hedged(first.stream(), backup.stream, 0.01)
        assert await anext(stream) == "x"
        await stream.aclose()
        assert first.closed and backup.closed

    run(main())


def test_patience_asked_when_the_wait_is_over_can_put_the_backup_off() -> None:
    async def main() -> None:
        first, backup = Script(("a",), go=asyncio.Event()), Script(("x",))

        def patience() -> float:  # the first one has visibly started: it is given more time
            assert first.go is not None
            first.go.set()
            return 30.0

        got = await collect(hedged(first.stream(), backup.stream, 0.01, patience=patience))
        assert got == ["a"] and not backup.started.is_set()

    run(main())
