"""`voxloop redact` through a real process (each line comes back masked as soon as it is sent), and
the --redact-logs / --redact-llm options of the conversation commands."""

from __future__ import annotations

import logging
import os
import selectors
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import remove_redact_filters
from voxloop import cli, commands
from voxloop.config import AgentConfig
from voxloop.redact.logs import RedactPII

SRC = Path(__file__).resolve().parents[2] / "src"


def _readline(proc: subprocess.Popen[str], deadline_s: float = 60.0) -> str:
    """The next line of the process's output (a deadline instead of a hang if it never comes)."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(deadline_s), "voxloop redact did not answer a line (is it buffering its output?)"
    return proc.stdout.readline()


def test_redact_command_streams_line_by_line() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxloop.cli", "redact"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdin is not None
    try:
        # one line at a time: the next is written only after the last came back
        for said, masked in [
            ("call me at four one five five five five two six seven one", "call me at [PHONE]"),
            ("order 48213 at 10:30 for $1,299.99", "order 48213 at 10:30 for $1,299.99"),
            ("mail ann@example.com, card 4111 1111 1111 1111", "mail [EMAIL], card [CARD]"),
            ("", ""),
        ]:
            proc.stdin.write(said + "\n")
            proc.stdin.flush()
            assert _readline(proc) == masked + "\n"
        out, err = proc.communicate("born on 1990-07-04", timeout=60)  # a last line without a newline
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out == "born on [DOB]"
    assert proc.returncode == 0, err


@pytest.mark.parametrize("cmd", ["serve", "talk", "run", "demo"])
def test_privacy_options_on_every_conversation_command(cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main([cmd, "--help"])
    out = capsys.readouterr().out
    assert "--redact-logs" in out and "--redact-llm" in out


def test_privacy_options_reach_the_agent_config(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[AgentConfig] = []

    async def fake_run(inp: Path, out: Path, config: AgentConfig, **_: object) -> None:
        seen.append(config)

    monkeypatch.setattr(commands, "run_wav", fake_run)
    root = logging.getLogger()
    try:
        assert cli.main(["run", "--in", "x.wav", "--redact-llm", "--redact-logs"]) == 0
        assert any(isinstance(f, RedactPII) for h in root.handlers for f in h.filters)
    finally:
        remove_redact_filters()
    assert cli.main(["run", "--in", "x.wav"]) == 0
    assert [(c.privacy.redact_logs, c.privacy.redact_llm) for c in seen] == [(True, True), (False, False)]
