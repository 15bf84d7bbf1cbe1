"""`voxloop bench tts-cache` runs end to end on the disk backend and writes its figures (the
figures themselves are the benchmark's to report, not asserted here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voxloop.cli import main


def test_bench_tts_cache_writes_percentiles_per_concurrency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["-q", "bench", "tts-cache", "--backends", "disk", "--lines", "12", "--lookups", "40"]
    assert main([*argv, "--concurrency", "1,4", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "tts_cache.json").read_text())
    (run,) = result["runs"]
    assert run["backend"].startswith("disk ") and run["lines"] == 12 and result["voice"] == "tone"
    for key in ("hit_first_audio_ms_x1", "hit_first_audio_ms_x4"):
        assert run[key]["n"] == 40 and 0 < run[key]["p50"] <= run[key]["p95"] <= run[key]["max"]
    assert "hit_first_audio_ms_x4" in capsys.readouterr().out


def test_bench_tts_cache_refuses_an_unknown_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "bench", "tts-cache", "--backends", "memcached"]) == 2
    assert "--backends" in capsys.readouterr().err
