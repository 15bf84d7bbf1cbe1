"""`bench.cpuload`: busy processes that burn CPU while a benchmark runs and never outlive it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from voxloop.bench.cpuload import CpuLoad

WAIT_S = 60.0  # an upper bound for the machine to get round to something, never an expectation


def _cpu_s(pid: int) -> float:
    """CPU time (user + system) a live process has used so far, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _until(done: object, what: str) -> None:
    """Poll `done()` until it holds; fail (saying `what`) if it never does within WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} within {WAIT_S:.0f} s"
        time.sleep(0.02)


def _burns(load: CpuLoad) -> None:
    assert len(load.pids) == load.processes
    for pid in load.pids:
        assert _running(pid)
        _until(lambda pid=pid: _cpu_s(pid) >= 0.2, f"busy process {pid} did not burn 0.2 s of CPU")


def test_the_processes_burn_cpu_and_are_gone_after_the_block() -> None:
    with CpuLoad(2, limit_s=600) as load:
        _burns(load)
        pids = load.pids
    assert not any(_running(p) for p in pids)
    report = load.report()
    assert report["processes"] == 2 and report["ran_out"] == 0
    assert report["cpu_s"] >= 0.4  # what they burned is reported


def test_an_exception_in_the_block_still_stops_them() -> None:
    with pytest.raises(RuntimeError, match="benchmark failed"), CpuLoad(2, limit_s=600) as load:
        _burns(load)
        pids = load.pids
        raise RuntimeError("benchmark failed")
    assert not any(_running(p) for p in pids)


def test_the_async_form_stops_them_on_cancellation() -> None:
    pids: list[int] = []

    async def bench(started: asyncio.Event) -> None:
        async with CpuLoad(1, limit_s=600) as load:
            pids.extend(load.pids)
            _burns(load)
            started.set()
            await asyncio.Event().wait()  # until cancelled (Ctrl-C cancels the main task)

    async def main() -> None:
        started = asyncio.Event()
        task = asyncio.get_running_loop().create_task(bench(started))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert pids and not any(_running(p) for p in pids)


def test_a_process_ends_on_its_own_at_its_time_limit_and_the_report_says_so() -> None:
    with CpuLoad(1, limit_s=0.3) as load:
        pid = load.pids[0]
        _until(lambda: not _running(pid), "the busy process did not stop at its time limit")
    assert load.report()["ran_out"] == 1


def test_the_processes_end_when_their_parent_is_killed() -> None:
    """A benchmark that dies without cleaning up (SIGKILL) leaves nothing spinning."""
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from voxloop.bench.cpuload import CpuLoad\n"
            "load = CpuLoad(2, limit_s=600).__enter__()\n"
            "print(*load.pids, flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as parent:
        try:
            assert parent.stdout is not None
            pids = [int(p) for p in parent.stdout.readline().split()]
            assert len(pids) == 2 and all(_running(p) for p in pids)
        finally:
            parent.kill()
    for pid in pids:
        _until(lambda pid=pid: not _running(pid), f"busy process {pid} outlived its parent")


def test_no_load_starts_nothing() -> None:
    with CpuLoad(0) as load:
        assert load.pids == []
    assert load.report() == {
        "processes": 0,
        "limit_s": load.limit_s,
        "wall_s": 0.0,
        "cpu_s": 0.0,
        "cores_used": 0.0,
        "ran_out": 0,
    }
