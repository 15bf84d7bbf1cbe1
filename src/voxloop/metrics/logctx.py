"""Which session and turn a log line belongs to, and log lines as JSON (`--log-json`).

The ids live in context variables, so every task a session creates inherits them:
- `LogContext(session_id)`, made for each session, sets the session id in the task that runs it
  (the server's connection task, once the socket is accepted; the talk/run command), before the
  session creates any task of its own;
- it is also an event observer, and keeps the turn id in the task that hears the user: at
  `SpeechStarted` the turn being heard (the last decided + 1: ids are given at decision, in order),
  at `TurnDecided` that turn's id. The tasks the session creates for a turn (a reply held at a
  pause, the answer after the decision) are created after these events, so they carry the id of
  the turn they belong to, whatever the listening task moves on to.
`JsonFormatter` writes one JSON object per line: time, level, logger, message, and the session and
turn ids when the line has them (plus the traceback, if any).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from contextvars import ContextVar

from voxloop.agent import events as ev

session_id: ContextVar[str | None] = ContextVar("voxloop_log_session", default=None)
turn_id: ContextVar[int | None] = ContextVar("voxloop_log_turn", default=None)


class LogContext:
    """The session's id for its log lines from now on, and each decided turn's id."""

    def __init__(self, session: str) -> None:
        self.session = session
        self.decided = 0  # the last turn decided
        session_id.set(session)
        turn_id.set(None)

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.SpeechStarted):
            turn_id.set(self.decided + 1)
        elif isinstance(event, ev.TurnDecided):
            self.decided = event.turn_id
            turn_id.set(event.turn_id)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (s := session_id.get()) is not None:
            line["session_id"] = s
        if (t := turn_id.get()) is not None:
            line["turn_id"] = t
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # set already when a filter (RedactPII) masked the traceback
            line["error"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def use_json_logs(logger: logging.Logger | None = None) -> None:
    """Write the handlers of `logger` (default: the root logger) as JSON lines."""
    for handler in (logger or logging.getLogger()).handlers:
        handler.setFormatter(JsonFormatter())
