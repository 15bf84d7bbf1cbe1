"""The speaker contract every output transport implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from voxloop.providers.base import Samples


class AudioSink(ABC):
    """Where the agent's voice goes. `play` never blocks; `stop` silences at once (barge-in)."""

    sample_rate: int = 24000

    @abstractmethod
    def play(self, audio: Samples) -> None:
        """Queue mono float32 audio at `sample_rate`; playback starts at once if idle."""

    @abstractmethod
    def stop(self) -> None:
        """Drop everything queued and stop the sound now."""

    @abstractmethod
    def played_samples(self) -> int:
        """Samples that have reached the speaker since the sink was made (a monotonic counter)."""

    @abstractmethod
    def queued_samples(self) -> int:
        """Samples handed to `play` since the sink was made (played + still queued + dropped)."""

    @abstractmethod
    async def drained(self) -> None:
        """Return once everything queued so far has been played (or stopped)."""
