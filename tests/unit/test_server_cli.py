"""`voxloop serve` says what is wrong before loading any model."""

from __future__ import annotations

import argparse
import socket

import pytest

from voxloop.cli import main
from voxloop.server import options as server_options
from voxloop.server.run import browser_url, is_loopback


def test_a_busy_port_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(["-q", "serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"voxloop: error: cannot listen on 127.0.0.1:{port}" in err
    assert "--port" in err and "Traceback" not in err


def test_limits_out_of_range_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "serve", "--max-sessions", "0"]) == 2
    assert "a server limit is out of range" in capsys.readouterr().err
    assert main(["-q", "serve", "--max-sessions", "8", "--max-connections", "4"]) == 2
    assert "--max-connections >= --max-sessions" in capsys.readouterr().err


def test_hosts_and_connection_limits_reach_the_settings() -> None:
    argv = ["--allow-host", "voice.example", "--allow-host", "box.lan", "--max-connections", "64"]
    ap = argparse.ArgumentParser()
    server_options.add_options(ap)
    settings = server_options.from_args(ap.parse_args([*argv, "--handshake-timeout-s", "3"]))
    assert settings.allowed_hosts == ("voice.example", "box.lan")
    assert settings.max_connections == 64 and settings.handshake_timeout_s == 3.0


def test_the_printed_address_is_one_a_browser_on_this_machine_can_open() -> None:
    assert browser_url("127.0.0.1", 8000) == "http://127.0.0.1:8000/"
    assert browser_url("0.0.0.0", 8000) == "http://127.0.0.1:8000/"
    assert browser_url("::", 8443, "https") == "https://[::1]:8443/"
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
