"""Busy processes beside a benchmark: how the loop holds up when something else wants the CPU.

`CpuLoad(n, limit_s)` starts `n` processes that each burn one core in a tight loop (what a compile
or a second conversation does to the machine), and stops them all when the `with` block ends, by
an exception or Ctrl-C too. Nothing can outlive the benchmark: each process also ends on its own
after `limit_s`, or as soon as its parent is gone. `report()` says what actually ran: for how long
and how much CPU time the burners got (a burner that ran out early is reported, not hidden).

    with CpuLoad(2, limit_s=3600) as load:
        ...                      # the benchmark
    result["cpu_load"] = load.report()
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

log = logging.getLogger("voxloop.bench")
DEFAULT_LIMIT_S = 3 * 3600.0

# The burner: spins until its deadline or until its parent is gone (re-parented), whichever first.
# It checks both every ~10 ms of work, so it stops promptly but spends its time burning.
_BURN = """
import os, sys, time
deadline = time.monotonic() + float(sys.argv[1])
parent = int(sys.argv[2])
x = 0
while time.monotonic() < deadline and os.getppid() == parent:
    for i in range(20000):
        x ^= i
"""


@dataclass
class Burner:
    proc: subprocess.Popen[bytes]
    started: float
    wall_s: float = 0.0
    cpu_s: float = 0.0
    ran_out: bool = False  # it ended on its own (its time limit) before it was stopped


@dataclass
class CpuLoad:
    """`processes` busy processes for at most `limit_s` seconds (see the module docstring)."""

    processes: int
    limit_s: float = DEFAULT_LIMIT_S
    burners: list[Burner] = field(default_factory=list)
    _stopped: bool = False

    def __post_init__(self) -> None:
        if self.processes < 0:
            raise ValueError(f"cpu load must be 0 or more processes, not {self.processes}")
        if self.limit_s <= 0:
            raise ValueError(f"the cpu load's time limit must be positive, not {self.limit_s}")

    # -- context managers (the async form only wraps the sync one: starting and stopping are quick)
    def __enter__(self) -> CpuLoad:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> CpuLoad:
        return self.__enter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        try:
            for _ in range(self.processes):
                proc = subprocess.Popen(
                    [sys.executable, "-c", _BURN, str(self.limit_s), str(os.getpid())],
                    stdin=subprocess.DEVNULL,
                    # its own session: a Ctrl-C at the terminal reaches the benchmark, which stops
                    # the burners itself (no tracebacks from them, no burner left spinning)
                    start_new_session=True,
                )
                self.burners.append(Burner(proc, time.monotonic()))
        except BaseException:
            self.stop()
            raise
        if self.processes:
            log.info(
                "cpu load: %d busy process(es) started (pids %s), each ends after %.0f s at most",
                self.processes,
                ", ".join(str(b.proc.pid) for b in self.burners),
                self.limit_s,
            )

    def stop(self) -> None:
        """Stop every burner and wait for it (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        for b in self.burners:
            if _exited(b.proc.pid):
                b.ran_out = True
            else:
                b.proc.send_signal(signal.SIGKILL)
        for b in self.burners:
            b.cpu_s = _reap(b.proc)
            b.wall_s = min(time.monotonic() - b.started, self.limit_s)
        out = [b for b in self.burners if b.ran_out]
        if out:
            log.warning(
                "cpu load: %d of %d busy process(es) had ended before the benchmark did (time "
                "limit %.0f s): the load did not last the whole run",
                len(out),
                len(self.burners),
                self.limit_s,
            )
        elif self.burners:
            log.info(
                "cpu load: stopped %d busy process(es) after %.0f s; they used %.0f s of CPU",
                len(self.burners),
                max(b.wall_s for b in self.burners),
                sum(b.cpu_s for b in self.burners),
            )

    @property
    def pids(self) -> list[int]:
        return [b.proc.pid for b in self.burners]

    def report(self) -> dict[str, Any]:
        """What ran: for latency.json / turns.json (`cpu_load`)."""
        wall = max((b.wall_s for b in self.burners), default=0.0)
        cpu = sum(b.cpu_s for b in self.burners)
        return {
            "processes": self.processes,
            "limit_s": self.limit_s,
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            # cores the burners actually kept busy on average (n when they got whole cores)
            "cores_used": round(cpu / wall, 2) if wall > 0 else 0.0,
            "ran_out": sum(1 for b in self.burners if b.ran_out),
        }


def _exited(pid: int) -> bool:
    """Has this child exited? (WNOWAIT: it stays to be reaped by `_reap`, with its CPU usage.)"""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _reap(proc: subprocess.Popen[bytes]) -> float:
    """Wait for a stopped child and return the CPU time (user + system) it used."""
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:  # already reaped elsewhere: its usage is gone
        proc.wait()
        return 0.0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return float(usage.ru_utime + usage.ru_stime)
