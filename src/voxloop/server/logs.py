"""What the server's logs may hold: no keys, and no floods.

- Secrets in addresses (`?token=KEY`, as uvicorn logs a WebSocket's path) are redacted from every
  line of the server's, uvicorn's and asyncio's loggers.
- Lines that a client can make the server repeat (a refused handshake, a malformed request, an
  aborted connection) are logged at most once a second per kind, the next one saying how many
  like it were left out, so a flood of bad connections cannot flood the log.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

SECRET_PARAMS = re.compile(r"(?i)([?&;](?:token|key|api_key|apikey|access_token|auth)=)[^&;\s\"'#]*")
GUARDED = ("voxloop.server", "uvicorn.error", "uvicorn.access", "asyncio")
THROTTLED = ("uvicorn.error", "uvicorn.access", "asyncio")  # every line is about one connection


def redact(text: str) -> str:
    return SECRET_PARAMS.sub(r"\1REDACTED", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if (clean := redact(message)) != message:
            record.msg, record.args = clean, ()
        return True


class Throttle(logging.Filter):
    """At most one line per `every_s` for each message template; the next says how many were
    left out. Tracebacks are kept only on the lines that pass."""

    def __init__(self, every_s: float = 1.0, level: int = logging.NOTSET) -> None:
        super().__init__()
        self.every_s, self.level = every_s, level  # lines below `level` all pass
        self._last: dict[tuple[str, str], float] = {}
        self._left_out: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.level:
            return True
        key = (record.name, str(record.msg).partition("\n")[0])  # asyncio's name the socket below
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every_s:
            self._left_out[key] = self._left_out.get(key, 0) + 1
            return False
        if len(self._last) > 1000:  # templates are few; this only bounds memory
            self._last.clear()
        self._last[key] = now
        if n := self._left_out.pop(key, 0):
            record.msg, record.args = f"{record.getMessage()} ({n} more like this left out)", ()
        return True


class Refusals:
    """The server's own lines about refused or aborted connections, throttled like uvicorn's."""

    def __init__(self, logger: logging.Logger, every_s: float = 1.0) -> None:
        self.logger = logger
        self.throttle = Throttle(every_s)

    def log(self, level: int, msg: str, *args: Any) -> None:
        if not self.logger.isEnabledFor(level):
            return
        record = self.logger.makeRecord(self.logger.name, level, "(refusal)", 0, msg, args, None)
        if self.throttle.filter(record):
            self.logger.handle(record)


refusals = Refusals(logging.getLogger("voxloop.server"))


def guard_logs() -> None:
    """Install the filters (once) on the loggers that name clients' requests."""
    for name in GUARDED:
        logger = logging.getLogger(name)
        if name in THROTTLED and not any(isinstance(f, Throttle) for f in logger.filters):
            logger.addFilter(Throttle(level=logging.WARNING))
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
