"""`bench faults` scoring: words lost against the fault-free run, faults.json's exact shape, and when
a fault acted and the stage worked again (no models, no sockets)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from voxloop.bench.faultplan import KINDS, STAGE, Injection
from voxloop.bench.faultproxy import FaultProxy
from voxloop.bench.faultrig import Rig
from voxloop.bench.faults import ClipResult, format_summary, lost_words, summarise
from voxloop.bench.observe import StageLog
from voxloop.bench.scripted import ScriptedFaults

KEYS = {"turns", "turns_completed", "hangs", "words_lost", "fillers", "faults", "recovery_ms"}


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
