"""Smart Turn v3.2 (pipecat's end-of-turn model, BSD-2) on onnxruntime, one thread.

The ONNX file comes inside the `pipecat-ai==1.14.0` wheel (installed --no-deps: only the file is
used, never pipecat's code). Input `input_features` [1, 80, 800]: the log-mel of the last 8 s
(`features.log_mel`); output `logits` [1, 1], already a probability (the export ends in a sigmoid).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from voxloop.models import model_path
from voxloop.providers._imports import require
from voxloop.providers._worker import Worker
from voxloop.providers.base import Samples
from voxloop.providers.turn import TurnModel
from voxloop.providers.turn.features import RATE, log_mel

log = logging.getLogger("voxloop.turn")


class SmartTurn(TurnModel):
    name = "smart-turn"
    sample_rate = RATE

    def __init__(self, required: bool = True) -> None:
        self.required = required  # False ("auto"): a missing model leaves the silence rules alone
        self._session: Any = None
        self._worker: Worker | None = None

    def _open(self) -> Any:
        ort = require("onnxruntime", "vad")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        path = model_path("smart-turn-v3.2")  # ModelMissing names the pip command
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    async def load(self) -> None:
        if self._session is not None:
            return
        self._worker = self._worker or Worker("turn")
        try:
            self._session = await self._worker.run(self._open)
        except BaseException:
            await self.aclose()
            raise
        t0 = time.perf_counter()
        await self._worker.run(self._score, np.zeros(RATE, np.float32))  # warm up
        log.info("end-of-turn model ready (warm-up %.0f ms)", (time.perf_counter() - t0) * 1000)

    def _score(self, audio: Samples) -> float:
        feats = log_mel(audio)[None]
        (out,) = self._session.run(None, {"input_features": feats})
        return float(np.clip(np.asarray(out).ravel()[0], 0.0, 1.0))

    async def complete(self, audio: Samples) -> float:
        if self._session is None or self._worker is None:
            raise RuntimeError("SmartTurn.load() must run before complete()")
        return await self._worker.run(self._score, audio)

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.shutdown()
        self._worker, self._session = None, None
