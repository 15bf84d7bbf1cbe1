"""A provider's own worker thread: blocking inference runs here, never on the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")
_END = object()


class Worker:
    """One thread per model: calls run in order, so a model is never used by two threads at once."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"voxloop-{name}")

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))

    async def iterate(self, make: Callable[[], Iterator[T]]) -> AsyncGenerator[T, None]:
        """Consume a blocking generator in the worker thread, yielding its items on the loop.

        Closing or cancelling the consumer sets a stop flag that the thread checks between items,
        so abandoned generation (a barge-in) stops after at most one more item.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue()
        stop = threading.Event()

        def post(item: Any, err: BaseException | None = None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (item, err))
            except RuntimeError:  # the loop has closed: nobody is listening any more
                stop.set()

        def pump() -> None:
            try:
                gen = make()
                for item in gen:
                    if stop.is_set():
                        close = getattr(gen, "close", None)
                        if close is not None:
                            close()
                        break
                    post(item)
            except BaseException as e:  # handed to the consumer as data
                post(None, e)
            finally:
                post(_END)

        fut = loop.run_in_executor(self._pool, pump)
        try:
            while True:
                item, err = await queue.get()
                if err is not None:
                    raise err
                if item is _END:
                    break
                yield item
        finally:
            stop.set()
            if fut.done():
                fut.result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
