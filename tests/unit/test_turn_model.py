"""The end-of-turn model beside the silence rules (agent/turn_model.py), with a scripted model.

At 16 kHz with 512-sample (32 ms) frames: the model is asked after the 7th silent frame (224 ms,
the first at least `model_after_ms` 200); "complete" ends the turn at the next frame; "unfinished"
waits `unfinished_silence_ms` (1100 ms); no answer leaves the base 500 ms (16 frames, 512 ms).
"""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest

from conftest import run_virtual, silence, tone
from fakes import FakeSTT, FakeVAD
from fakes.fake_turn import FakeTurnModel
from voxloop.agent.endpoint import Endpointer
from voxloop.agent.listener import Listener
from voxloop.agent.turn_model import TurnJudge
from voxloop.config import AgentConfig, TurnConfig, VADConfig
from voxloop.errors import ModelMissing
from voxloop.providers.base import Samples

F = 512


def sec(frames: int) -> float:
    return frames * F / 16000


def config(**turn: object) -> AgentConfig:
    # adaptive silence off: these turns follow each other closely, as a user who went on would;
    # both bands at 0.5 (the defaults never end a turn early: `test_the_defaults_only_hold`)
    # always asked, however busy the machine running the tests is (`test_busy_cores_skip_the_question`)
    base = TurnConfig(
        adaptive_silence=False, model_threshold=0.5, model_hold_below=0.5, model_busy_cores=None
    )
    return AgentConfig(turn=dataclasses.replace(base, **turn))


async def decided_after(ear: Listener, x: Samples) -> list[float]:
    """`listen` over `x`: for each turn, the silence (ms) between its speech end and its decision."""
    out: list[float] = []
    async for item in ear.listen(x, 16000):
        if getattr(item, "kind", None) == "turn_end":
            out.append((ear.position - item.sample) * 1000 / 16000)  # type: ignore[union-attr]
    return out


def listener(model: FakeTurnModel | None, finals: int = 1, **turn: object) -> Listener:
    return Listener(FakeVAD(), FakeSTT(["words"] * finals), config(**turn), turn_model=model)


def one_turn() -> Samples:
    return np.concatenate([tone(sec(30)), silence(sec(60))])


def test_without_a_model_the_base_silence_decides() -> None:
    assert run_virtual(decided_after(listener(None), one_turn())) == [sec(16) * 1000]


def test_a_complete_turn_ends_right_after_the_question() -> None:
    model = FakeTurnModel([0.9])
    assert run_virtual(decided_after(listener(model), one_turn())) == [sec(8) * 1000]
    assert len(model.asked) == 1


def test_an_unfinished_turn_waits_the_unfinished_silence() -> None:
    model = FakeTurnModel([0.2])
    (after,) = run_virtual(decided_after(listener(model), one_turn()))
    assert 1100 <= after < 1100 + sec(1) * 1000


def test_the_thresholds_are_the_configs() -> None:
    model = FakeTurnModel([0.6])
    (after,) = run_virtual(
        decided_after(listener(model, model_threshold=0.7, model_hold_below=0.7), one_turn())
    )
    assert after >= 1100


def test_the_defaults_only_hold() -> None:
    d = TurnConfig()
    sure = FakeTurnModel([1.0])
    assert run_virtual(decided_after(listener(sure, model_threshold=d.model_threshold), one_turn())) == [
        sec(16) * 1000
    ]
    bands = {"model_threshold": d.model_threshold, "model_hold_below": d.model_hold_below}
    (after,) = run_virtual(decided_after(listener(FakeTurnModel([0.3]), **bands), one_turn()))
    assert after >= 1100


def test_between_the_thresholds_the_silence_rules_decide() -> None:
    model = FakeTurnModel([0.5])
    x = one_turn()
    assert run_virtual(decided_after(listener(model, model_threshold=0.9, model_hold_below=0.1), x)) == [
        sec(16) * 1000
    ]


def test_complete_keeps_what_adaptive_silence_added() -> None:
    ep = Endpointer(TurnConfig(), VADConfig(), 16000)
    ep.went_on(650)  # this user paused 650 ms mid-thought: their turns end after 800 ms
    for i in range(1, 11):
        ep.update(1.0, i * F, F)
    for i in range(11, 18):  # a pause of 224 ms
        ep.update(0.0, i * F, F)
    ep.hurry(200)  # 200 + (800 - 500): the turn ends at 500 ms of silence, not 224
    ended = [i for i in range(18, 40) if ep.update(0.0, i * F, F)]
    assert ended and (ended[0] - 10) * F * 1000 / 16000 >= 500 > (ended[0] - 11) * F * 1000 / 16000


def test_a_failing_model_leaves_the_silence_rules(caplog: pytest.LogCaptureFixture) -> None:
    model = FakeTurnModel(fail=True)
    assert run_virtual(decided_after(listener(model), one_turn())) == [sec(16) * 1000]
    assert "the silence rules decide turns" in caplog.text


def test_asked_once_per_pause_with_the_turns_audio() -> None:
    # speech, a 10-frame pause (asked: unfinished, so it holds), speech again, then the end (asked again)
    x = np.concatenate([tone(sec(20)), silence(sec(10)), tone(sec(20)), silence(sec(60))])
    model = FakeTurnModel([0.1, 0.9])
    assert run_virtual(decided_after(listener(model), x)) == [sec(8) * 1000]
    first, second = model.asked
    assert second - first == 20 * F + 10 * F  # the same turn, grown by the pause and the speech


def speak_then_pause(judge: TurnJudge, n: int) -> None:
    """The `n`th stretch of a turn: 10 frames of speech, then 7 of silence (the question's moment)."""
    for i in range(17):
        judge.feed(tone(sec(1)))
        judge.endpoint.update(1.0 if i < 10 else 0.0, (17 * n + i + 1) * F, F)


def test_busy_cores_skip_the_question() -> None:
    """While other processes keep `model_busy_cores` busy the model is not asked at a pause (the
    silence rules decide); once they leave the cores free it is asked again."""
    load = [1.2, 0.1]
    turn = TurnConfig(model_busy_cores=0.5)

    async def pauses() -> list[bool]:
        model = FakeTurnModel([0.9, 0.9])
        judge = TurnJudge(model, turn, Endpointer(turn, VADConfig(), 16000), 16000, others=lambda: load[0])
        asked = []
        for n in range(len(load)):
            speak_then_pause(judge, n)
            task = judge.check()
            if task is not None:
                await task
            asked.append(task is not None)
            judge.resumed()
            load.pop(0)
        assert judge.skipped == 1 and len(model.asked) == 1
        return asked

    assert run_virtual(pauses()) == [False, True]


def test_without_a_busy_limit_the_load_is_not_read() -> None:
    turn = TurnConfig(model_busy_cores=None)

    def unread() -> float:
        raise AssertionError("the load was read")

    async def ask() -> bool:
        judge = TurnJudge(
            FakeTurnModel([0.9]), turn, Endpointer(turn, VADConfig(), 16000), 16000, others=unread
        )
        speak_then_pause(judge, 0)
        task = judge.check()
        if task is not None:
            await task
        return task is not None

    assert run_virtual(ask())


def test_at_most_the_last_8_seconds_are_kept() -> None:
    model = FakeTurnModel([0.9])
    run_virtual(decided_after(listener(model), np.concatenate([tone(10.0), silence(1.0)])))
    (n,) = model.asked
    assert 8 * 16000 <= n < 8 * 16000 + F


def test_a_longer_wait_from_the_words_beats_complete() -> None:
    ep = Endpointer(TurnConfig(), VADConfig(), 16000)
    for i in range(1, 11):
        ep.update(1.0, i * F, F)
    for i in range(11, 18):  # 7 silent frames: a pause of 224 ms
        ep.update(0.0, i * F, F)
    ep.hold(1100)  # the transcript ended on "and"
    ep.hurry(200)
    assert ep.update(0.0, 18 * F, F) == []


def test_a_verdict_that_comes_late_still_counts_at_real_time_pace() -> None:
    """A consumer feeding in real time (virtual clock): the model answers 60 ms after it is asked;
    the turn ends at the first frame after the answer, not at 500 ms."""

    class Slow(FakeTurnModel):
        async def complete(self, audio: Samples) -> float:
            await asyncio.sleep(0.06)
            return await super().complete(audio)

    async def go() -> float:
        ear = listener(Slow([0.9]))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for frame in ear.frames(one_turn(), 16000):
            await asyncio.sleep(F / 16000)  # the microphone's pace
            await ear.hear(frame)
            for b in ear.boundaries():
                await ear.apply(b)
                if b.kind == "turn_end":
                    return (ear.position - b.sample) * 1000 / 16000
        raise AssertionError(f"no turn end after {loop.time() - t0:.1f} s")

    after = run_virtual(go())
    assert sec(8) * 1000 < after <= sec(10) * 1000


def test_a_missing_model_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from voxloop.providers.turn.smart_turn import SmartTurn

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pipecat" else real(n, *a))
    with pytest.raises(ModelMissing) as e:
        run_virtual(SmartTurn().load())
    assert "pip install --no-deps pipecat-ai==1.14.0" in str(e.value)


def test_the_default_model_is_left_out_when_not_installed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # "auto" (the default): a missing Smart Turn leaves the silence rules alone, with a warning that
    # says how to install it; asked for by name, it stays an error
    import importlib.util

    from conftest import make_providers
    from voxloop.providers.turn import create_turn_model

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pipecat" else real(n, *a))
    assert TurnConfig().model == "auto"
    providers = make_providers()
    providers.turn = create_turn_model("auto")
    with caplog.at_level("WARNING", logger="voxloop"):
        run_virtual(providers.load())
    assert providers.turn is None
    assert "silence rules alone" in caplog.text and "pip install --no-deps pipecat-ai==1.14.0" in caplog.text
    providers.turn = create_turn_model("smart-turn")
    with pytest.raises(ModelMissing):
        run_virtual(providers.load())
    assert create_turn_model("none") is None
