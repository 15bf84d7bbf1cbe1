"""Silero VAD v6 on onnxruntime (the ONNX file bundled with faster-whisper)."""

from __future__ import annotations

from typing import Any

import numpy as np

from voxloop.models import model_path
from voxloop.providers._imports import require
from voxloop.providers.base import VAD, Samples, VADStream

_CONTEXT = 64  # samples of the previous frame that the v6 model sees before each frame


class SileroVAD(VAD):
    name = "silero"
    sample_rate = 16000
    frame_samples = 512

    def __init__(self) -> None:
        self._session: Any = None

    async def load(self) -> None:
        if self._session is None:
            ort = require("onnxruntime", "vad")
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            self._session = ort.InferenceSession(
                str(model_path("silero-v6")), opts, providers=["CPUExecutionProvider"]
            )

    def stream(self) -> VADStream:
        if self._session is None:
            raise RuntimeError("SileroVAD.load() must run before stream()")
        return _SileroStream(self._session)


class _SileroStream(VADStream):
    def __init__(self, session: Any) -> None:
        self._session = session
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._ctx = np.zeros(_CONTEXT, np.float32)

    def __call__(self, frame: Samples) -> float:
        if len(frame) != 512:
            raise ValueError(f"Silero takes 512-sample frames at 16 kHz, got {len(frame)}")
        x = np.concatenate([self._ctx, frame])[None, :].astype(np.float32)
        prob, self._h, self._c = self._session.run(None, {"input": x, "h": self._h, "c": self._c})
        self._ctx = frame[-_CONTEXT:].astype(np.float32)
        return float(np.asarray(prob).ravel()[0])
