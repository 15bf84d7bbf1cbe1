"""`voxloop bench faults` on three short clips with the real models, as a subprocess (it starts its
own local server, fault proxies and cloud providers): faults.json has its documented shape, every
turn completed, nothing hung, and each scheduled fault met a request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Corpus
from .test_cli import voxloop

pytestmark = pytest.mark.integration
pytest.importorskip("openai")
pytest.importorskip("websockets")

KINDS = ("stt_drop", "llm_5xx", "tts_drop")


def test_bench_faults_writes_its_json_and_every_turn_completes(tmp_path: Path, corpus: Corpus) -> None:
    out = tmp_path / "out"
    r = voxloop(
        "bench", "faults", "--corpus", str(corpus.root), "--out", str(out), "--limit", "3",
        "--kinds", ",".join(KINDS), cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "the run with faults" in r.stdout and "clip 3/3" in r.stdout  # progress, in words
    s = json.loads((out / "faults.json").read_text())
    counts = ("turns", "turns_completed", "hangs", "words_lost", "fillers")
    assert set(s) == {*counts, "faults", "recovery_ms", "parts", "voice_first_audio_ms"}
    assert all(isinstance(s[k], int) for k in counts)
    assert s["parts"] and set(s["parts"]) <= {"tuning", "validation"}  # the speaker split
    for k in counts:
        assert sum(p[k] for p in s["parts"].values()) == s[k]
    assert all(set(p["recovery_ms"]) == {*KINDS, "all"} for p in s["parts"].values())
    assert "speaker split:" in r.stdout
    socket = s["voice_first_audio_ms"]["socket"]  # the fault-free run's, what the hedge is set from
    assert socket["n"] >= 3 and 0 < socket["p50"] <= socket["p99"] <= socket["max"]
    assert s["turns"] == 3 and s["turns_completed"] == 3 and s["hangs"] == 0, r.stdout
    assert s["faults"] == dict.fromkeys(KINDS, 1), r.stdout
    for kind in KINDS:
        rec = s["recovery_ms"][kind]
        assert set(rec) == {"p50", "p95", "n"} and rec["n"] == 1
        assert 0 < rec["p50"] <= rec["p95"] < 30000, (kind, rec)
    assert (out / "clips.csv").is_file()
