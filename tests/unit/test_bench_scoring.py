"""Benchmark scoring without models: words lost, the speaker split, and cutting audio quietly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import silence, tone
from voxloop.bench.corpus import alignment, normalize, words_lost
from voxloop.bench.split import by_part, part_of, parts_of, speaker
from voxloop.providers.base import Word
from voxloop.providers.stt.pieces import speech_after, speech_between, split_quiet
from voxloop.providers.stt.whisper_decoder import covered
from voxloop.providers.stt.whisper_text import stitch

REF = "the cat sat on the mat and then it went to sleep in the warm sun"


def test_alignment_tells_kept_misheard_and_missing_words() -> None:
    ops = alignment(normalize("a b c d"), normalize("a x d"))
    assert ops == ["ok", "sub", "del", "ok"] or ops == ["ok", "del", "sub", "ok"]


@pytest.mark.parametrize(
    ("hyp", "lost"),
    [
        (REF, 0),
        ("the cat sat on the mat", 10),  # stopped at the first sentence: the rest is lost
        ("the cat sat on the mat and then it went to sleep", 4),  # "in the warm sun"
        ("the cat sat on the mat and it went to sleep in the warm sun", 0),  # one word: misheard
        ("the bat sat in a mat and then it went to sleep in the warm son", 0),  # substitutions
        ("the cat sat and then it went to sleep in the warm sun", 3),  # "on the mat" dropped
    ],
)
def test_words_lost_counts_runs_of_three_or_more_missing_words(hyp: str, lost: int) -> None:
    assert words_lost(REF, hyp, offline=REF) == lost


def test_words_the_offline_path_misses_too_are_not_lost_by_streaming() -> None:
    offline = "the cat sat on the mat and then it went to sleep"  # it never heard the end either
    assert words_lost(REF, "the cat sat on the mat and then it went to sleep", offline) == 0
    assert words_lost(REF, "the cat sat on the mat", offline) == 6


def test_the_split_is_by_speaker_and_puts_every_clip_in_one_part() -> None:
    assert speaker("1688-142285-0003") == "1688"
    assert speaker("1688-long-02") == "1688"
    assert speaker("pocketsphinx_cards_001") == "pocketsphinx"
    assert speaker("jfk_inaugural_1961") == "jfk"
    assert part_of("1688-142285-0000") == part_of("1688-long-01") == "tuning"
    assert part_of("1998-15444-0000") == "validation"
    assert part_of("rhasspy_turn_on_the_living_room_lamp") == "validation"
    assert part_of("someone_else_01") in ("tuning", "validation")  # placed by a stable hash
    ids = ["1688-1-1", "1998-1-1", "2033-1-1", "jfk_x"]
    assert parts_of(ids) == {"all": [0, 1, 2, 3], "tuning": [0, 2], "validation": [1, 3]}


def test_by_part_keeps_the_clips_in_order() -> None:
    class C:
        def __init__(self, id: str) -> None:
            self.id = id

    parts = by_part([C("2033-a"), C("1998-b"), C("1688-c")])
    assert [c.id for c in parts["tuning"]] == ["2033-a", "1688-c"]
    assert [c.id for c in parts["validation"]] == ["1998-b"]


def test_split_quiet_covers_everything_and_cuts_in_the_pauses() -> None:
    rate = 16000
    audio = np.concatenate([tone(7.0), silence(0.3), tone(6.0), silence(0.3), tone(8.0)])
    pieces = split_quiet(audio, rate, max_s=10.0)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(audio)
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))  # no gap, no overlap
    assert all(b - a <= 10 * rate for a, b in pieces)
    for _, end in pieces[:-1]:  # every cut falls in one of the two pauses
        assert 7.0 * rate <= end <= 7.3 * rate or 13.3 * rate <= end <= 13.6 * rate


def test_split_quiet_leaves_short_audio_whole() -> None:
    assert split_quiet(tone(3.0), 16000, max_s=10.0) == [(0, 48000)]


def test_speech_after_measures_the_sound_left_behind() -> None:
    audio = np.concatenate([tone(2.0), silence(1.0), tone(1.5), silence(0.5)])
    assert speech_after(audio, 16000, int(3.0 * 16000)) == pytest.approx(1.5, abs=0.05)
    assert speech_after(audio, 16000, int(4.5 * 16000)) == 0.0
    assert speech_after(silence(1.0), 16000, 0) == 0.0


@pytest.mark.parametrize(
    ("texts", "joined"),
    [
        (["The cat sat.", "And then it slept."], "The cat sat. And then it slept."),
        (["and then it went", "went to sleep"], "and then it went to sleep"),  # started in "went"
        (["in the warm sun.", "the warm sun, it said"], "in the warm sun. it said"),
        (["", "hello"], "hello"),
    ],
)
def test_stitch_drops_words_a_continuation_repeats(texts: list[str], joined: str) -> None:
    assert stitch(texts) == joined


def test_speech_between_measures_one_stretch() -> None:
    audio = np.concatenate([tone(1.0), silence(1.0), tone(0.5), silence(1.0)])
    assert speech_between(audio, 16000, 1.0, 2.0) == 0.0
    assert speech_between(audio, 16000, 1.0, 3.0) == pytest.approx(0.5, abs=0.05)
    assert speech_between(audio, 16000, 0.0, 3.5) == pytest.approx(1.5, abs=0.05)


def _words(*spans: tuple[str, float, float]) -> list[Word]:
    return [Word(w, a, b) for w, a, b in spans]


def test_a_decode_that_skipped_speech_is_cut_before_the_skip() -> None:
    words = _words(("one", 0.0, 0.5), ("two", 0.6, 1.0), ("five", 3.0, 3.5))
    skipped = np.concatenate([tone(1.0), silence(0.2), tone(1.4), silence(0.4), tone(0.5)])
    assert covered(skipped, "One two five.", words) == ("one two", 1.0, words[:2])
    paused = np.concatenate([tone(1.0), silence(2.0), tone(0.5)])  # a real pause: nothing skipped
    assert covered(paused, "One two five.", words) == ("One two five.", 3.5, words)
    assert covered(paused, "", []) == ("", None, [])


def test_bench_turns_and_latency_report_each_part_of_the_speaker_split() -> None:
    from voxloop.bench.latency import _part
    from voxloop.bench.turns import Trial, summarise

    tuning, validation = "1688-142285-0000", "1998-15444-0000"
    assert (part_of(tuning), part_of(validation)) == ("tuning", "validation")
    trials = [
        Trial("interrupt", tuning, 0.5, playing=True, interrupted=True, barge_in_ms=40.0),
        Trial("interrupt", tuning, 0.5, playing=True, interrupted=True, barge_in_ms=60.0),
        Trial("echo_interrupt", validation, 0.5, playing=True, interrupted=False),
        Trial("noise", "cough", 0.5, playing=True),
    ]
    parts = summarise(trials, 0)["parts"]
    assert parts["tuning"]["n"] == 2 and parts["tuning"]["missed"] == 0
    assert parts["tuning"]["barge_in_ms"]["p50"] == 50.0
    assert (parts["validation"]["n"], parts["validation"]["missed"]) == (1, 1)
    rows = [
        {
            "id": tuning,
            "v2v_ms": 900.0,
            "v2v_answer_ms": 900.0,
            "endpoint_ms": 500.0,
            "llm_ttft_ms": 300.0,
            "filler": False,
            "cutoffs": 1,
            "user_text": "a b c",
        },
        {
            "id": validation,
            "v2v_ms": None,
            "v2v_answer_ms": None,
            "endpoint_ms": 510.0,
            "llm_ttft_ms": None,
            "filler": True,
            "cutoffs": 0,
            "user_text": "x",
        },
    ]
    refs = {tuning: "a b c", validation: "x y"}
    t = _part(rows, [0], refs)
    assert (t["n"], t["v2v_ms"]["p50"], t["cutoffs"], t["fillers"], t["streaming_wer"]) == (
        1,
        900.0,
        1,
        0,
        0.0,
    )
    v = _part(rows, [1], refs)
    assert (v["no_reply"], v["fillers"], v["streaming_wer"]) == (1, 1, 0.5)


def test_a_figure_that_could_not_be_measured_is_written_as_null(tmp_path: Path) -> None:
    from voxloop.bench.stats import percentiles, write_json

    path = tmp_path / "latency.json"
    write_json(path, {"v2v_answer_ms": percentiles([]), "parts": [{"p95": float("inf")}], "n": 0})
    assert json.loads(path.read_text()) == {
        "v2v_answer_ms": {"p50": None, "p95": None, "max": None},
        "parts": [{"p95": None}],
        "n": 0,
    }
    assert "NaN" not in path.read_text()
