"""`voxloop redact` (stdin lines to stdout, each masked) and the --redact-logs / --redact-llm options."""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import TextIO

from voxloop.config import PrivacyConfig


def add_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("privacy")
    g.add_argument(
        "--redact-logs",
        action="store_true",
        help="mask personal data (emails, phone, card and social security numbers, IBANs, IP addresses, "
        "dates of birth) in log lines, session events and turns.jsonl",
    )
    g.add_argument(
        "--redact-llm",
        action="store_true",
        help="mask personal data in the user's words before the LLM sees them",
    )


def privacy(a: argparse.Namespace) -> PrivacyConfig:
    return PrivacyConfig(redact_logs=a.redact_logs, redact_llm=a.redact_llm)


def stream(inp: TextIO, out: TextIO) -> int:
    """Each line of `inp`, masked, to `out` as soon as it is read. A reader that goes away
    (`voxloop redact < log | head`) ends it quietly, as Ctrl+C does."""
    from voxloop.redact import redact

    try:
        while line := inp.readline():
            body = line.rstrip("\r\n")
            out.write(redact(body) + line[len(body) :])
            out.flush()
    except BrokenPipeError:
        with contextlib.suppress(OSError):  # nothing more can be written; say nothing at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    return 0


def redact_logging() -> None:
    """--redact-logs: every line logged from now on is masked (also the server's, before a session)."""
    from voxloop.redact.logs import redact_logging as install

    install()
