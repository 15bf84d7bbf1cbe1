"""`voxloop.cpu`: the cores other processes keep busy, and the language model's thread count.

A fake /proc/stat and a fake clock: every figure is exact.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from voxloop.bench.cpuload import CpuLoad
from voxloop.cpu import CpuMonitor

TCK = 100  # jiffies per second in the fake /proc/stat


class FakeMachine:
    """Two cores; `run(s, others, mine)` advances time by s seconds during which other processes
    keep `others` cores busy and this process `mine` cores."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.t = 100.0
        self.busy = [0.0, 0.0]
        self.idle = [1000.0, 1000.0]  # since boot
        self.mine_s = 0.0
        self.write()

    def write(self) -> None:
        lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
        for i in (0, 1):
            user, idle = int(self.busy[i] * TCK), int(self.idle[i] * TCK)
            lines.append(f"cpu{i} {user} 0 0 {idle} 0 0 0 0 0 0")
        (self.root / "stat").write_text("\n".join([*lines, "intr 0", ""]))

    def run(self, seconds: float, others: float, mine: float = 0.0) -> None:
        load = others + mine
        for i in (0, 1):
            share = min(1.0, max(0.0, load - i))  # fills core 0 first
            self.busy[i] += share * seconds
            self.idle[i] += (1 - share) * seconds
        self.mine_s += mine * seconds
        self.t += seconds
        self.write()

    def monitor(self) -> CpuMonitor:
        m = CpuMonitor(proc=self.root, own_cpu_s=lambda: self.mine_s, clock=lambda: self.t, cores={0, 1})
        assert m.available
        return m


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeMachine:
    monkeypatch.setattr("voxloop.cpu._TCK", TCK)
    return FakeMachine(tmp_path)


def test_other_processes_are_counted_and_our_own_work_is_not(machine: FakeMachine) -> None:
    m = machine.monitor()
    machine.run(1.0, others=0.0, mine=2.0)  # the model on both cores, nobody else
    assert m.others() == pytest.approx(0.0)
    assert m.threads_for(2) == 2
    machine.run(1.0, others=0.6, mine=1.4)  # a compile squeezed to 0.6 of a core by our 2 threads
    assert m.others() == pytest.approx(0.6)
    assert m.threads_for(2) == 1


@pytest.mark.parametrize(
    ("others", "threads"), [(0.0, 2), (0.25, 2), (0.35, 1), (1.0, 1), (1.9, 1), (2.0, 1)]
)
def test_threads_fit_the_free_cores_with_a_margin(machine: FakeMachine, others: float, threads: int) -> None:
    m = machine.monitor()
    machine.run(1.0, others=others)
    assert m.threads_for(2) == threads
    assert m.threads_for(1) == 1  # never more than the limit, never fewer than 1


def test_the_window_follows_the_load_within_about_a_second(machine: FakeMachine) -> None:
    m = machine.monitor()
    machine.run(5.0, others=2.0)
    assert m.threads_for(2) == 1
    machine.run(1.2, others=0.0)  # the other work stopped: the last second is free
    assert m.threads_for(2) == 2
    for _ in range(12):  # frequent readings (every few tokens) look back a second, not 0.1 s
        machine.run(0.1, others=1.0)
        m.others()
    assert m.others() == pytest.approx(1.0)


def test_no_proc_means_unknown_and_the_limit_is_kept(tmp_path: Path) -> None:
    m = CpuMonitor(proc=tmp_path / "nothing")
    assert not m.available
    assert m.others() is None
    assert m.threads_for(2) == 2


def test_the_real_machine_shows_busy_processes() -> None:
    """On this machine's /proc: two busy processes show up as others' load."""
    m = CpuMonitor(window_s=0.1)
    if not m.available:
        pytest.skip("no /proc/stat here")
    with CpuLoad(m.n_cores, limit_s=120):
        deadline = time.monotonic() + 60
        m.others()
        seen = 0.0
        while seen < 0.5 * m.n_cores:  # the burners are up and running (bounded: see the assert)
            assert time.monotonic() < deadline, f"busy processes never showed up (last reading {seen})"
            time.sleep(0.2)
            seen = m.others() or 0.0


def test_importing_voxloop_first_makes_openmp_threads_spin_only_briefly() -> None:
    """llama.cpp's OpenMP runtime reads its spin count once, when it loads: voxloop sets it at
    import (GNU OpenMP's default is 300000 spins at a barrier), unless the user chose a policy."""
    pytest.importorskip("llama_cpp")

    def settings(**env: str) -> str:
        base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        base["OMP_DISPLAY_ENV"] = "VERBOSE"  # libgomp prints its settings to stderr when it loads
        code = "import voxloop, llama_cpp"
        out = subprocess.run(
            [sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr
        return out.stderr

    assert "GOMP_SPINCOUNT = '10000'" in settings()
    assert "GOMP_SPINCOUNT = '0'" in settings(OMP_WAIT_POLICY="PASSIVE")  # the user's choice
    assert "GOMP_SPINCOUNT = '300000'" in settings(GOMP_SPINCOUNT="300000")
