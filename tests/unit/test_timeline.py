from __future__ import annotations

import pytest

from voxloop.agent.timeline import STAGES, TurnRecord, summary, table


def marked(**marks: float) -> TurnRecord:
    rec = TurnRecord(turn_id=1, user_text="hi", agent_text="hello", speech_end_s=1.5)
    for name, t in marks.items():
        rec.mark(name, t)
    return rec


def test_finish_derives_every_stage_from_marks() -> None:
    rec = marked(
        speech_end=10.0,
        decided=10.5,
        final=10.62,
        llm_request=10.3,
        first_token=10.45,
        tts_request=10.7,
        tts_audio=10.78,
        audio_out=10.9,
    )
    rec.finish()
    assert rec.endpoint_ms == 500.0
    assert rec.stt_final_ms == 120.0
    assert rec.llm_ttft_ms == 150.0
    assert rec.tts_first_audio_ms == 80.0
    assert rec.v2v_ms == 900.0


def test_missing_marks_leave_stages_empty() -> None:
    rec = marked(speech_end=1.0, decided=1.5)
    rec.finish()
    assert rec.endpoint_ms == 500.0
    assert (rec.stt_final_ms, rec.llm_ttft_ms, rec.tts_first_audio_ms, rec.v2v_ms) == (None,) * 4


def test_mark_keeps_the_first_time() -> None:
    rec = marked(first_token=1.0, llm_request=0.5)
    rec.mark("first_token", 2.0)
    rec.finish()
    assert rec.llm_ttft_ms == 500.0


def test_to_dict_has_no_marks_and_every_stage() -> None:
    rec = marked(speech_end=0.0, audio_out=0.25)
    rec.finish()
    d = rec.to_dict()
    assert "marks" not in d
    assert set(STAGES) <= set(d)
    assert d["v2v_ms"] == 250.0 and d["interrupted"] is False


def test_log_line_mentions_the_stages() -> None:
    rec = marked(speech_end=0.0, decided=0.5)
    rec.interrupted = True
    rec.finish()
    line = rec.log_line()
    assert "endpoint 500 ms" in line and "stt final -" in line and "interrupted" in line


def _records() -> list[dict[str, object]]:
    rows = []
    for i, (e, v) in enumerate([(500.0, 900.0), (520.0, 700.0), (480.0, None), (700.0, 1500.0)], 1):
        rows.append(
            {
                "turn_id": i,
                "user_text": f"question {i}",
                "agent_text": "x" * 80,
                "endpoint_ms": e,
                "stt_final_ms": None,
                "llm_ttft_ms": 100.0,
                "tts_first_audio_ms": 50.0 + i,
                "v2v_ms": v,
            }
        )
    return rows


def test_summary_median_and_max() -> None:
    s = summary(_records())
    assert s["endpoint_ms"] == {"median": 510.0, "max": 700.0, "n": 4}
    assert s["v2v_ms"] == {"median": 900.0, "max": 1500.0, "n": 3}  # the turn without it is left out
    assert s["tts_first_audio_ms"]["median"] == pytest.approx(52.5)
    assert "stt_final_ms" not in s
    assert summary([]) == {}


def test_table_renders_turns_and_summary_rows() -> None:
    text = table(_records())
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["turn", "endpoint"]
    assert set(lines[1]) == {"-"} and len(lines[1]) == len(lines[0])
    assert len(lines) == 2 + 4 + 2
    assert lines[2].startswith("1 ") and "500 ms" in lines[2] and "900 ms" in lines[2]
    assert "question 1 -> " in lines[2] and lines[2].rstrip().endswith("...")  # long text cut
    assert lines[-2].startswith("median") and "510 ms" in lines[-2] and "900 ms" in lines[-2]
    assert lines[-1].startswith("max") and "700 ms" in lines[-1] and "1500 ms" in lines[-1]
    assert " - " in lines[4]  # the missing v2v of turn 3
    col = lines[0].index("endpoint")  # columns line up under their heads
    assert all(line[col - 2 : col] == "  " for line in lines[2:])
