"""The engine's units of work: a job (a reply or a prefill of one conversation) and a slot (a
sequence of the model's context and the tokens it caches)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from voxloop.providers.base import Usage
from voxloop.providers.llm.sampling import SamplingParams

DONE = object()  # posted to a job's consumer when it has finished


@dataclass(eq=False)
class Job:
    tokens: list[int]
    post: Callable[[object], None]  # hands a piece, DONE or an exception to the consumer
    reply: bool = True  # False: a prefill (evaluate, produce nothing)
    params: SamplingParams = field(default_factory=SamplingParams)
    max_tokens: int = 64
    usage: Usage | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    # the engine's
    slot: Slot | None = None
    next_token: int | None = None  # sampled, not evaluated yet
    produced: int = 0
    pending: bytes = b""
    since: float = field(default_factory=time.monotonic)
    rng: np.random.Generator = field(default_factory=np.random.default_rng)

    def cancel(self) -> None:
        self.cancelled.set()


@dataclass(eq=False)
class Slot:
    seq: int
    cached: list[int] = field(default_factory=list)
    # the scores after the first n cached tokens (a prompt's end): a prompt asked again gets the
    # same first token without evaluating its last token again (a one-token batch rounds
    # differently from the slice it was read in)
    scores: tuple[int, np.ndarray] | None = None
    used: float = 0.0
    job: Job | None = None


def common(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
