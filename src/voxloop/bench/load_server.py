"""The server side of `bench load`: which process serves, what it costs, and (on request) starting it.

`find_pid` takes the pid `/readyz` reports to a key holder, else the process listening on the
port (this machine only). `Usage` samples that process and its children: CPU as a share of one
core over the span (100 = one core busy), and the peak resident memory. `started_server` runs
`voxloop serve` on a free port for the length of a `with` block.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import signal
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from voxloop.errors import VoxloopError

log = logging.getLogger("voxloop.bench")
SAMPLE_S = 0.5


def _psutil() -> Any:
    try:
        import psutil
    except ImportError:
        raise VoxloopError(
            "bench load measures the server process with psutil", "pip install 'voxloop[bench]'"
        ) from None
    return psutil


def readyz(url: str, key: str = "") -> dict[str, Any]:
    """The server's /readyz answer (either status), from its WebSocket address."""
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    req = urllib.request.Request(f"{scheme}://{parts.netloc}/readyz")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body: dict[str, Any] = json.loads(r.read())
    except urllib.error.HTTPError as e:  # 503: not ready, but it answered
        body = json.loads(e.read() or b"{}")
    return body


def find_pid(url: str, key: str = "") -> int | None:
    """The serving process: as /readyz says (a key holder sees it), else the local listener."""
    with contextlib.suppress(OSError, ValueError):
        pid = readyz(url, key).get("load", {}).get("pid")
        if isinstance(pid, int):
            return pid
    port = urlsplit(url).port
    psutil = _psutil()
    with contextlib.suppress(psutil.Error, OSError):
        for c in psutil.net_connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
                return int(c.pid)
    return None


class Usage:
    """CPU and peak memory of a process (and its children) while a `with` block runs."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.cpu_percent: float | None = None
        self.rss_mb: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._start = (0.0, 0.0)

    def _procs(self) -> list[Any]:
        proc = _psutil().Process(self.pid)
        return [proc, *proc.children(recursive=True)]

    def _cpu_s(self) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in self._procs())

    def _rss(self) -> float:
        return sum(p.memory_info().rss for p in self._procs()) / 2**20

    async def _sample(self) -> None:
        while True:
            self.rss_mb = max(self.rss_mb or 0.0, round(self._rss(), 1))
            await asyncio.sleep(SAMPLE_S)  # a sampling period, not a wait for anything

    async def __aenter__(self) -> Usage:
        if self.pid is not None:
            self._start = (time.monotonic(), self._cpu_s())
            self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        c0, wall = self._start[1], time.monotonic() - self._start[0]
        with contextlib.suppress(Exception):  # the server may have gone: keep what was sampled
            self.cpu_percent = round(100 * (self._cpu_s() - c0) / max(wall, 1e-6), 1)


@contextlib.asynccontextmanager
async def started_server(out: Path, sessions: int, extra: str = "") -> AsyncIterator[tuple[str, int]]:
    """`voxloop serve` on a free loopback port, at most `sessions` sessions and no measured limit
    (the benchmark measures the load; admission would refuse it): yields (its /v1/agent address,
    its pid). Its log goes to OUT/server.log."""
    args = [sys.executable, "-m", "voxloop.cli", "serve", "--port", "0", "--max-sessions", str(sessions)]
    args += ["--latency-budget-ms", "0", *shlex.split(extra)]
    with await asyncio.to_thread(_log_file, out / "server.log") as errors:
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=errors
        )
        try:
            url = await asyncio.wait_for(_ready_url(proc), 900)
            log.info("started voxloop serve (pid %d) at %s", proc.pid, url)
            yield url, proc.pid
        except TimeoutError:
            raise VoxloopError(
                "voxloop serve did not get ready in 15 minutes", f"see {out / 'server.log'}"
            ) from None
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)  # as Ctrl+C: live sessions end, the models close
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


def _log_file(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "wb")  # noqa: SIM115 (the caller closes it)


async def _ready_url(proc: asyncio.subprocess.Process) -> str:
    """Read the server's stdout until it says it is ready; its WebSocket address."""
    assert proc.stdout is not None
    base = ""
    while line := (await proc.stdout.readline()).decode():
        if line.startswith("voxloop server on "):
            base = line.split()[3].rstrip("/")
        elif line.startswith("ready:") and base:
            return base.replace("http", "ws", 1) + "/v1/agent"
    await proc.wait()
    raise VoxloopError(f"voxloop serve ended ({proc.returncode}) before it was ready", "see server.log")
