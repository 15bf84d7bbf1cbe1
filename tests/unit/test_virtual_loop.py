"""The test harness's virtual-time loop (tests/conftest.py)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from conftest import VirtualTimeError, run_virtual


def test_sleeps_jump_the_clock_in_order() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        seen: list[tuple[str, float]] = []

        async def at(delay: float, name: str) -> None:
            await asyncio.sleep(delay)
            seen.append((name, round(loop.time() - t0, 9)))

        await asyncio.gather(at(3600.0, "c"), at(0.25, "a"), at(2.0, "b"))
        return seen

    assert run_virtual(main()) == [("a", 0.25), ("b", 2.0), ("c", 3600.0)]


def test_time_stands_still_while_work_is_ready() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for _ in range(100):
            await asyncio.sleep(0)
        return loop.time() - t0

    assert run_virtual(main()) == 0.0


def test_thread_work_is_waited_for_before_time_moves() -> None:
    release = threading.Event()

    async def main() -> tuple[float, str]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        timer = asyncio.ensure_future(asyncio.sleep(10.0))
        slow = loop.run_in_executor(None, lambda: (release.wait(5), "done")[1])
        loop.call_soon(release.set)
        result = await slow
        waited = loop.time() - t0
        await timer
        return waited, result

    waited, result = run_virtual(main())
    assert (waited, result) == (0.0, "done")


def test_deadlock_is_reported() -> None:
    async def main() -> None:
        await asyncio.Event().wait()

    with pytest.raises(VirtualTimeError, match="deadlock"):
        run_virtual(main())


def test_runaway_time_is_reported() -> None:
    async def main() -> None:
        await asyncio.sleep(601)

    with pytest.raises(VirtualTimeError, match="limit"):
        run_virtual(main(), max_virtual_s=600)
