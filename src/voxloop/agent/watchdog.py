"""Deadlines for the reply's stages: nothing may leave the caller in silence without a reason.

`watched` passes an async stream's items on, but if the first is slow it calls `on_slow` once
(the reply says a filler such as "One moment."), and if any item takes longer than `timeout_s`
it abandons the stream with StageTimeout, which the session reports as an error event (a
stage that shows signs of life, `alive`, such as a retry, gets its deadline counted from then).
`played_out` waits for the speaker to finish: its queue empty for `idle_ms`, or a ceiling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TypeVar

from voxloop.errors import StageTimeout
from voxloop.transports.base import AudioSink

T = TypeVar("T")
log = logging.getLogger("voxloop.watchdog")
_END = object()


async def watched(
    stream: AsyncIterator[T],
    stage: str,
    timeout_s: float,
    slow_s: float = 0.0,
    on_slow: Callable[[], None] | None = None,
    alive: Callable[[], float] | None = None,
) -> AsyncGenerator[T, None]:
    """`alive()`: the loop time of the stage's last sign of life other than an item (a provider
    retrying or moving to the next of its chain: it is working on it); the deadline counts from
    the later of it and the wait's start. The provider's own deadlines bound its retries."""
    loop = asyncio.get_running_loop()
    first = True
    while True:
        nxt: asyncio.Task[object] = loop.create_task(anext(stream, _END))
        try:
            start = loop.time()
            slow_at = start + slow_s if first and on_slow is not None and 0 < slow_s < timeout_s else None
            while not nxt.done():
                now = loop.time()
                deadline = max(start, alive() if alive is not None else start) + timeout_s
                if now >= deadline:
                    log.error("the %s produced nothing for %.1f s; giving up on this turn", stage, timeout_s)
                    raise StageTimeout(stage, timeout_s)
                wake = deadline if slow_at is None else min(deadline, slow_at)
                await asyncio.wait({nxt}, timeout=max(wake - now, 0.0))
                if slow_at is not None and not nxt.done() and loop.time() >= slow_at:
                    log.warning("the %s has produced nothing for %.1f s; saying a filler", stage, slow_s)
                    slow_at = None
                    on_slow()  # type: ignore[misc]
        finally:
            if not nxt.done():
                nxt.cancel()
                await asyncio.gather(nxt, return_exceptions=True)
        item = nxt.result()
        if item is _END:
            return
        first = False
        yield item  # type: ignore[misc]


async def played_out(sink: AudioSink, idle_ms: float, ceiling_s: float) -> bool:
    """Wait until the speaker's queue has been empty for `idle_ms`, at most until the audio it
    holds should have played plus `ceiling_s`. Returns False if the ceiling ended the wait."""
    loop = asyncio.get_running_loop()
    left = max(0, sink.queued_samples() - sink.played_samples()) / sink.sample_rate
    deadline = loop.time() + left + ceiling_s
    while (budget := deadline - loop.time()) > 0:
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation (a
            # barge-in) that lands as drained() returns, and the reply would count as heard.
            async with asyncio.timeout(budget):
                await sink.drained()
        except TimeoutError:
            break
        await asyncio.sleep(idle_ms / 1000)  # the queue must stay empty this long (a debounce)
        if not sink.busy():
            return True
    log.warning("the speaker did not report the end of playback within %.1f s; going on", left + ceiling_s)
    return False
