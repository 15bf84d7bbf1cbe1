"""WAV in at real-time pace (as a microphone would deliver it), the agent's voice out to WAV."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from voxloop.agent.session import VoiceSession
from voxloop.agent.timeline import table
from voxloop.audio.pcm import resample
from voxloop.audio.wav import write_wav
from voxloop.providers.base import Samples
from voxloop.redact.wiring import redacted
from voxloop.transports.timeline import TimelineSink


class PacedInput:
    """Feeds a session frame by frame on the wall clock and keeps everything it fed."""

    def __init__(
        self,
        session: VoiceSession,
        rate: int = 16000,
        frame_ms: int = 20,
        mix: Callable[[float, int], Samples] | None = None,
    ) -> None:
        """`mix(t, n)`, if given, returns `n` samples added to the frame recorded up to clock
        time `t` (the room: the agent's own voice coming back, noise)."""
        if not 10 <= frame_ms <= 100:
            raise ValueError("frame_ms must be between 10 and 100")
        self.session, self.rate, self.mix = session, rate, mix
        self.frame = rate * frame_ms // 1000
        self.fed: list[Samples] = []
        self.stamps: list[tuple[int, float]] = []  # (samples fed so far, clock when fed)
        self._n = 0
        self.t0: float | None = None

    async def feed(self, audio: Samples) -> None:
        loop = asyncio.get_running_loop()
        if self.t0 is None:
            self.t0 = loop.time()
        for i in range(0, len(audio), self.frame):
            due = self.t0 + self._n / self.rate
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)  # real-time pacing: the next frame is not "recorded" yet
            chunk = audio[i : i + self.frame]
            if self.mix is not None:
                chunk = chunk + self.mix(loop.time(), len(chunk))
            self.fed.append(chunk)
            self._n += len(chunk)
            self.stamps.append((self._n, loop.time()))
            await self.session.push_audio(chunk, self.rate)

    async def silence_until(self, done: Callable[[], bool], max_s: float) -> bool:
        """Feed silence until `done()` (checked every frame) or `max_s` pass; True if done."""
        silence = np.zeros(self.frame, np.float32)
        for _ in range(int(max_s * self.rate / self.frame)):
            if done():
                return True
            await self.feed(silence)
        return done()

    def fed_at(self, sample: int) -> float:
        """Clock time when the frame holding input sample `sample` was fed."""
        import bisect

        i = bisect.bisect_right([n for n, _ in self.stamps], sample)
        return self.stamps[min(i, len(self.stamps) - 1)][1]

    @property
    def seconds(self) -> float:
        return self._n / self.rate

    def recording(self) -> Samples:
        return np.concatenate(self.fed) if self.fed else np.zeros(0, np.float32)


def write_outputs(out_dir: Path, session: VoiceSession, mic: PacedInput, sink: TimelineSink) -> str:
    """conversation.wav (left: the caller, right: the agent), agent.wav, turns.jsonl; returns the table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rate = sink.sample_rate
    user = resample(mic.recording(), mic.rate, rate)
    agent = sink.render(mic.t0 or 0.0, len(user) / rate + 0.5)
    n = max(len(user), len(agent))
    stereo = np.zeros((n, 2), np.float32)
    stereo[: len(user), 0] = user
    stereo[: len(agent), 1] = agent
    write_wav(out_dir / "conversation.wav", stereo, rate)
    write_wav(out_dir / "agent.wav", agent, rate)
    records = [r.to_dict() for r in session.records]
    if session.config.privacy.redact_logs:
        records = [redacted(r) for r in records]
    with open(out_dir / "turns.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return table(records)
