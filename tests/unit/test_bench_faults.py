"""`bench faults` scoring: words lost against the fault-free run, faults.json's exact shape, and when
a fault acted and the stage worked again (no models, no sockets)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from voxloop.bench.faultplan import KINDS, REQUEST_BYTES, STAGE, Injection
from voxloop.bench.faultproxy import FaultProxy
from voxloop.bench.faultrig import Rig
from voxloop.bench.faults import ClipResult, format_summary, lost_words, summarise
from voxloop.bench.faultsummary import first_audio, format_first_audio, format_parts
from voxloop.bench.observe import StageLog
from voxloop.bench.scripted import ScriptedFaults

COUNTS = {"turns", "turns_completed", "hangs", "words_lost", "fillers"}
KEYS = COUNTS | {"faults", "recovery_ms", "parts"}
TUNING, VALIDATION = "1688-142285-0000", "1998-15444-0000"  # one speaker of each part


def test_lost_words_counts_words_left_out_not_words_heard_differently() -> None:
    ref = "I really liked that account of himself better than anything else"
    assert lost_words(ref, ref.upper() + ".") == 0
    assert lost_words(ref, "I really liked that account better than anything else") == 2  # of himself
    assert lost_words(ref, "I really liked the account of himself better than anything else") == 0
    assert lost_words(ref, "so I really liked that account of himself better than anything else too") == 0
    assert lost_words(ref, "") == 11
    assert lost_words("", "anything") == 0


def test_summary_has_exactly_the_documented_shape() -> None:
    results = [
        ClipResult("a", "llm_5xx", acted=True, recovery_ms=300.0, completed=True, fillers=1),
        ClipResult("b", "llm_5xx", acted=True, recovery_ms=500.0, completed=True, words_lost=2),
        ClipResult("c", "stt_drop", acted=True, recovery_ms=700.0, completed=False, hung=True),
        ClipResult("d", "tts_drop", acted=False, completed=True),  # never met a request
    ]
    s = summarise(results, ("llm_5xx", "stt_drop", "tts_drop"))
    assert set(s) == KEYS
    assert (s["turns"], s["turns_completed"], s["hangs"], s["words_lost"], s["fillers"]) == (4, 3, 1, 2, 1)
    assert s["faults"] == {"llm_5xx": 2, "stt_drop": 1, "tts_drop": 0}
    assert s["recovery_ms"]["llm_5xx"] == {"p50": 400.0, "p95": 490.0, "n": 2}
    assert s["recovery_ms"]["stt_drop"] == {"p50": 700.0, "p95": 700.0, "n": 1}
    assert s["recovery_ms"]["tts_drop"] == {"p50": None, "p95": None, "n": 0}
    json.dumps(s, allow_nan=False)  # plain JSON, no NaN
    assert "tts_drop" in format_summary(s)
    assert set(s["parts"]) <= {"tuning", "validation"}  # unknown speakers: placed by a stable hash
    assert sum(p["turns"] for p in s["parts"].values()) == 4


def test_each_part_of_the_speaker_split_has_its_own_counts_and_recoveries() -> None:
    kinds = ("llm_5xx", "tts_stall")
    results = [
        ClipResult(TUNING, "llm_5xx", acted=True, recovery_ms=300.0, completed=True, fillers=1),
        ClipResult(VALIDATION, "llm_5xx", acted=True, recovery_ms=900.0, completed=True),
        ClipResult(TUNING, "tts_stall", acted=True, recovery_ms=1000.0, completed=True, words_lost=1),
        ClipResult(VALIDATION, "tts_stall", acted=True, recovery_ms=None, completed=False, hung=True),
        ClipResult(TUNING, "tts_stall", acted=False, recovery_ms=None, completed=True),  # never acted
    ]
    s = summarise(results, kinds)
    assert set(s["parts"]) == {"tuning", "validation"}
    tuning, validation = s["parts"]["tuning"], s["parts"]["validation"]
    assert set(tuning) == COUNTS | {"recovery_ms"}
    counts = [
        (p["turns"], p["turns_completed"], p["hangs"], p["words_lost"], p["fillers"])
        for p in (tuning, validation)
    ]
    assert counts == [(3, 3, 0, 1, 1), (2, 1, 1, 0, 0)]
    assert tuning["recovery_ms"] == {
        "llm_5xx": {"p50": 300.0, "p95": 300.0, "n": 1},
        "tts_stall": {"p50": 1000.0, "p95": 1000.0, "n": 1},
        "all": {"p50": 650.0, "p95": 965.0, "n": 2},
    }
    assert validation["recovery_ms"]["tts_stall"] == {"p50": None, "p95": None, "n": 0}
    assert validation["recovery_ms"]["all"] == {"p50": 900.0, "p95": 900.0, "n": 1}
    # the whole run is the sum of its parts
    for key in COUNTS:
        assert s[key] == tuning[key] + validation[key]
    assert s["recovery_ms"]["llm_5xx"] == {"p50": 600.0, "p95": 870.0, "n": 2}
    json.dumps(s, allow_nan=False)
    table = format_parts(s)
    assert "tuning" in table and "validation" in table
    assert "300 / 300 (1)" in table and "- / - (0)" in table and "650 / 965 (2)" in table


def test_the_voices_first_audio_is_summarised_per_path_in_ms() -> None:
    fa = first_audio({"socket": [0.02, 0.04, 0.03], "rest": []})
    assert fa["socket"] == {"p50": 30.0, "p95": 39.0, "p99": 39.8, "n": 3, "max": 40.0}
    assert fa["rest"] == {"p50": None, "p95": None, "p99": None, "n": 0, "max": None}
    assert "socket p50 30" in format_first_audio(fa, 0.5) and "hedged after 500" in format_first_audio(
        fa, 0.5
    )


def test_every_kind_names_a_stage() -> None:
    assert set(STAGE) == set(KINDS) and set(STAGE.values()) == {"stt", "llm", "tts"}
    assert STAGE["provider_down"] == "llm"


def _rig() -> Rig:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    up = ("127.0.0.1", 9)
    return Rig(None, StageLog(), ScriptedFaults(app), FaultProxy(up), FaultProxy(up), FaultProxy(up))  # type: ignore[arg-type]


def test_recovery_runs_from_the_fault_acting_to_the_stages_next_result() -> None:
    async def main() -> None:
        rig = _rig()
        rig.log.times["llm"] = [1.0]
        inj = Injection("llm_5xx", rig)
        inj.arm()
        assert inj.acted_at() is None and inj.recovery_s() is None  # no request met it yet
        assert inj.rule is not None
        inj.rule.answered_at.append(5.0)
        assert inj.acted_at() == 5.0 and inj.recovery_s() is None  # nothing from the stage since
        rig.log.times["llm"] += [5.4, 5.5]
        assert abs((inj.recovery_s() or 0) - 0.4) < 1e-9
        await inj.undo()
        assert not rig.scripted.rules

    asyncio.run(main())


def test_a_provider_down_acts_at_the_next_request_and_a_proxy_fault_when_it_fires() -> None:
    async def main() -> None:
        rig = _rig()
        down = Injection("provider_down", rig)
        down.arm()
        assert down.armed_at is not None
        rig.log.times["llm_request"] = [down.armed_at - 1, down.armed_at + 2]
        rig.log.times["llm"] = [down.armed_at + 3]
        assert down.acted_at() == down.armed_at + 2
        assert abs((down.recovery_s() or 0) - 1.0) < 1e-9
        assert rig.llm._refusing == "reset"
        await down.undo()
        assert rig.llm._refusing == ""
        await rig.llm.aclose()

        drop = Injection("tts_drop", rig)
        drop.arm()
        assert drop.fault is not None and drop.fault.scope == "first" and drop.fault.before
        assert drop.acted_at() is None  # it has not met a connection
        assert not drop.mid_speech and Injection("stt_stall", rig).mid_speech

    asyncio.run(main())


def test_the_wait_for_a_request_is_told_from_the_stages_own_time() -> None:
    async def main() -> None:
        rig = _rig()
        stall = Injection("tts_stall", rig)
        stall.arm()
        assert stall.fault is not None and stall.waited_s() is None  # it has not acted
        stall.fault.fired_at = 10.0
        rig.log.times["tts_request"] = [9.9]  # the faulted request, out when it acted
        rig.log.times["tts"] = [9.0, 10.6]
        assert abs((stall.recovery_s() or 0) - 0.6) < 1e-9 and stall.waited_s() == 0.0
        rig.log.times["tts_request"] = [9.9, 11.0]  # given up; the next request recovered
        rig.log.times["tts"] = [9.0, 11.4]
        assert abs((stall.waited_s() or 0) - 1.0) < 1e-9 and abs((stall.recovery_s() or 0) - 1.4) < 1e-9
        assert Injection("stt_stall", rig).waited_s() is None
        await stall.undo()
        await rig.llm.aclose()

    asyncio.run(main())


def test_a_speech_stall_waits_for_a_request_not_an_idle_sockets_ping() -> None:
    async def main() -> None:
        rig = _rig()
        tts, llm = Injection("tts_stall", rig), Injection("llm_stall", rig)
        tts.arm()
        llm.arm()
        assert tts.fault is not None and llm.fault is not None
        assert tts.fault.after_bytes == REQUEST_BYTES and REQUEST_BYTES > 10  # a masked ping frame
        assert llm.fault.after_bytes == 1  # HTTP: an idle connection sends nothing
        await tts.undo()
        await rig.llm.aclose()

    asyncio.run(main())
