"""The `voxloop` command: its subcommands, each with the options of what it configures (defined next
to that: agent/options.py, server/options.py, metrics/options.py, batch/options.py,
providers/tts/say_cli.py, bench/cli.py, providers/tts/cache/options.py, redact/command.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path

from voxloop.agent import options as agent_options
from voxloop.batch import options as transcribe_options
from voxloop.bench import cli as bench_cli
from voxloop.errors import VoxloopError
from voxloop.metrics import options as ops_options
from voxloop.providers.tts import say_cli
from voxloop.providers.tts.cache import options as tts_cache_options
from voxloop.redact import command as redact_command
from voxloop.server import options as server_options

log = logging.getLogger("voxloop")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="voxloop", description="A real-time voice agent, offline by default.")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    ap.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = ap.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("demo", help="a short spoken conversation through the full local stack")
    d.add_argument("--out", type=Path, default=Path("demo-out"))
    agent_options.add_options(d)
    tts_cache_options.add_options(d)

    r = sub.add_parser("run", help="talk to the agent through a WAV file, fed at real-time pace")
    r.add_argument("--in", dest="inp", type=Path, required=True, help="the user's side, any rate")
    r.add_argument("--out", type=Path, default=Path("run-out"))
    agent_options.add_options(r)
    ops_options.add_options(r, metrics_port=True)
    tts_cache_options.add_options(r)

    t = sub.add_parser("talk", help="talk to the agent with your microphone and speaker")
    agent_options.add_options(t)
    ops_options.add_options(t, metrics_port=True)
    tts_cache_options.add_options(t)

    sv = sub.add_parser("serve", help="the voice server: a browser page, and a WebSocket API at /v1/agent")
    server_options.add_options(sv)
    agent_options.add_options(sv)
    ops_options.add_options(sv, metrics_port=False)  # its metrics are at GET /metrics
    tts_cache_options.add_options(sv)

    transcribe_options.add_parser(sub)
    say_cli.add_parser(sub)
    bench_cli.add_parser(sub)

    sub.add_parser("redact", help="mask personal data in text: reads lines on stdin, writes each masked")

    m = sub.add_parser("models", help="list the local models and prepare them (join parts, check sha256)")
    m.add_argument("--prepare", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    a = parser().parse_args(argv)
    level = logging.DEBUG if a.verbose else logging.WARNING if a.quiet else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    ops_options.apply(a)
    if a.cmd == "redact":
        return redact_command.stream(sys.stdin, sys.stdout)
    if getattr(a, "redact_logs", False):
        redact_command.redact_logging()
    try:
        return asyncio.run(_dispatch(a))
    except VoxloopError as e:
        print(f"voxloop: error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"  -> {e.hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _dispatch(a: argparse.Namespace) -> int:
    from voxloop import commands

    if a.cmd == "demo":
        t0 = time.perf_counter()
        await commands.demo(a.out, agent_options.config(a))
        log.info("demo finished in %.0f s; wrote %s", time.perf_counter() - t0, a.out)
    elif a.cmd == "run":
        await commands.run_wav(a.inp, a.out, agent_options.config(a), metrics_port=a.metrics_port)
    elif a.cmd == "talk":
        await commands.talk(agent_options.config(a), metrics_port=a.metrics_port)
    elif a.cmd == "serve":
        config, settings = agent_options.config(a), server_options.from_args(a)
        await commands.serve(config, settings, a.ssl_certfile, a.ssl_keyfile)
    elif a.cmd == "transcribe":
        return await transcribe_options.dispatch(a)
    elif a.cmd == "say":
        await say_cli.dispatch(a)
    elif a.cmd == "bench":
        await bench_cli.dispatch(a)
    elif a.cmd == "models":
        print(commands.models(a.prepare))
    return 0


if __name__ == "__main__":
    sys.exit(main())
