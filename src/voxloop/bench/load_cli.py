"""`voxloop bench load`'s options, and running it (against a server, or one it starts)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from voxloop.errors import VoxloopError


def add_parser(bench: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = bench.add_parser("load", help="N conversations at once over the socket: latency against load")
    p.add_argument("--url", default="", help="the server's socket, ws://HOST:PORT/v1/agent")
    p.add_argument(
        "--start-server", action="store_true", help="start voxloop serve on a free port for the run"
    )
    p.add_argument(
        "--server-args",
        default="",
        help="options for the started server, e.g. '--llm-model smollm2-135m' (with --start-server)",
    )
    p.add_argument("--sessions", default="1,2,4", help="conversations at once, a comma list (default 1,2,4)")
    p.add_argument(
        "--corpus", type=Path, default=None, help="manifest.tsv and WAVs (default ../shared/corpus)"
    )
    p.add_argument("--out", type=Path, default=Path("bench-out"))
    p.add_argument(
        "--turns-per-session", type=int, default=3, help="clips each conversation says (default 3)"
    )
    p.add_argument("--key", default="", help="the server's API key, if it has one (also $VOXLOOP_API_KEY)")
    p.add_argument("--server-pid", type=int, default=None, help="the serving process, for its CPU and memory")
    p.add_argument("--stagger-s", type=float, default=1.0, help="between callers' arrivals (default 1 s)")
    p.add_argument("--max-clip-s", type=float, default=10.0, help="only clips this long or shorter")


async def dispatch(a: argparse.Namespace) -> None:
    from voxloop.bench import load
    from voxloop.bench.load_server import started_server

    try:
        levels = [int(x) for x in a.sessions.split(",") if x.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1 or a.turns_per_session < 1 or a.stagger_s < 0:
        raise VoxloopError(
            "bench load needs conversations and turns to make",
            "--sessions 1,2,4 (each 1 or more), --turns-per-session 1 or more, --stagger-s 0 or more",
        )
    if bool(a.url) == bool(a.start_server):
        raise VoxloopError(
            "bench load needs one server", "give --url ws://HOST:PORT/v1/agent or --start-server"
        )
    corpus = a.corpus or Path(os.environ.get("VOXLOOP_CORPUS", "../shared/corpus"))
    key = a.key or os.environ.get("VOXLOOP_API_KEY", "")
    kw = {"turns": a.turns_per_session, "key": key, "stagger_s": a.stagger_s, "max_clip_s": a.max_clip_s}
    if a.start_server:
        async with started_server(a.out, max(levels), a.server_args) as (url, pid):
            await load.run(url, levels, corpus, a.out, server_pid=pid, **kw)
    else:
        await load.run(a.url, levels, corpus, a.out, server_pid=a.server_pid, **kw)
