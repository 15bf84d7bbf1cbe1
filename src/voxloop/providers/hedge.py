"""Hedged requests: when a streamed request has produced nothing after `after_s`, a second one
(`backup()`, e.g. the same request on a fresh connection, or over another path) races it, and the
first to produce an item serves; the other is cancelled and closed.

A stalled connection then costs `after_s` plus the backup's own first item, not a whole deadline,
and a slow but alive provider does not fail: the first request goes on and may still win.
`patience()`, asked once when `after_s` passes, may ask for more time before the backup starts
(a server that has visibly started on the request is busy, not stalled: a second request would
only add to its load). Each
stream keeps its own deadlines; a failure of one while the other runs is waited out (the other
may still answer); when both fail, the first request's error is raised. A failure of the first
request before the backup started is raised at once (its caller retries as it would have).

Every step of either stream runs in a task owned here; closing the hedged stream cancels them and
closes both streams.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

T = TypeVar("T")
Won = Callable[[int], None]  # which stream won a race: 0 the first, 1 the backup


async def hedged(
    first: AsyncGenerator[T, None],
    backup: Callable[[], AsyncGenerator[T, None]],
    after_s: float,
    on_hedge: Callable[[], None] | None = None,
    on_win: Won | None = None,
    patience: Callable[[], float] | None = None,
) -> AsyncGenerator[T, None]:
    """The items of whichever of `first` and (after `after_s` without an item) `backup()`
    produces an item first."""
    streams: list[AsyncGenerator[T, None]] = [first]
    steps: dict[int, asyncio.Task[T]] = {}
    errors: dict[int, BaseException] = {}
    loop = asyncio.get_running_loop()
    hedge_at = loop.time() + after_s if after_s > 0 else None
    winner = -1
    got: list[T] = []  # the winner's first item (none: it ended without one)
    try:
        steps[0] = loop.create_task(_step(first))
        while winner < 0:
            timeout = None if hedge_at is None else max(0.0, hedge_at - loop.time())
            done, _ = await asyncio.wait(steps.values(), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done and patience is not None and (extra := patience()) > 0:
                hedge_at, patience = loop.time() + extra, None  # busy, not stalled: wait longer
                continue
            if not done:  # nothing yet: the backup starts
                hedge_at = None
                streams.append(backup())
                steps[1] = loop.create_task(_step(streams[1]))
                if on_hedge is not None:
                    on_hedge()
                continue
            for i in sorted(i for i, t in steps.items() if t in done):
                task = steps.pop(i)
                error = task.exception()
                if error is None or isinstance(error, StopAsyncIteration):
                    winner = i
                    got = [] if error is not None else [task.result()]
                    break
                errors[i] = error
            if winner < 0 and not steps:  # every stream started has failed
                raise errors.get(0) or errors[1]
        if len(streams) > 1 and on_win is not None:
            on_win(winner)
        await _drop(steps, streams, keep=winner)
        if not got:
            return
        yield got[0]
        async for more in streams[winner]:
            yield more
    finally:
        await _drop(steps, streams, keep=None)


async def _step(stream: AsyncGenerator[T, None]) -> T:
    return await anext(stream)


async def _drop(
    steps: dict[int, asyncio.Task[T]], streams: list[AsyncGenerator[T, None]], keep: int | None
) -> None:
    """Cancel the pending steps and close every stream but `keep`."""
    for i in [i for i in steps if i != keep]:
        task = steps.pop(i)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    for i, stream in enumerate(streams):
        if i != keep:
            with contextlib.suppress(Exception):
                await stream.aclose()
