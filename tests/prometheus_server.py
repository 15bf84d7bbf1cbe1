"""A real Prometheus server (Debian's prometheus package) on a free loopback port for tests: its
own config scraping the given targets every second, its data in a temporary folder, stopped after.

Waits poll its HTTP API until a condition holds, with a deadline that only guards against a hang.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

PROMETHEUS = shutil.which("prometheus")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Prometheus:
    url: str
    http: httpx.AsyncClient
    log: list[str]  # the server's log lines so far

    async def api(self, path: str, **params: str) -> Any:
        r = await self.http.get(f"{self.url}/api/v1/{path}", params=params)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        data = await self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    async def until(self, expr: str, check: Callable[[float], bool], within: float = 60.0) -> float:
        """Poll `expr` (one series) until `check(value)`; its value then."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        seen: list[dict[str, Any]] = []
        while loop.time() < deadline:
            seen = await self.query(expr)
            if seen and check(value := float(seen[0]["value"][1])):
                return value
            await asyncio.sleep(0.25)  # the poll's pace; the deadline decides
        raise AssertionError(f"{expr}: still {seen} after {within} s; the server's log: {self.log[-20:]}")


@asynccontextmanager
async def prometheus_server(
    folder: Path, targets: list[str], rule_files: Sequence[Path] = (), metrics_path: str = "/metrics"
) -> AsyncIterator[Prometheus]:
    assert PROMETHEUS is not None
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {"job_name": "voxloop", "metrics_path": metrics_path, "static_configs": [{"targets": targets}]}
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        PROMETHEUS,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    log: list[str] = []
    reader = asyncio.get_running_loop().create_task(_keep_lines(proc, log))
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=5.0) as http:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while True:
                assert proc.returncode is None, f"prometheus exited ({proc.returncode}): {log[-20:]}"
                try:
                    if (await http.get(f"{url}/-/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert loop.time() < deadline, f"prometheus not ready in 60 s: {log[-20:]}"
                await asyncio.sleep(0.1)  # the poll's pace; the deadline decides
            yield Prometheus(url, http, log)
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await asyncio.gather(reader, return_exceptions=True)


async def _keep_lines(proc: asyncio.subprocess.Process, lines: list[str]) -> None:
    """The server's log lines, for the messages of failed waits."""
    assert proc.stderr is not None
    async for line in proc.stderr:
        lines.append(line.decode(errors="replace").rstrip())
