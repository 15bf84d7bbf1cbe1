"""Moonshine tiny beside Whisper tiny.en: decode time on short clips, and how Moonshine holds up
on long stretches of continuous read speech (which decides the longest piece it is given).

1. Decode time, 1 thread each, median and fastest of `--repeats` runs: Moonshine's `decode`, Whisper's loop
   decoder (`WhisperDecoder.decode` with the final beam) and its standard path (`decode_standard`).
2. Long speech: one speaker's clips, each cut to its labelled speech (`speech_end_labels.tsv`,
   50 ms kept either side), joined with 0.2 s of silence until the target length is reached;
   two starting clips per speaker. Each is decoded in ONE piece (`generate`, no splitting):
   word error rate, the longest run of reference words missing (a run at the end: truncated),
   a loop (a run of 4+ words that comes back, or a phrase stuttered), the token cap reached.

    .venv/bin/python benchmarks/moonshine_long.py --corpus ../shared/corpus
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import difflib
import statistics
import time
from pathlib import Path

import numpy as np

from voxloop.bench.corpus import Clip, load_corpus, normalize, word_errors
from voxloop.bench.split import part_of, speaker
from voxloop.config import STTConfig
from voxloop.providers.base import Samples
from voxloop.providers.stt.moonshine import END, MoonshineSTT, tokens_to_text
from voxloop.providers.stt.pieces import split_quiet
from voxloop.providers.stt.whisper_decoder import WhisperDecoder
from voxloop.providers.stt.whisper_text import looped

RATE = 16000
SHORT = ["rhasspy_turn_on_the_living_room_lamp", "1089-134686-0001", "2414-128291-0000"]  # ~3 s
TEN = ["1089-134686-0000", "2414-128291-0004", "2609-156975-0002"]  # ~10.5 s
GAP_S = 0.2
KEEP_S = 0.05


def timed(fn, audio: Samples, repeats: int) -> str:  # type: ignore[no-untyped-def]
    """'median (fastest)' milliseconds of `repeats` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(audio)
        times.append(time.perf_counter() - t0)
    return f"{statistics.median(times) * 1000:.0f} ({min(times) * 1000:.0f})"


def missing_run(ref: list[str], hyp: list[str]) -> tuple[int, bool]:
    """The longest run of reference words with no counterpart in `hyp` (deleted, or more of them
    replaced than words put in their place), and whether one of 3+ words ends the reference (the
    decode stopped early)."""
    sm = difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False)
    longest, tail = 0, False
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op in ("delete", "replace"):
            run = (i2 - i1) - (j2 - j1 if op == "replace" else 0)
            longest = max(longest, run)
            tail = tail or (i2 == len(ref) and run >= 3)
    return longest, tail


def read_labels(corpus: Path) -> dict[str, tuple[float, float]]:
    with open(corpus / "speech_end_labels.tsv", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t")
        return {r["id"]: (float(r["speech_start_s"]), float(r["speech_end_s"])) for r in rows}


def trimmed(clip: Clip, labels: dict[str, tuple[float, float]]) -> Samples:
    s0, s1 = labels[clip.id]
    return clip.audio()[max(0, int((s0 - KEEP_S) * RATE)) : int((s1 + KEEP_S) * RATE)]


def long_samples(
    group: list[tuple[Clip, Samples]], target_s: float, per_speaker: int = 2
) -> list[tuple[Samples, str]]:
    """Up to `per_speaker` joins of consecutive clips (wrapping around) whose length is nearest
    `target_s` (within 15%), each from a different first clip."""
    gap = np.zeros(int(GAP_S * RATE), np.float32)
    found: list[tuple[float, int, int]] = []  # (distance from the target, start, count)
    for start in range(len(group)):
        n, best = 0, None
        for count in range(1, len(group) + 1):
            n += len(group[(start + count - 1) % len(group)][1]) + (len(gap) if count > 1 else 0)
            d = abs(n / RATE - target_s)
            if best is None or d < best[0]:
                best = (d, start, count)
            if n / RATE > target_s:
                break
        if best is not None and best[0] <= 0.15 * target_s:
            found.append(best)
    out = []
    for _, start, count in sorted(found)[:per_speaker]:
        chosen = [group[(start + i) % len(group)] for i in range(count)]
        audio = np.concatenate([x for c, a in chosen for x in (gap, a)][1:])
        out.append((audio, " ".join(c.transcript for c, _ in chosen)))
    return out


def inserted_run(ref: list[str], hyp: list[str]) -> int:
    """The longest run of hypothesis words with no counterpart in `ref` (a loop, invented words)."""
    return missing_run(hyp, ref)[0]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--lengths", default="10,15,20,25,30,40")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--pieces", default="", help="also decode each in pieces of at most these seconds")
    a = ap.parse_args()
    clips = {c.id: c for c in load_corpus(a.corpus)}
    labels = read_labels(a.corpus)
    ms = MoonshineSTT(STTConfig(provider="moonshine", threads=1))
    await ms.load()

    if not a.skip_speed:
        wh = WhisperDecoder("tiny.en", STTConfig(threads=1), replicas=1)
        final_beam = wh.config.final_beam_size
        print(
            f"| clip | audio s | Moonshine ms | Whisper loop decoder (beam {final_beam}) ms | Whisper standard ms |"
        )
        print("|---|---|---|---|---|")
        for cid in SHORT + TEN:
            audio = clips[cid].audio()
            t_ms = timed(ms.decode, audio, a.repeats)
            t_wl = timed(lambda x: wh.decode(x, final_beam), audio, a.repeats)
            t_ws = timed(wh.decode_standard, audio, a.repeats)
            print(f"| {cid} | {len(audio) / RATE:.2f} | {t_ms} | {t_wl} | {t_ws} |")

    groups: dict[str, list[tuple[Clip, Samples]]] = {}
    for cid in sorted(clips):
        if cid in labels:
            groups.setdefault(speaker(cid), []).append((clips[cid], trimmed(clips[cid], labels)))
    print(
        "\n| target s | n | audio s (range) | WER | longest missing run (max) | truncated |"
        " longest inserted run (max) | looped | capped | decode s per audio s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for target in [float(x) for x in a.lengths.split(",") if x]:
        rows = []
        piece_lens = [float(x) for x in a.pieces.split(",") if x]
        split_errors = dict.fromkeys(piece_lens, 0)
        for who, group in groups.items():
            for audio, ref in long_samples(group, target):
                for limit in piece_lens:
                    text = " ".join(ms._decode_piece(audio[p:q]) for p, q in split_quiet(audio, RATE, limit))
                    split_errors[limit] += word_errors(normalize(ref), normalize(text))
                t0 = time.perf_counter()
                ids = ms.generate(audio)
                dt = time.perf_counter() - t0
                hyp = tokens_to_text(ids, ms._vocab)
                r, h = normalize(ref), normalize(hyp)
                run, tail = missing_run(r, h)
                rows.append(
                    dict(
                        who=who,
                        part=part_of(group[0][0].id),
                        secs=len(audio) / RATE,
                        errors=word_errors(r, h),
                        words=len(r),
                        run=run,
                        tail=tail,
                        extra=inserted_run(r, h),
                        looped=looped(hyp) and not looped(ref),
                        capped=ids[-1] != END,
                        cost=dt / (len(audio) / RATE),
                        hyp=hyp,
                    )
                )
        if not rows:
            continue
        wer = sum(x["errors"] for x in rows) / sum(x["words"] for x in rows)
        lo, hi = min(x["secs"] for x in rows), max(x["secs"] for x in rows)
        print(
            f"| {target:.0f} | {len(rows)} | {lo:.1f}-{hi:.1f} | {wer:.3f} | {max(x['run'] for x in rows)} | "
            f"{sum(x['tail'] for x in rows)} | {max(x['extra'] for x in rows)} | {sum(x['looped'] for x in rows)} | "
            f"{sum(x['capped'] for x in rows)} | {statistics.mean(x['cost'] for x in rows):.3f} |"
            + "".join(
                f" in pieces <= {k:.0f} s: WER {v / sum(x['words'] for x in rows):.3f};"
                for k, v in split_errors.items()
            )
        )
        for x in rows:
            if x["tail"] or x["looped"] or x["capped"] or x["run"] >= 4 or x["extra"] >= 4:
                print(
                    f"    {x['who']} ({x['part']}) {x['secs']:.1f} s: missing run {x['run']}, tail {x['tail']}, "
                    f"inserted run {x['extra']}, looped {x['looped']}, capped {x['capped']}: ...{x['hyp'][-150:]!r}"
                )
    await ms.aclose()


if __name__ == "__main__":
    asyncio.run(main())
