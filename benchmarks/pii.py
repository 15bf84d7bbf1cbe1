"""How well does `voxloop.redact` find personal data, and how fast?

    .venv/bin/python benchmarks/pii.py corpus   # precision/recall on tests/data/pii, per part and kind
    .venv/bin/python benchmarks/pii.py asr      # spoken lines through the real voice and recogniser

`corpus` scores the tuning part (the rules were developed on it) and the held-out part (written
before any rule, never tuned on) and times `redact` per line. `asr` says each line of
tests/data/pii/spoken.txt with the local TTS voice (hibari), transcribes it with the local Whisper
(tiny.en), masks the transcript and compares the kinds masked with the kinds the line holds: what a
recogniser actually writes for spoken digits, not what the corpus author guessed it would.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from pathlib import Path

import numpy as np

from voxloop.redact import find, redact
from voxloop.redact.score import load, score

PII = Path(__file__).resolve().parent.parent / "tests" / "data" / "pii"


def corpus(parts: list[str]) -> None:
    for part in parts:
        lines = load(PII / part)
        s = score(lines)
        print(f"{part}: {s.summary()}")
        for kind in sorted({f.kind for ln in lines for f in ln.spans}):
            want = sum(f.kind == kind for ln in lines for f in ln.spans)
            got = sum(f.kind == kind for ln in lines for f in find(ln.text))
            exact = sum(len({f for f in find(ln.text) if f.kind == kind} & set(ln.spans)) for ln in lines)
            print(f"  {kind:5s} marked {want:3d}  masked {got:3d}  exact {exact:3d}")
        for x in s.leaks:
            print("  leak:", x)
        for x in s.false_masks:
            print("  ordinary masked:", x)
        texts = [ln.text for ln in lines]
        t0 = time.perf_counter()
        for _ in range(5):
            for t in texts:
                redact(t)
        per_line = (time.perf_counter() - t0) / (5 * len(texts))
        print(f"  redact: {per_line * 1e6:.0f} us per line (mean over {5 * len(texts)} calls)")


async def asr() -> None:
    from voxloop.audio.pcm import resample
    from voxloop.config import STTConfig, TTSConfig
    from voxloop.providers.registry import provider_class

    tts = provider_class("tts", "hibari")(TTSConfig())
    stt = provider_class("stt", "whisper")(STTConfig())
    await tts.load()
    await stt.load()
    rows = [ln.split("\t") for ln in (PII / "spoken.txt").read_text().splitlines() if ln and ln[0] != "#"]
    right = 0
    try:
        for kinds, said in rows:
            audio = [a async for a in tts.synthesize(said)]
            pcm = resample(np.concatenate(audio), tts.sample_rate, 16000)
            heard = (await stt.transcribe(pcm)).text.strip()
            masked = redact(heard)
            want = Counter(k for k in kinds.split(",") if k != "-")
            got = Counter(f.kind for f in find(heard))
            ok = want == got
            right += ok
            print(f"{'ok ' if ok else 'MISS'} {kinds:6s} {heard!r}\n       -> {masked!r}")
    finally:
        await tts.aclose()
        await stt.aclose()
    print(f"{right}/{len(rows)} lines masked as expected")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["corpus", "asr"])
    ap.add_argument("--parts", default="tuning.txt,heldout.txt", help="corpus: which files of tests/data/pii")
    a = ap.parse_args()
    if a.what == "corpus":
        corpus(a.parts.split(","))
    else:
        asyncio.run(asr())
