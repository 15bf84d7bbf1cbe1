"""An end-of-turn model with scripted answers: each question gets the next probability (the last
one repeats), or raises when told to. It keeps the length of every audio it was asked about."""

from __future__ import annotations

from collections.abc import Sequence

from voxloop.providers.base import Samples
from voxloop.providers.turn import TurnModel


class FakeTurnModel(TurnModel):
    name = "fake-turn"

    def __init__(self, answers: Sequence[float] = (1.0,), *, fail: bool = False) -> None:
        self.answers, self.fail = list(answers), fail
        self.asked: list[int] = []  # samples of audio per question

    async def complete(self, audio: Samples) -> float:
        self.asked.append(len(audio))
        if self.fail:
            raise RuntimeError("the fake model broke")
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
