"""Admission control: take a new session only while the server can still answer within its budget.

Two limits, whichever is lower:

- the configured capacity, `max_sessions`;
- the measured one. Every finished turn is noted with its latency (end of the user's speech to
  the first audio of the answer itself, `v2v_answer_ms`; a filler such as "One moment." does not
  count) and how many sessions were open when it finished. Turns at a load whose recent 95th
  percentile is over `latency_budget_ms` show that load is too much: the measured capacity is one
  session fewer than the lightest such load. Measurements older than `window_s` are forgotten, so a
  server that was overloaded tries one more session again later.

A server with no session open always takes one (there is nobody to protect), and a budget of 0
turns the measured limit off (the configured one stays). The process's CPU use is kept beside it,
for `/readyz` and for whoever reads the logs: it explains a latency, the latency decides.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("voxloop.server")
MIN_TURNS = 3  # a load is judged on at least this many recent turns


@dataclass(frozen=True)
class Decision:
    admit: bool
    reason: str = ""  # why not, in words for the refused client and the log


@dataclass(frozen=True)
class _Turn:
    at: float  # monotonic seconds
    load: int  # sessions open when it finished
    latency_ms: float


class Admission:
    def __init__(
        self,
        max_sessions: int,
        latency_budget_ms: float,
        window_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_sessions, self.budget_ms, self.window_s = max_sessions, latency_budget_ms, window_s
        self._clock = clock
        self._turns: deque[_Turn] = deque(maxlen=500)
        self._cpu = (clock(), time.process_time())  # for the CPU share since the last look
        self.cpu_percent = 0.0

    # -- what is measured --------------------------------------------------------------------------
    def note_turn(self, record: dict[str, Any], load: int) -> None:
        """A finished turn (its turns.jsonl record) and the sessions open as it finished."""
        latency = record.get("v2v_answer_ms")
        if latency is None:
            latency = record.get("v2v_ms")  # a turn without an answer's audio is judged on what it said
        if latency is None or self.budget_ms <= 0:
            return  # nothing was said (dropped, interrupted early): no latency to judge
        self._turns.append(_Turn(self._clock(), max(1, load), float(latency)))

    def p95_by_load(self) -> dict[int, float]:
        """The recent turns' 95th percentile latency (ms) at each load with enough of them."""
        horizon = self._clock() - self.window_s
        while self._turns and self._turns[0].at < horizon:
            self._turns.popleft()
        by_load: dict[int, list[float]] = {}
        for t in self._turns:
            by_load.setdefault(t.load, []).append(t.latency_ms)
        return {
            n: round(float(np.percentile(v, 95)), 1)
            for n, v in sorted(by_load.items())
            if len(v) >= MIN_TURNS
        }

    def measured_capacity(self) -> int | None:
        """One fewer than the lightest recent load over budget (at least 1); None: none was over."""
        if self.budget_ms <= 0:
            return None
        over = [n for n, p95 in self.p95_by_load().items() if p95 > self.budget_ms]
        return max(1, min(over) - 1) if over else None

    # -- the decision ------------------------------------------------------------------------------
    def decide(self, active: int) -> Decision:
        """May one more session start, with `active` open now?"""
        if active >= self.max_sessions:
            return Decision(False, f"all {self.max_sessions} sessions are in use: try again later")
        measured = self.measured_capacity()
        if active > 0 and measured is not None and active >= measured:
            p95 = self.p95_by_load().get(measured + 1)
            worse = f" (p95 {p95:.0f} ms with {measured + 1})" if p95 is not None else ""
            return Decision(
                False,
                f"the server is at the load it can answer within {self.budget_ms:.0f} ms: {active} "
                f"session(s) open, {measured} measured{worse}; try again later or another server",
            )
        return Decision(True)

    def report(self, active: int) -> dict[str, Any]:
        """For /readyz (to a caller with the key)."""
        now, cpu = self._clock(), time.process_time()
        (t0, c0), self._cpu = self._cpu, (now, cpu)
        if now - t0 >= 0.5:  # too short a span says nothing
            self.cpu_percent = round(100 * (cpu - c0) / (now - t0), 1)
        else:
            self._cpu = (t0, c0)
        return {
            "active": active,
            "max": self.max_sessions,
            "measured_max": self.measured_capacity(),
            "latency_budget_ms": self.budget_ms,
            "p95_ms_by_sessions": {str(n): v for n, v in self.p95_by_load().items()},
            "cpu_percent": self.cpu_percent,
            "cpus": os.cpu_count() or 1,
            "pid": os.getpid(),
        }
