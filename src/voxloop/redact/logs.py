"""Log lines with personal data masked: a logging Filter, and its installation on the handlers
every voxloop, uvicorn and library line goes through."""

from __future__ import annotations

import logging

from voxloop.redact import redact


class RedactPII(logging.Filter):
    """Masks personal data in a record's message (arguments included) and in its traceback: the
    traceback is formatted here, masked, and kept as the record's `exc_text` only (its `exc_info`
    dropped), so no formatter can format the exception's own words again."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if (clean := redact(message)) != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text, record.exc_info = redact(record.exc_text), None
        return True


def redact_logging(logger: logging.Logger | None = None) -> None:
    """Install `RedactPII` (once) on the handlers of `logger` (default: the root logger, which
    every propagating logger's lines reach) and on Python's last-resort handler."""
    handlers = [*(logger or logging.getLogger()).handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for h in handlers:
        if not any(isinstance(f, RedactPII) for f in h.filters):
            h.addFilter(RedactPII())
