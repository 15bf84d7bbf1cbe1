"""--tts-cache and its companions on the commands that speak; benchmarks run without a cache."""

from __future__ import annotations

import pytest
from test_cli_llm import COMMANDS, configured

from voxloop.cli import main

SPEAKING = ["demo", "run", "talk", "serve"]


@pytest.mark.parametrize("command", SPEAKING)
def test_the_speaking_commands_cache_on_disk_by_default(
    monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    cache = configured(monkeypatch, command).tts.cache
    assert cache.location == "disk" and cache.replies == "repeated" and cache.max_bytes == 256 * 2**20


@pytest.mark.parametrize("command", SPEAKING)
def test_the_cache_options_reach_the_config(monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    cache = configured(
        monkeypatch,
        command,
        "--tts-cache",
        "redis://127.0.0.1:6379/2",
        "--tts-cache-mb",
        "16",
        "--tts-cache-replies",
        "off",
        "--tts-cache-line",
        "Hello, thanks for calling.",
    ).tts.cache
    assert cache.location == "redis://127.0.0.1:6379/2" and cache.max_bytes == 16 * 2**20
    assert cache.replies == "off" and cache.fixed_lines == ("Hello, thanks for calling.",)
    assert configured(monkeypatch, command, "--tts-cache", "off").tts.cache.location == "off"


def test_benchmarks_measure_the_voice_without_a_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "bench" in COMMANDS
    assert configured(monkeypatch, "bench").tts.cache.location == "off"


def test_a_size_of_zero_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "talk", "--tts-cache-mb", "0"]) == 2
    assert "--tts-cache-mb" in capsys.readouterr().err


def test_a_url_that_is_not_redis_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "talk", "--tts-cache", "redis:/127.0.0.1:6379"]) == 2
    assert "neither a folder nor a Redis URL" in capsys.readouterr().err
    assert main(["-q", "talk", "--tts-cache", "memcached://127.0.0.1"]) == 2
