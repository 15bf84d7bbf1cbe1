"""A VAD that calls a frame speech when its RMS exceeds a threshold: tones speak, zeros are silent."""

from __future__ import annotations

import numpy as np

from voxloop.providers.base import VAD, Samples, VADStream


class FakeVADStream(VADStream):
    def __init__(self, vad: FakeVAD) -> None:
        self.vad = vad
        self.frames = 0

    def __call__(self, frame: Samples) -> float:
        if len(frame) != self.vad.frame_samples:
            raise ValueError(f"VAD frames must hold {self.vad.frame_samples} samples, got {len(frame)}")
        self.frames += 1
        rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64))))
        return 1.0 if rms > self.vad.threshold else 0.0

    def reset(self) -> None:
        self.frames = 0


class FakeVAD(VAD):
    name = "fake-vad"

    def __init__(self, threshold: float = 0.01, frame_samples: int = 512, sample_rate: int = 16000) -> None:
        self.threshold = threshold
        self.frame_samples = frame_samples
        self.sample_rate = sample_rate
        self.streams: list[FakeVADStream] = []

    def stream(self) -> FakeVADStream:
        s = FakeVADStream(self)
        self.streams.append(s)
        return s
