"""The speaker contract every output transport implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

import numpy as np

from voxloop.providers.base import Samples


class AudioSink(ABC):
    """Where the agent's voice goes. `play` never blocks; `stop` silences at once (barge-in);
    `pause` silences at once but keeps the rest for `resume` (a cough, not an interruption)."""

    sample_rate: int = 24000

    @abstractmethod
    def play(self, audio: Samples) -> None:
        """Queue mono float32 audio at `sample_rate`; playback starts at once if idle."""

    @abstractmethod
    def stop(self) -> None:
        """Drop everything queued and stop the sound now."""

    def pause(self) -> None:
        """Hold the sound now, keeping what is queued for `resume` (a possible barge-in).

        A sink that cannot hold audio stops instead: the reply is then lost, not replayed."""
        self.stop()

    def resume(self) -> None:  # noqa: B027 - optional: a sink that cannot pause has nothing to resume
        """Play on from where `pause` held the sound."""

    @abstractmethod
    def played_samples(self) -> int:
        """Samples that have reached the speaker since the sink was made (a monotonic counter)."""

    @abstractmethod
    def queued_samples(self) -> int:
        """Samples handed to `play` since the sink was made (played + still queued + dropped)."""

    def played_audio(self, t0: float, t1: float) -> Samples | None:
        """What the speaker played between clock times t0 and t1 (the loop's clock), at
        `sample_rate`, zeros where it was silent: the echo canceller's reference. None when
        this sink cannot tell (then the loop cannot cancel its own echo)."""
        return None

    def busy(self) -> bool:
        """Whether audio is playing or held right now (False when a sink cannot tell)."""
        return False

    @abstractmethod
    async def drained(self) -> None:
        """Return once everything queued so far has been played (or stopped)."""


def window(blocks: Iterable[tuple[float, Samples]], t0: float, t1: float, rate: int) -> Samples:
    """The audio between clock times t0 and t1 from (start time, samples) blocks given newest
    first (consecutive, not overlapping), zeros where there was none."""
    n = max(0, int(round((t1 - t0) * rate)))
    out = np.zeros(n, np.float32)
    for start, block in blocks:
        if start + len(block) / rate <= t0:
            break
        i = int(round((start - t0) * rate))
        a, b = max(0, i), min(n, i + len(block))
        if b > a:
            out[a:b] += block[a - i : b - i]
    return out
