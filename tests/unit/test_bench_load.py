"""`bench load` against a real server on loopback with fake models: load.json's exact shape, the
figures taken from the server's timelines, a caller refused beyond capacity counted as an error,
the server process found through /readyz; and the summary of given turns."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import numpy as np

from conftest import make_providers, silence, tone
from fakes import FakeLLM, FakeSTT
from live_server import live_server
from voxloop.audio.wav import write_wav
from voxloop.bench import load
from voxloop.bench.load_client import CallResult, Turn
from voxloop.bench.load_server import find_pid
from voxloop.server.settings import ServerSettings

ROW = {"n", "turns", "errors", "v2v_ms", "v2v_answer_ms", "llm_ttft_ms", "cpu_percent", "rss_mb", "parts"}


def corpus(folder: Path, clips: int) -> Path:
    rows = ["id\tset\tduration_s\ttranscript"]
    for i in range(clips):
        # no silence after the "speech": its labelled end is the clip's end either way
        write_wav(folder / f"c{i}.wav", np.concatenate([silence(0.3), tone(1.0)]), 16000)
        rows.append(f"c{i}\tbenchmark\t1.3\thello")
    (folder / "manifest.tsv").write_text("\n".join(rows) + "\n")
    return folder


def test_one_then_two_callers_with_one_slot(tmp_path: Path) -> None:
    settings = ServerSettings(port=0, max_sessions=1)
    stt = FakeSTT(["what time is it"] * 4)

    async def main() -> dict[str, object]:
        async with live_server(make_providers(stt=stt), settings) as srv:
            assert await asyncio.to_thread(find_pid, srv.ws_url) == os.getpid()  # from /readyz
            return await load.run(
                srv.ws_url, [1, 2], corpus(tmp_path / "corpus", 2), tmp_path / "out", turns=1, stagger_s=0.2
            )

    report = asyncio.run(asyncio.wait_for(main(), 60))
    one, two = report["sessions"]  # type: ignore[index]
    assert set(one) == set(two) == ROW
    assert (one["n"], one["turns"], one["errors"]) == (1, 1, 0)
    assert (two["n"], two["turns"], two["errors"]) == (2, 1, 1)  # the second caller: server_busy
    for key in ("v2v_ms", "v2v_answer_ms", "llm_ttft_ms"):
        assert set(one[key]) == {"p50", "p95", "max"} and one[key]["p95"] > 0
    assert one["v2v_answer_ms"]["p50"] >= one["v2v_ms"]["p50"]  # no filler: the same first audio
    assert isinstance(one["cpu_percent"], float) and one["rss_mb"] > 0
    written = json.loads((tmp_path / "out" / "load.json").read_text())
    assert written == report
    rows = [json.loads(x) for x in (tmp_path / "out" / "load_turns.jsonl").read_text().splitlines()]
    assert [r["user_text"] for r in rows] == ["what time is it"] * 2
    assert all(r["client_v2v_answer_ms"] > 0 for r in rows)
    assert (tmp_path / "out" / "load.png").stat().st_size > 0


def test_a_filler_first_answer_is_timed_to_the_answer() -> None:
    # the server's v2v_answer_ms skips the filler; the client's view does too (the second agent_speech)
    def rec(v2v: float, answer: float, fillers: int) -> dict[str, object]:
        return {"v2v_ms": v2v, "v2v_answer_ms": answer, "llm_ttft_ms": answer - 200, "fillers": fillers}

    # speakers 1688 and 2609 are in the tuning part, 1998 in the validation part (bench/split.py)
    calls = [
        CallResult(1, [Turn(1, "1688-1-0", rec(900, 900, 0)), Turn(1, "1998-1-0", rec(2600, 3100, 1))]),
        CallResult(2, [Turn(2, "2609-1-0", None, error="dropped: no words")], errors=["llm_timeout: slow"]),
    ]
    row = load.summarize(2, calls, 150.0, 2300.0)
    assert set(row) == ROW
    assert (row["turns"], row["errors"], row["cpu_percent"], row["rss_mb"]) == (2, 2, 150.0, 2300.0)
    assert row["v2v_ms"]["max"] == 2600 and row["v2v_answer_ms"]["max"] == 3100
    tuning, validation = row["parts"]["tuning"], row["parts"]["validation"]
    assert (tuning["turns"], tuning["dropped"], tuning["v2v_answer_ms"]["max"]) == (1, 1, 900)
    assert (validation["turns"], validation["dropped"], validation["v2v_answer_ms"]["p50"]) == (1, 0, 3100)
    empty = load.summarize(4, [CallResult(1, errors=["refused"])], None, None)
    assert empty["v2v_answer_ms"] == {"p50": None, "p95": None, "max": None} and empty["errors"] == 1
    assert empty["parts"] == {}  # a refused caller heard no clip of either part
    fast = load.summarize(1, [CallResult(1, [Turn(1, "1688-1-0", rec(900, 900, 0))])], None, None)
    assert load.within_budget(fast) and not load.within_budget(row) and not load.within_budget(empty)


def test_the_clips_come_from_both_parts_in_turn(tmp_path: Path) -> None:
    # the corpus lists every tuning speaker first; a run of 4 turns still hears both parts
    folder = tmp_path / "corpus"
    rows = ["id\tset\tduration_s\ttranscript"]
    ids = ["1688-1-0", "1688-1-1", "2033-1-0", "1089-1-0", "1998-1-0", "2414-1-0", "toolong_1"]
    for i in ids:
        write_wav(
            folder / f"{i}.wav",
            np.concatenate([silence(0.3), tone(12.0 if i == "toolong_1" else 1.0)]),
            16000,
        )
        rows.append(f"{i}\tbenchmark\t1.3\thello")
    (folder / "manifest.tsv").write_text("\n".join(rows) + "\n")
    chosen = load.choose_clips(load.load_corpus(folder), max_clip_s=10.0, need=4)
    assert [c.id for c, _ in chosen] == ["1688-1-0", "1998-1-0", "1688-1-1", "2414-1-0"]


def test_the_filler_is_skipped_by_the_client_too(tmp_path: Path) -> None:
    # the model's first token after 3 s: "One moment." first, then the answer
    settings = ServerSettings(port=0)

    async def main() -> dict[str, object]:
        providers = make_providers(stt=FakeSTT(["hello"]), llm=FakeLLM(first_delay=3.0))
        async with live_server(providers, settings) as srv:
            return await load.run(srv.ws_url, [1], corpus(tmp_path / "corpus", 1), tmp_path / "out", turns=1)

    report = asyncio.run(asyncio.wait_for(main(), 60))
    row = report["sessions"][0]  # type: ignore[index]
    assert row["errors"] == 0 and row["turns"] == 1
    assert row["v2v_ms"]["max"] < 3000 < row["v2v_answer_ms"]["max"]
    turn = json.loads((tmp_path / "out" / "load_turns.jsonl").read_text())
    assert turn["fillers"] == 1 and turn["client_v2v_answer_ms"] > 3000
