"""A speech corpus: `manifest.tsv` (id, ..., duration_s, transcript) and `<id>.wav` anywhere below."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxloop.audio.wav import read_wav
from voxloop.errors import VoxloopError
from voxloop.providers.base import Samples


@dataclass(frozen=True)
class Clip:
    id: str
    path: Path
    transcript: str

    def audio(self) -> Samples:
        return read_wav(self.path, rate=16000)[0]


def load_corpus(folder: Path, limit: int | None = None) -> list[Clip]:
    manifest = folder / "manifest.tsv"
    if not manifest.is_file():
        raise VoxloopError(
            f"no manifest.tsv in {folder}", "point --corpus at a folder laid out like ../shared/corpus"
        )
    wavs = {p.stem: p for p in folder.rglob("*.wav")}
    clips: list[Clip] = []
    with open(manifest, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            path = wavs.get(row["id"])
            if path is None:
                raise VoxloopError(f"manifest row {row['id']} has no {row['id']}.wav under {folder}")
            clips.append(Clip(row["id"], path, row["transcript"]))
    return clips[:limit] if limit else clips


def speech_bounds(audio: Samples) -> tuple[float, float]:
    """Offline speech label: Silero v6 over the whole clip (threshold 0.5, min silence 100 ms,
    no padding); (start of the first segment, end of the last) in seconds."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    segs = get_speech_timestamps(
        audio, VadOptions(threshold=0.5, min_silence_duration_ms=100, speech_pad_ms=0)
    )
    if not segs:
        return 0.0, len(audio) / 16000
    return segs[0]["start"] / 16000, segs[-1]["end"] / 16000


_PUNCT = re.compile(r"[^\w\s']")


def normalize(text: str) -> list[str]:
    """The WER normaliser: lowercase, punctuation removed (apostrophes kept), nothing expanded
    (so "10" and "ten" differ, on both sides alike)."""
    return _PUNCT.sub(" ", text.lower()).split()


def word_errors(ref: list[str], hyp: list[str]) -> int:
    d = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        prev, d[0] = d.copy(), i
        for j, h in enumerate(hyp, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r != h))
    return int(d[-1])


def alignment(ref: list[str], hyp: list[str]) -> list[str]:
    """What a minimum-edit alignment with `hyp` does to each reference word: "ok" (kept), "sub"
    (another word stands for it) or "del" (no word stands for it)."""
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), np.int32)
    d[:, 0] = np.arange(n + 1)
    d[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    ops = ["del"] * n
    i, j = n, m
    while i > 0:
        if j > 0 and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            ops[i - 1] = "ok" if ref[i - 1] == hyp[j - 1] else "sub"
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1  # deleted
        else:
            j -= 1  # inserted
    return ops


LOST_RUN = 3  # this many reference words missing in a row is lost speech, not a misheard word


def words_lost(reference: str, hypothesis: str, offline: str) -> int:
    """Reference words in runs of `LOST_RUN` or more that `hypothesis` leaves out entirely (deleted,
    not misheard) while `offline` (the same recogniser on its standard path) has them: the words a
    decode dropped, not the ones the model cannot hear."""
    ref = normalize(reference)
    gone = alignment(ref, normalize(hypothesis))
    heard = alignment(ref, normalize(offline))
    lost, run = 0, 0
    for i in range(len(ref) + 1):
        if i < len(ref) and gone[i] == "del":
            run += 1
            continue
        if run >= LOST_RUN:
            lost += sum(op == "ok" for op in heard[i - run : i])
        run = 0
    return lost


def wer(refs: list[str], hyps: list[str]) -> float:
    errors = sum(word_errors(normalize(r), normalize(h)) for r, h in zip(refs, hyps, strict=True))
    words = sum(len(normalize(r)) for r in refs)
    return errors / max(1, words)


def said_once(turns: Iterable[tuple[str, str]]) -> str:
    """What the user said over turns given as (final text, the last turn's text it `revises`),
    each word once: a turn that heard the last one's words again replaces them."""
    texts: list[str] = []
    for text, revises in turns:
        if revises and texts and texts[-1] == revises:
            texts.pop()
        if text:
            texts.append(text)
    return " ".join(texts)
