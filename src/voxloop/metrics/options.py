"""The operations options (--log-json, --metrics-port) of the commands that run the agent."""

from __future__ import annotations

import argparse


def add_options(p: argparse.ArgumentParser, *, metrics_port: bool) -> None:
    g = p.add_argument_group("operations")
    g.add_argument("--log-json", action="store_true", help="log lines as JSON, with session and turn ids")
    if metrics_port:
        g.add_argument(
            "--metrics-port",
            type=int,
            default=None,
            help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics while the session runs",
        )


def apply(a: argparse.Namespace) -> None:
    """--log-json, where the command has it: log lines as JSON from now on."""
    if getattr(a, "log_json", False):
        from voxloop.metrics.logctx import use_json_logs

        use_json_logs()
