"""How much of the machine is free for the language model: a small CPU monitor.

llama.cpp splits every matrix product between its threads and waits at a barrier after each
(hundreds per token). When another process wants a core, one of two threads is regularly
descheduled and the other waits for it at every barrier: beside one busy process on 2 cores,
2 threads took 2-40x longer per token than idle (depending on how long OpenMP spins) while 1
thread kept its idle speed; beside two, 1 thread slowed by 1.5x. So the model should use only
the cores nobody else is using.

`CpuMonitor.others()` is the number of cores other processes kept busy over the last second or
so: all busy time from /proc/stat (steal time included: on a VM that core was not ours either)
minus this process's own CPU time. voxloop's own threads (the recogniser, the voice) are left
out on purpose: they run in turns with the model by design (while the user speaks the model
prefills on one thread beside the recogniser), and counting them would take the second thread
away from every reply on an idle machine. While the model runs with more threads than are free,
the others get less than they want, but under a fair scheduler still a good share of a core, so
the count still shows them. On a system without /proc it reports nothing (None) and callers keep
their configured threads.

`threads_for(limit)` turns that into a thread count (see its docstring for the rule).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("voxloop.cpu")
_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Sample:
    t: float  # monotonic seconds
    busy_s: float  # CPU seconds all our cores spent busy (steal included), since boot
    total_s: float  # CPU seconds all our cores existed, since boot
    mine_s: float  # CPU seconds this process has used


def process_cpu_s() -> float:
    """CPU seconds (user + system) this process has used, all its threads together."""
    t = os.times()
    return t.user + t.system


def _cores() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


class CpuMonitor:
    """Cores that other processes keep busy (see the module docstring).

    Thread-safe; `others()` costs a read of /proc/stat (tens of microseconds).
    """

    def __init__(
        self,
        window_s: float = 1.0,
        proc: Path = Path("/proc"),
        own_cpu_s: Callable[[], float] = process_cpu_s,
        clock: Callable[[], float] = time.monotonic,
        cores: set[int] | None = None,
    ) -> None:
        self.window_s = window_s
        self._proc = proc
        self._own, self._clock = own_cpu_s, clock
        self.cores = cores if cores is not None else _cores()
        self._samples: deque[Sample] = deque(maxlen=64)
        self._lock = threading.Lock()
        self.last_others: float | None = None  # what `others()` last found
        self.available = (proc / "stat").is_file()
        if self.available:
            self.sample()

    @property
    def n_cores(self) -> int:
        return len(self.cores)

    def sample(self) -> Sample | None:
        """Read the counters now and keep them (the windows are measured between samples)."""
        if not self.available:
            return None
        try:
            s = Sample(self._clock(), *self._stat(), self._own())
        except (OSError, ValueError, IndexError):
            log.warning("cannot read CPU counters from %s; using the configured threads", self._proc)
            self.available = False
            return None
        with self._lock:
            self._samples.append(s)
        return s

    def others(self) -> float | None:
        """Cores busy with other processes since the newest sample at least
        `window_s` old (or the oldest there is), from a sample taken now. None if unknown."""
        now = self.sample()
        if now is None:
            return None
        with self._lock:
            past = [s for s in self._samples if s.t <= now.t - self.window_s]
            ref = past[-1] if past else self._samples[0]
        if ref is now or now.total_s <= ref.total_s:
            return None
        busy = (now.busy_s - ref.busy_s) - max(0.0, now.mine_s - ref.mine_s)
        self.last_others = max(0.0, min(self.n_cores, busy / (now.total_s - ref.total_s) * self.n_cores))
        return self.last_others

    def threads_for(self, limit: int, margin: float = 0.3) -> int:
        """Threads for the language model: the cores others leave free, rounded down unless
        the remainder is at least `1 - margin` of a core, between 1 and `limit`.

        With 2 cores and the default margin: 2 threads only while everything else together used
        less than 0.3 of a core over the last second; 1 as soon as it uses more. The count is
        read again at every reply, prefill step and every few tokens, so it follows the load
        both ways within about a second. Unknown load: `limit`.
        """
        others = self.others()
        if others is None:
            return max(1, limit)
        free = self.n_cores - others
        return max(1, min(limit, math.floor(free + margin)))

    # -- /proc ---------------------------------------------------------------------------------
    def _stat(self) -> tuple[float, float]:
        busy = total = 0
        for line in (self._proc / "stat").read_text().splitlines():
            if not line.startswith("cpu") or line.startswith("cpu "):
                continue
            name, *vals = line.split()
            if int(name[3:]) not in self.cores:
                continue
            # user nice system idle iowait irq softirq steal (guest time is inside user/nice)
            v = [int(x) for x in vals[:8]] + [0] * (8 - len(vals[:8]))
            user, nice, system, idle, iowait, irq, softirq, steal = v
            b = user + nice + system + irq + softirq + steal
            busy += b
            total += b + idle + iowait
        if total == 0:
            raise ValueError("no CPU lines in /proc/stat")
        return busy / _TCK, total / _TCK
