"""Choosing the next token from a row of logits, in NumPy (each conversation samples its own).

The same steps and defaults as llama.cpp's usual chain: a repetition penalty over the last
tokens, top-k, top-p, min-p, then temperature (0: the most likely token, always).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.3
    top_p: float = 0.9
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64


def sample(
    logits: npt.NDArray[np.float32],
    recent: Sequence[int],
    params: SamplingParams,
    rng: np.random.Generator,
) -> int:
    """The next token; `recent`: the tokens the repetition penalty counts (the engine passes the
    reply so far)."""
    row = np.asarray(logits, dtype=np.float32)
    if params.repeat_penalty != 1.0 and params.repeat_last_n > 0 and len(recent):
        seen = np.unique(np.asarray(recent[-params.repeat_last_n :], dtype=np.int64))
        seen = seen[(seen >= 0) & (seen < row.shape[0])]
        vals = row[seen]
        row = row.copy()
        row[seen] = np.where(vals > 0, vals / params.repeat_penalty, vals * params.repeat_penalty)
    if params.temperature <= 0:
        return int(np.argmax(row))
    k = min(params.top_k, row.shape[0]) if params.top_k > 0 else row.shape[0]
    top = np.argpartition(row, -k)[-k:] if k < row.shape[0] else np.arange(row.shape[0])
    top = top[np.argsort(row[top])[::-1]]  # most likely first
    z = row[top].astype(np.float64)
    p = np.exp(z - z[0])
    p /= p.sum()
    keep = len(p)
    if params.top_p < 1.0:
        keep = min(keep, int(np.searchsorted(np.cumsum(p), params.top_p)) + 1)
    if params.min_p > 0:
        keep = min(keep, max(1, int(np.count_nonzero(p >= params.min_p * p[0]))))
    z = z[:keep] / params.temperature
    q = np.exp(z - z[0])
    q /= q.sum()
    return int(top[int(rng.choice(keep, p=q))])
