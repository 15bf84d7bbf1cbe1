"""Worker: blocking work in a thread of its own (real threads, on the virtual-time loop)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import aclosing, contextmanager

import pytest

from conftest import run_virtual
from voxloop.providers._worker import Worker


@contextmanager
def worker(metered: Metered | None = None) -> Iterator[Worker]:
    """A worker thread ("t"), shut down on leaving, after giving `metered` (if any) every credit it
    could still wait for."""
    w = Worker("t")
    try:
        yield w
    finally:
        if metered is not None:
            metered.credits.release(100)
        w.shutdown()


def test_run_returns_the_result_in_the_worker_thread() -> None:
    async def main() -> None:
        with worker() as w:
            name = await w.run(lambda: threading.current_thread().name)
            assert name.startswith("voxloop-t") and name != threading.current_thread().name
            assert await w.run(pow, 2, exp=10) == 1024

    run_virtual(main())


def test_iterate_yields_in_order() -> None:
    threads: set[str] = set()

    def gen() -> Iterator[int]:
        for i in range(50):
            threads.add(threading.current_thread().name)
            yield i

    async def main() -> None:
        with worker() as w:
            assert [i async for i in w.iterate(gen)] == list(range(50))

    run_virtual(main())
    assert len(threads) == 1 and threads.pop().startswith("voxloop-t")


def test_iterate_surfaces_the_generator_error() -> None:
    def gen() -> Iterator[str]:
        yield "a"
        yield "b"
        raise ValueError("decoder broke")

    async def main() -> None:
        got: list[str] = []
        with worker() as w:
            with pytest.raises(ValueError, match="decoder broke"):
                async for item in w.iterate(gen):
                    got.append(item)
            assert got == ["a", "b"]
            assert await w.run(lambda: "still usable") == "still usable"

    run_virtual(main())


class Metered:
    """A generator that makes one item per credit, so the worker thread cannot race ahead.

    It waits for a credit at most `patience` seconds and then ends on its own: a worker that never
    stops it makes the test fail (`closed` stays False) instead of hanging.
    """

    def __init__(self, patience: float = 5.0) -> None:
        self.credits = threading.Semaphore(0)
        self.patience = patience
        self.made = 0
        self.closed = False  # stopped from outside (GeneratorExit), not run dry
        self.done = threading.Event()

    def __call__(self) -> Iterator[int]:
        try:
            while self.credits.acquire(timeout=self.patience):
                self.made += 1
                yield self.made
        except GeneratorExit:
            self.closed = True
            raise
        finally:
            self.done.set()


def test_closing_the_consumer_stops_the_generator() -> None:
    gen = Metered()

    async def main() -> None:
        with worker(gen) as w:
            it = w.iterate(gen)
            gen.credits.release(3)
            assert [await anext(it) for _ in range(3)] == [1, 2, 3]
            await it.aclose()
            gen.credits.release(1)  # the flag is checked between items: at most one more is made
            await w.run(lambda: None)  # calls run in order on the one thread: the pump has ended
            assert gen.done.is_set() and gen.closed
            assert gen.made == 4

    run_virtual(main())


def test_breaking_out_of_the_loop_stops_the_generator() -> None:
    gen = Metered()

    async def main() -> None:
        with worker(gen) as w:
            gen.credits.release(1)
            async with aclosing(w.iterate(gen)) as it:
                async for item in it:
                    assert item == 1
                    break
            gen.credits.release(1)
            await w.run(lambda: None)
            assert gen.closed and gen.made == 2

    run_virtual(main())


def test_cancelling_the_consumer_stops_the_generator() -> None:
    gen = Metered()

    first = asyncio.Event()

    async def consume(w: Worker) -> None:
        async for _ in w.iterate(gen):
            first.set()

    async def main() -> None:
        with worker(gen) as w:
            task = asyncio.get_running_loop().create_task(consume(w))
            gen.credits.release(1)
            await first.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            gen.credits.release(1)
            await w.run(lambda: None)
            assert gen.closed and gen.made == 2

    run_virtual(main())
