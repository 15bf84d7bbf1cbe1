"""What the engine needs of llama.cpp, and llama.cpp's own implementation of it.

One context holds several sequences (one per conversation, plus one that keeps the system
prompt) in a unified KV cache: a conversation that starts copies the system prompt's cells
instead of evaluating it again, and one evaluation (a batch) can carry tokens of every
sequence, so the weights are read once for all of them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from voxloop.providers._imports import require

log = logging.getLogger("voxloop.llm")


@dataclass(frozen=True)
class Entry:
    """Tokens of one sequence in a batch, at positions `pos`, `pos + 1`, ...; with `logits`,
    the scores after its last token are read back."""

    seq: int
    pos: int
    tokens: Sequence[int]
    logits: bool


class Backend(Protocol):
    stop_tokens: set[int]
    n_seq: int  # sequences the context holds

    def tokenize(self, text: str) -> list[int]: ...

    def piece(self, token: int) -> bytes: ...

    def decode(self, entries: Sequence[Entry]) -> list[npt.NDArray[np.float32] | None]:
        """Evaluate one batch; for each entry its logits row (or None when not asked)."""
        ...

    def forget(self, seq: int, start: int) -> None:
        """Drop a sequence's cells from position `start` on."""
        ...

    def copy(self, src: int, dst: int, n: int) -> None:
        """Give `dst` the first `n` cells of `src` (shared, not evaluated again)."""
        ...

    def set_threads(self, n: int) -> None: ...

    def close(self) -> None: ...


class LlamaCppBackend:
    """llama.cpp through llama-cpp-python's low-level API: one model, one context of `n_seq`
    sequences sharing `n_ctx` cells."""

    def __init__(self, path: Path, n_ctx: int, n_seq: int, threads: int, n_batch: int = 512) -> None:
        llama_cpp = require("llama_cpp", "llama")
        from llama_cpp import _internals, _logger

        self._lib: Any = llama_cpp
        _logger.set_verbose(False)  # llama.cpp's own log lines: errors only
        llama_cpp.llama_backend_init()
        mparams = llama_cpp.llama_model_default_params()
        self._model: Any = _internals.LlamaModel(path_model=str(path), params=mparams, verbose=False)
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = n_seq
        cparams.kv_unified = True  # every sequence may use any cell; the system prompt's are shared
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        self._ctx: Any = _internals.LlamaContext(model=self._model, params=cparams, verbose=False)
        self._batch: Any = _internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1, verbose=False)
        self._n_batch = n_batch
        self._n_vocab = self._model.n_vocab()
        self.n_seq = n_seq
        end = self._model.tokenize(b"<|im_end|>", add_bos=False, special=True)
        self.stop_tokens = {self._model.token_eos(), *end}

    def tokenize(self, text: str) -> list[int]:
        return list(self._model.tokenize(text.encode(), add_bos=False, special=True))

    def piece(self, token: int) -> bytes:
        return bytes(self._model.detokenize([token]))

    def decode(self, entries: Sequence[Entry]) -> list[npt.NDArray[np.float32] | None]:
        b = self._batch.batch
        n = 0
        rows: list[int] = []
        for e in entries:
            for i, tok in enumerate(e.tokens):
                if n >= self._n_batch:
                    raise ValueError(f"a batch of more than {self._n_batch} tokens")
                b.token[n] = tok
                b.pos[n] = e.pos + i
                b.seq_id[n][0] = e.seq
                b.n_seq_id[n] = 1
                b.logits[n] = e.logits and i == len(e.tokens) - 1
                n += 1
            rows.append(n - 1 if e.logits else -1)
        b.n_tokens = n
        self._ctx.decode(self._batch)
        out: list[npt.NDArray[np.float32] | None] = []
        for i in rows:
            if i < 0:
                out.append(None)
                continue
            ptr = self._lib.llama_get_logits_ith(self._ctx.ctx, i)
            out.append(np.ctypeslib.as_array(ptr, shape=(self._n_vocab,)).copy())
        return out

    def forget(self, seq: int, start: int) -> None:
        self._ctx.kv_cache_seq_rm(seq, start, -1)

    def copy(self, src: int, dst: int, n: int) -> None:
        self._ctx.kv_cache_seq_cp(src, dst, 0, n)

    def set_threads(self, n: int) -> None:
        self._ctx.set_n_threads(n, n)  # for single tokens and for batches alike

    def close(self) -> None:
        for part in (self._batch, self._ctx, self._model):
            with contextlib.suppress(Exception):
                part.close()
