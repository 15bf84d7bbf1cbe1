"""Scaling out: nginx (Debian's package) on loopback in front of two `voxloop serve` processes.

The workers are the real server (tests/fake_serve.py: `voxloop serve`'s code, fake models, each
saying which worker it is), refusing a session they cannot take with HTTP 503 at the handshake
(`--busy-503`). nginx OSS has no active health checks, so routing is passive: `least_conn` for
long-lived sockets, `proxy_next_upstream error timeout http_503` to try the other worker when one
is full or down, and `max_fails=0`: full is a passing state, so a worker is never put aside for it
(a dead one costs a refused connect on each try). A balancer with active checks polls `/readyz`
instead: 503 when full, loading or draining.

Shown with bench load's callers: sessions spread over both workers; a full worker's callers go to
the other (and with both full the caller gets the 503 `server_busy`); a worker killed mid-session
ends its session with a close at once, a worker restarted with SIGTERM with `shutting_down`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from conftest import silence, tone
from live_server import agent_client, http_get
from voxloop.audio.wav import write_wav
from voxloop.bench.corpus import load_corpus
from voxloop.bench.load import choose_clips, one_level, summarize

T = TypeVar("T")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src"
UTTERANCE = np.concatenate([silence(0.3), tone(1.0), silence(0.6)])
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 120))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Worker:
    def __init__(self, name: str, sessions: int) -> None:
        self.name, self.sessions, self.port = name, sessions, 0
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/agent"

    async def start(self) -> None:
        """tests/fake_serve.py as a process (on its old port after a restart); once it is ready."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
        args = ["--port", str(self.port), "--max-sessions", str(self.sessions), "--busy-503"]
        args += ["--turns", "100", "--reply", f"Worker {self.name} here."]
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(TESTS / "fake_serve.py"), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
        )  # fmt: skip
        assert self.proc.stdout is not None
        first = (await self.proc.stdout.readline()).decode()
        self.port = int(first.split("127.0.0.1:")[1].split("/")[0])
        assert (await self.proc.stdout.readline()).decode().startswith("ready:")

    async def stop(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        return await asyncio.wait_for(self.proc.wait(), 30)


def nginx_conf(folder: Path, port: int, workers: list[Worker]) -> str:
    # max_fails=0: a worker's 503 says "full now", not "down": it is asked again next time (and
    # with every worker full the caller gets the last one's 503 server_busy, not nginx's 502)
    servers = "".join(f"    server 127.0.0.1:{w.port} max_fails=0;\n" for w in workers)
    temp = "".join(
        f"  {k}_temp_path {folder}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 256; }}
http {{
  access_log {folder}/access.log;
{temp}  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  upstream voxloop {{
    least_conn;
{servers}  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://voxloop;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_next_upstream error timeout http_503;
      proxy_next_upstream_tries 2;
      proxy_connect_timeout 2s;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }}
  }}
}}
"""


@asynccontextmanager
async def cluster(folder: Path, sessions: tuple[int, int]) -> AsyncIterator[tuple[str, list[Worker]]]:
    """Two workers and nginx before them; yields nginx's /v1/agent address and the workers."""
    workers = [Worker("A", sessions[0]), Worker("B", sessions[1])]
    nginx: asyncio.subprocess.Process | None = None
    try:
        await asyncio.gather(*(w.start() for w in workers))
        port = free_port()
        (folder / "nginx.conf").write_text(nginx_conf(folder, port, workers))
        assert NGINX is not None
        nginx = await asyncio.create_subprocess_exec(
            NGINX, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(folder / "nginx.conf"),
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await until_listening(port, nginx)
        yield f"ws://127.0.0.1:{port}/v1/agent", workers
    finally:
        if nginx is not None and nginx.returncode is None:
            nginx.send_signal(signal.SIGQUIT)  # nginx's graceful stop
            await asyncio.wait_for(nginx.wait(), 30)
        for w in workers:
            if w.proc is not None:
                await w.stop()


async def until_listening(port: int, proc: asyncio.subprocess.Process, within: float = 20.0) -> None:
    """nginx says nothing when it listens: try its port until it accepts (or nginx exits)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        assert proc.returncode is None, "nginx exited: see error.log in the test's folder"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            assert loop.time() < deadline, f"nginx did not listen on {port} within {within} s"
            await asyncio.sleep(0.05)  # a retry interval for a process that cannot tell us
            continue
        writer.close()
        await writer.wait_closed()
        return


def clips(folder: Path, n: int) -> list[Any]:
    folder.mkdir()
    rows = ["id\tset\tduration_s\ttranscript"]
    for i in range(n):
        write_wav(folder / f"c{i}.wav", np.concatenate([silence(0.3), tone(1.0)]), 16000)
        rows.append(f"c{i}\tbenchmark\t1.3\thello")
    (folder / "manifest.tsv").write_text("\n".join(rows) + "\n")
    return choose_clips(load_corpus(folder), 10.0, n)


def answered_by(results: list[Any]) -> list[str]:
    return sorted(t.record["agent_text"].split()[1] for r in results for t in r.turns if t.record)


def test_sessions_spread_over_both_workers(tmp_path: Path) -> None:
    async def main() -> None:
        async with cluster(tmp_path, (2, 2)) as (url, _):
            results = await one_level(url, 2, clips(tmp_path / "corpus", 2), 1, "", 0.3)
            assert summarize(2, results, None, None)["errors"] == 0
            assert answered_by(results) == ["A", "B"]

    run(main())


def test_a_full_worker_sends_new_callers_to_the_other(tmp_path: Path) -> None:
    async def main() -> None:
        async with cluster(tmp_path, (1, 2)) as (url, (a, b)), agent_client(a.url) as holder:
            await holder.start()  # worker A's one session, taken directly
            status, _, body = await http_get(a.port, "/readyz")
            assert status == 503 and json.loads(body)["ready"] is False  # what an active check sees
            results = await one_level(url, 2, clips(tmp_path / "corpus", 2), 1, "", 0.3)
            assert summarize(2, results, None, None)["errors"] == 0
            assert answered_by(results) == ["B", "B"]  # A refused at the handshake; nginx tried B

            async with agent_client(b.url) as c1, agent_client(b.url) as c2:  # now both are full
                await asyncio.gather(c1.start(), c2.start())
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(url):
                        pass
                assert refused.value.response.status_code == 503
                assert json.loads(refused.value.response.body)["error"]["code"] == "server_busy"

    run(main())


def test_a_killed_or_restarted_worker_ends_its_session_cleanly(tmp_path: Path) -> None:
    async def main() -> None:
        async with cluster(tmp_path, (2, 2)) as (url, workers):
            by_name = {w.name: w for w in workers}
            async with agent_client(url, auto_report=True) as c:
                await c.start()
                await c.send_audio(UTTERANCE)
                turn = (await c.event("turn_completed"))["turn"]
                victim = by_name[turn["agent_text"].split()[1]]
                await victim.stop(signal.SIGKILL)  # a crash, mid-session
                assert await c.closed_with(within=10) == 1006  # closed at once, not left hanging
            async with agent_client(url, auto_report=True) as e:  # while it is down: the other one
                await e.start()
                await e.send_audio(UTTERANCE)
                answer = (await e.event("turn_completed"))["turn"]["agent_text"]
                assert answer.split()[1] != victim.name
            await victim.start()  # restarted on its port

            # a session on a worker restarted gracefully (SIGTERM): told why, then closed
            async with agent_client(url) as d:
                await d.start()
                await d.send_audio(UTTERANCE)
                served = (await d.event("turn_completed"))["turn"]["agent_text"].split()[1]
                assert served in by_name
                await by_name[served].stop(signal.SIGTERM)
                assert (await d.error("shutting_down"))["fatal"]
                assert await d.closed_with(within=10) == 1012

    run(main())
