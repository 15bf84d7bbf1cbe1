"""A fake llama.cpp backend for the engine's tests: words are tokens, each sequence's cells are
kept so that every evaluation is checked to continue exactly what its sequence holds, and the
"model" answers `reply_len` words ("w0 w1 ...") after the last "assistant" token, then ends."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from voxloop.providers.llm.llama_backend import Entry

END = "<|im_end|>"
VOCAB = 512


class FakeBackend:
    def __init__(self, n_seq: int = 5, reply_len: int = 3) -> None:
        self.n_seq = n_seq
        self.reply_len = reply_len
        self.vocab: dict[str, int] = {END: 3}
        self.stop_tokens = {2, 3}
        self.cells: list[list[int]] = [[] for _ in range(n_seq)]
        self.batches: list[list[tuple[int, int, bool]]] = []  # (seq, tokens, logits) per step
        self.copies: list[tuple[int, int, int]] = []
        self.threads: list[int] = []
        self.hold: threading.Event | None = None  # decode waits for this, if set
        self.gate: threading.Semaphore | None = None  # each decode takes a permit, if set
        self.entered = threading.Event()
        self.fail_next = False
        self.closed = False

    def word(self, w: str) -> int:
        return self.vocab.setdefault(w, len(self.vocab) + 10)

    def tokenize(self, text: str) -> list[int]:
        return [
            self.word(w)
            for w in text.replace(END, f" {END} ").replace("<|im_start|>", " <|im_start|> ").split()
        ]

    def piece(self, token: int) -> bytes:
        names = {v: k for k, v in self.vocab.items()}
        return f" {names[token]}".encode()

    def decode(self, entries: Sequence[Entry]) -> list[npt.NDArray[np.float32] | None]:
        self.entered.set()
        if self.hold is not None:
            assert self.hold.wait(60), "the test never released decode"
        if self.gate is not None:
            assert self.gate.acquire(timeout=60), "the test gave no permit for this step"
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("llama_decode returned 1")
        self.batches.append([(e.seq, len(e.tokens), e.logits) for e in entries])
        out: list[npt.NDArray[np.float32] | None] = []
        for e in entries:
            cells = self.cells[e.seq]
            assert e.pos == len(cells), f"seq {e.seq}: evaluation at {e.pos}, but it holds {len(cells)}"
            cells.extend(e.tokens)
            out.append(self._next(cells) if e.logits else None)
        return out

    def _next(self, cells: list[int]) -> npt.NDArray[np.float32]:
        start = max(i for i, t in enumerate(cells) if t == self.vocab.get("assistant", -1)) + 1
        k = len(cells) - start
        target = self.vocab[END] if k >= self.reply_len else self.word(f"w{k}")
        row = np.full(VOCAB, -30.0, np.float32)
        row[target] = 10.0
        return row

    def forget(self, seq: int, start: int) -> None:
        del self.cells[seq][start:]

    def copy(self, src: int, dst: int, n: int) -> None:
        assert not self.cells[dst], "copied into a sequence that was not emptied"
        self.cells[dst] = self.cells[src][:n]
        self.copies.append((src, dst, n))

    def set_threads(self, n: int) -> None:
        self.threads.append(n)

    def close(self) -> None:
        self.closed = True


class FakeMonitor:
    """Scripted thread counts (the last repeats); `limit` still caps them."""

    n_cores = 2

    def __init__(self, *counts: int, others: float = 1.4) -> None:
        self.counts = list(counts or (2,))
        self.last_others: float | None = others

    def threads_for(self, limit: int) -> int:
        n = self.counts.pop(0) if len(self.counts) > 1 else self.counts[0]
        return min(limit, n)
