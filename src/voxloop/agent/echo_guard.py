"""The agent's own voice, taken back out of the microphone, and what is left judged fairly.

Per microphone frame the guard asks the speaker what it played over the same interval (the
reference), resamples it to the microphone's rate and hands both to the EchoCanceller. The VAD,
the endpointer and the recogniser then hear the canceller's output. While the agent's voice is in
the frame, a frame only counts as the user's speech if the canceller calls it double talk (more
left over than its residual echo can explain); until the canceller has converged, the loop's
other defences hold: a short burst pauses the voice, and words that are the agent's own resume it.
"""

from __future__ import annotations

import numpy as np

from voxloop.audio.echo import EchoCanceller
from voxloop.audio.pcm import resample
from voxloop.providers.base import Samples
from voxloop.transports.base import AudioSink

MARGIN_S = 0.008  # resampling context on each side of the reference window
TAIL_S = 0.4  # keep cancelling this long after the speaker went quiet (the echo's tail)
RESYNC_S = 0.1  # re-anchor the reference clock if the microphone clock drifts this far


class EchoGuard:
    def __init__(self, sink: AudioSink, rate: int, frame: int) -> None:
        self.sink, self.rate, self.frame = sink, rate, frame
        self.aec = EchoCanceller(rate, frame)
        self._t: float | None = None  # reference clock: where the next frame's window starts
        self._quiet_s = TAIL_S  # how long the reference has been silent

    def process(self, frame: Samples, fed_at: float) -> Samples:
        """The frame that ended at clock `fed_at`, with the agent's echo removed."""
        dur = self.frame / self.rate
        if self._t is None or abs(self._t - (fed_at - dur)) > RESYNC_S:
            self._t = fed_at - dur
        t0, self._t = self._t, self._t + dur
        ref = self._reference(t0, t0 + dur)
        if ref is None:
            return frame
        self._quiet_s = 0.0 if np.any(ref) else self._quiet_s + dur
        if self._quiet_s >= TAIL_S:
            return frame  # nothing played lately: nothing to cancel, nothing to spend
        return self.aec.process(frame, ref)

    def _reference(self, t0: float, t1: float) -> Samples | None:
        src = self.sink.sample_rate
        played = self.sink.played_audio(t0 - MARGIN_S, t1 + MARGIN_S)
        if played is None:
            return None
        out = resample(played, src, self.rate) if src != self.rate else played
        skip = int(round(MARGIN_S * self.rate))
        ref = out[skip : skip + self.frame]
        return np.pad(ref, (0, self.frame - len(ref))).astype(np.float32)

    @property
    def active(self) -> bool:
        """The agent's voice (or its tail) is in the microphone right now."""
        return self._quiet_s < TAIL_S and self.aec.echo_level > self.aec.noise_level

    def user_speech(self, prob: float) -> float:
        """The VAD's verdict on the cleaned frame, discounted while the agent's voice is in it:
        once the canceller has converged, what it cannot call double talk is residual echo."""
        if self.active and self.aec.converged and not self.aec.double_talk:
            return 0.0
        return prob
