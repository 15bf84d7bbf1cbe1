"""`voxloop serve` with fake models, as its own process: for tests of the process itself (signals,
exit status) that need no real model. Prints the same lines as `voxloop serve`.

    python tests/fake_serve.py --port 0 --drain-seconds 20 --seconds-per-word 15
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the fakes beside this file

from fakes import FakeLLM, FakeSTT, FakeTTS, FakeVAD  # noqa: E402
from voxloop.agent.providers import Providers  # noqa: E402
from voxloop.config import AgentConfig  # noqa: E402
from voxloop.server.run import serve  # noqa: E402
from voxloop.server.settings import ServerSettings  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--drain-seconds", type=float, default=ServerSettings().drain_s)
    ap.add_argument("--seconds-per-word", type=float, default=0.25, help="the fake voice's length per word")
    ap.add_argument("--text", default="turn on the lamp", help="what the fake recogniser hears in each turn")
    ap.add_argument("--turns", type=int, default=1, help="turns that hear --text (then nothing)")
    ap.add_argument("--reply", default="", help="what the fake model says (default: its own line)")
    ap.add_argument("--max-sessions", type=int, default=ServerSettings().max_sessions)
    ap.add_argument("--busy-503", action="store_true", help="refuse beyond capacity with HTTP 503")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    llm = FakeLLM(default=tuple(f" {w}" for w in a.reply.split())) if a.reply else FakeLLM()
    providers = Providers(
        FakeVAD(), FakeSTT([a.text] * a.turns), llm, FakeTTS(seconds_per_word=a.seconds_per_word)
    )
    settings = ServerSettings(
        port=a.port, drain_s=a.drain_seconds, max_sessions=a.max_sessions, busy_503=a.busy_503
    )
    asyncio.run(serve(AgentConfig(), settings, providers=providers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
