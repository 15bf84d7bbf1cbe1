"""The end-of-turn model beside the silence rules: at a pause, ask it whether the turn is complete.

After `model_after_ms` of silence in a turn, the audio of the turn so far (its pre-roll included,
at most the last 8 s) goes to the model, off the event loop. At least `model_threshold`: the turn
ends now (`Endpointer.hurry`; for a user whose pauses adaptive silence has lengthened, that much
later), unless the words so far already asked for a longer wait. Under `model_hold_below`: this
pause ends the turn only after `unfinished_silence_ms` (`Endpointer.hold`). In between, or no
verdict (the model failed, the user spoke again first): the silence rules decide, as without a model.

While other processes keep `model_busy_cores` or more busy, the model is not asked: its ~150 ms
of a core at the pause would come out of the pause decode the reply waits for (asking it cost ~85
ms there, paired by clip). Its holds are not missed: a session decides a turn only once its reply
could be heard (`TurnConfig.ready_wait_ms`), and on such a machine the reply comes well over a
second after the speech end (beside two busy processes the earliest of 65 at 1.18 s, the median
2.2 s), so every pause waits about as long as a hold would have made it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

import numpy as np

from voxloop.agent.endpoint import Endpointer
from voxloop.config import TurnConfig
from voxloop.cpu import CpuMonitor
from voxloop.providers.base import Samples
from voxloop.providers.turn import TurnModel

log = logging.getLogger("voxloop.turn")
WINDOW_S = 8


class TurnJudge:
    """One stream's questions to a shared `TurnModel`. The listener feeds it the turn's audio and
    calls `check` once per frame; it owns the one question in flight and cancels it on `reset`."""

    def __init__(
        self,
        model: TurnModel,
        turn: TurnConfig,
        endpoint: Endpointer,
        rate: int,
        others: Callable[[], float | None] | None = None,
    ) -> None:
        """`others`: cores other processes keep busy now (None: unknown); by default read from
        /proc/stat when `turn.model_busy_cores` is set."""
        if rate != model.sample_rate:
            raise ValueError(f"the end-of-turn model takes {model.sample_rate} Hz audio, not {rate}")
        self.model, self.turn, self.endpoint, self.rate = model, turn, endpoint, rate
        if others is None and turn.model_busy_cores is not None:
            others = CpuMonitor().others
        self._others = others
        self._busy = False  # at the last pause (logged when it changes)
        self.skipped = 0  # pauses not asked about because the cores were busy
        self._audio: deque[Samples] = deque()
        self._kept = 0
        self._task: asyncio.Task[None] | None = None
        self._asked = False  # at this pause
        self.verdicts: list[float] = []  # every answer, in order (for reading: tests, benchmarks)
        self._warned = False

    def feed(self, frame: Samples) -> None:
        """Audio of the turn under way (the pre-roll first); only the last 8 s are kept."""
        self._audio.append(frame)
        self._kept += len(frame)
        while self._audio and self._kept - len(self._audio[0]) >= WINDOW_S * self.rate:
            self._kept -= len(self._audio.popleft())

    def check(self) -> asyncio.Task[None] | None:
        """Once per frame: at a pause long enough, ask (once per pause). Returns the question
        asked now, if one was (a consumer that feeds faster than real time awaits it)."""
        if self._asked or self.endpoint.paused_ms < self.turn.model_after_ms:
            return None
        self._asked = True
        if self._cores_busy():
            self.skipped += 1
            return None
        audio = np.concatenate(list(self._audio)) if self._audio else np.zeros(0, np.float32)
        self._task = asyncio.get_running_loop().create_task(self._ask(audio))
        return self._task

    def _cores_busy(self) -> bool:
        limit = self.turn.model_busy_cores
        if limit is None or self._others is None:
            return False
        others = self._others()
        busy = others is not None and others >= limit
        if busy != self._busy:
            self._busy = busy
            if busy:
                log.info("other processes keep %.1f cores busy: the end-of-turn model is not asked", others)
            else:
                log.info("the cores are free again: the end-of-turn model is asked at pauses")
        return busy

    async def _ask(self, audio: Samples) -> None:
        try:
            p = await self.model.complete(audio)
        except Exception as e:  # the silence rules decide this turn; say so once
            if not self._warned:
                log.warning("the end-of-turn model failed (%s); the silence rules decide turns", e)
                self._warned = True
            return
        self.verdicts.append(p)
        if p >= self.turn.model_threshold:
            log.debug("the turn sounds complete (%.2f): ending it now", p)
            self.endpoint.hurry(self.turn.model_after_ms)
        elif p < self.turn.model_hold_below:
            log.debug("the turn sounds unfinished (%.2f): waiting longer", p)
            self.endpoint.hold(self.turn.unfinished_silence_ms)

    def resumed(self) -> None:
        """The user spoke again at this pause: the question is moot; ask again at the next pause."""
        self._cancel()
        self._asked = False

    def reset(self) -> None:
        """The turn ended or was dropped: forget its audio and any question in flight."""
        self._cancel()
        self._asked = False
        self._audio.clear()
        self._kept = 0

    def _cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
