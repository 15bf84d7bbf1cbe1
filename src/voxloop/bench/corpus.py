"""A speech corpus: `manifest.tsv` (id, ..., duration_s, transcript) and `<id>.wav` anywhere below."""

from __future__ import annotations

import csv
import re
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


def wer(refs: list[str], hyps: list[str]) -> float:
    errors = sum(word_errors(normalize(r), normalize(h)) for r, h in zip(refs, hyps, strict=True))
    words = sum(len(normalize(r)) for r in refs)
    return errors / max(1, words)
