"""A throwaway redis-server on a free loopback port, for `voxloop bench tts-cache` and the tests.

No persistence (`--save ''`, `--appendonly no`), its folder a temporary one; ready once the server
says "Ready to accept connections" on its log, and stopped (SIGTERM, then waited for) on exit.
`restart()` brings it back on the same port, for the tests of a Redis that went away.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
from collections import deque
from pathlib import Path
from types import TracebackType

from voxloop.errors import VoxloopError

READY = "Ready to accept connections"
START_TIMEOUT_S = 20.0


def redis_server_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRedis:
    def __init__(self, port: int = 0) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise VoxloopError("redis-server is not installed", "apt-get install redis-server")
        self.binary, self.port = binary, port or free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="voxloop-redis-")
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> LocalRedis:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        args += ["--dir", self._dir.name, "--loglevel", "notice"]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._proc = proc
        ready, log, found = threading.Event(), deque[str](maxlen=5), []

        def read() -> None:  # the server's log, read to its end so that it never blocks writing it
            assert proc.stdout is not None
            for line in proc.stdout:
                log.append(line)
                if READY in line:
                    found.append(True)
                    ready.set()
            ready.set()  # it exited

        self._reader = threading.Thread(target=read, name="voxloop-redis-log", daemon=True)
        self._reader.start()
        if ready.wait(START_TIMEOUT_S) and found:
            return self
        self.stop()
        raise VoxloopError(f"redis-server did not start on port {self.port}", "".join(log).strip())

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)  # it reads the log to its end, then the pipe can close
        if proc.stdout is not None:
            proc.stdout.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self._dir.cleanup()
