"""`voxloop bench wer`: the streaming recogniser as the loop drives it, beside offline decoding.

Streaming: each clip goes frame by frame through the loop's own Listener (VAD, endpointer,
pre-roll, pause hints, finalize at each turn end, adaptive silence when speech resumes after a
turn end), as fast as it decodes, and the final transcripts of its turns are joined. Offline: the
same recogniser on the whole clip, on its standard path (Whisper: 30 s windows, beam 5;
Moonshine: the whole clip cut at its quiet moments). The loop decoder: the decoder the stream
uses, on the whole clip. All are scored with `corpus.normalize`, with `words_lost` beside the
WER (runs of 3+ reference words missing while the offline path has them), for the whole corpus
and for each part of the speaker split (`bench/split.py`). `--long`: the corpus's long turns
(`bench/long_turns.py`) instead of its clips.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from voxloop.agent.listener import Listener
from voxloop.bench.corpus import (
    LOST_RUN,
    Clip,
    load_corpus,
    normalize,
    said_once,
    wer,
    word_errors,
    words_lost,
)
from voxloop.bench.cpuload import CpuLoad
from voxloop.bench.long_turns import build_long_turns
from voxloop.bench.split import part_of, parts_of
from voxloop.bench.stats import write_csv, write_json
from voxloop.config import AgentConfig
from voxloop.providers import registry
from voxloop.providers.base import STT, VAD, Transcript

log = logging.getLogger("voxloop.bench")


async def streaming_text(vad: VAD, stt: STT, config: AgentConfig, clip: Clip) -> str:
    """The clip, with 0.5 s of silence before and 1 s after, through the loop's own Listener (VAD,
    endpointer, pre-roll, recogniser hints, adaptive silence) as fast as it decodes: the final
    transcripts of its turns, joined."""
    audio = np.concatenate([np.zeros(8000, np.float32), clip.audio(), np.zeros(16000, np.float32)])
    listener = Listener(vad, stt, config, rehear=True)
    try:
        finals = [
            (x.text, x.revises) async for x in listener.listen(audio, 16000) if isinstance(x, Transcript)
        ]
    finally:
        await listener.aclose()
    return said_once(finals)


def _summary(rows: list[dict[str, Any]], idx: list[int]) -> dict[str, Any]:
    """WER, words lost and decode time over the rows `idx`."""
    sel = [rows[i] for i in idx]
    refs = [r["reference"] for r in sel]
    out: dict[str, Any] = {
        "n": len(sel),
        "words": sum(r["words"] for r in sel),
        "audio_s": round(sum(r["audio_s"] for r in sel), 1),
    }
    for name in SYSTEMS:
        if all(r[name] is not None for r in sel):
            out[f"{name}_wer"] = round(wer(refs, [r[name] for r in sel]), 4)
            out[f"{name}_words_lost"] = sum(r[f"{name}_words_lost"] for r in sel)
            secs = sum(r[f"{name}_s"] for r in sel)
            out[f"{name}_decode_s"] = round(secs, 2)
            out[f"{name}_rtf"] = round(secs / max(out["audio_s"], 1e-9), 4)
    out["relative_gap"] = round(out["streaming_wer"] / max(out["offline_wer"], 1e-9) - 1, 4)
    return out


async def _timed(coro: Awaitable[str]) -> tuple[str, float]:
    t0 = time.perf_counter()
    text = await coro
    return text, time.perf_counter() - t0


async def run(
    corpus: Path,
    out: Path,
    config: AgentConfig,
    limit: int | None = None,
    long: bool = False,
    cpu_load: int = 0,
    opus_kbps: int = 0,
) -> dict[str, Any]:
    """WER of the streaming recogniser (as the loop drives it), of its decoder on whole clips,
    and of the offline standard path, with `words_lost` and decode time, for the whole corpus and
    for each part of the speaker split (`bench.split`). `long`: the long turns built from the
    corpus (`bench.long_turns`) instead of its clips."""
    clips: list[Clip] = load_corpus(corpus, None if long else limit)
    if long:
        turns: list[Clip] = [*build_long_turns(clips)]
        clips = turns[:limit] if limit else turns
    wire = ""
    if opus_kbps:  # every system hears the clips through the wire's Opus codec
        from voxloop.bench.opus_clip import through_opus, wire_bytes_per_s

        clips = through_opus(clips, opus_kbps)
        wire = f"Opus {opus_kbps} kbit/s at 16 kHz, {wire_bytes_per_s(clips, opus_kbps):.0f} bytes/s"
    # Fed faster than real time, decodes queue up: the loop's 12 s stage deadline would end turns
    # that are only waiting their turn. A recogniser that is really stuck still shows, after 10 min.
    listening = replace(config, turn=replace(config.turn, stage_timeout_s=600.0))
    vad, stt = registry.create_vad(config), registry.create_stt(config)
    await vad.load()
    await stt.load()
    rows = []
    try:
        with CpuLoad(cpu_load) as load:
            for clip in tqdm(clips, desc="wer (long turns)" if long else "wer", unit="clip"):
                audio = clip.audio()
                s, s_t = await _timed(streaming_text(vad, stt, listening, clip))
                o, o_t = await _timed(_text(stt.transcribe(audio)))
                # The loop's own decoder (short window, final beam) on the whole clip, when the provider
                # has one: separates what streaming costs from what the decoder settings cost.
                same = getattr(stt, "decode_async", None)
                g, g_t = await _timed(same(audio, final=True)) if same is not None else (None, 0.0)
                row: dict[str, Any] = {
                    "id": clip.id,
                    "part": part_of(clip.id),
                    "audio_s": round(len(audio) / 16000, 2),
                    "reference": clip.transcript,
                    "streaming": s,
                    "offline": o,
                    "offline_loop_decoder": g,
                    "words": len(normalize(clip.transcript)),
                }
                for name, text, secs in (
                    ("streaming", s, s_t),
                    ("offline", o, o_t),
                    ("offline_loop_decoder", g, g_t),
                ):
                    row[f"{name}_s"] = round(secs, 3)
                    if text is not None:
                        row[f"{name}_errors"] = word_errors(normalize(clip.transcript), normalize(text))
                        row[f"{name}_words_lost"] = words_lost(clip.transcript, text, o)
                rows.append(row)
    finally:
        await stt.aclose()
    parts = parts_of([r["id"] for r in rows])
    res: dict[str, Any] = {
        "stt": config.stt.provider,
        "model": config.stt.model,
        "short_window": config.stt.short_window,
        "clips": "long turns" if long else "corpus clips",
        "cpu_load": load.report(),
        "input": wire or "PCM16 at 16 kHz, 32000 bytes/s",
        "normaliser": "lowercase; punctuation removed except apostrophes; numbers not expanded",
        "words_lost": f"reference words in runs of {LOST_RUN}+ left out while the offline path has them",
        "streaming_s": "the streaming run's wall time per clip (as fast as it decodes, not paced)",
        **_summary(rows, parts["all"]),
        "parts": {p: _summary(rows, idx) for p, idx in parts.items() if p != "all"},
    }
    write_json(out / "wer.json", res)
    write_csv(out / "wer.csv", rows)
    print(
        f"{res['stt']} {res['model']}, {res['clips']} as {res['input']}, {cpu_load} busy process(es) beside it:"
    )
    for name, summ in (("all", res), *res["parts"].items()):
        same = summ.get("offline_loop_decoder_wer")
        print(
            f"  {name:<10} {summ['n']:>3} clips {summ['words']:>5} words: streaming WER "
            f"{summ['streaming_wer']:.3f} (lost {summ['streaming_words_lost']}), offline {summ['offline_wer']:.3f} "
            f"(gap {summ['relative_gap']:+.1%})"
            + (
                f", loop decoder {same:.3f} (lost {summ['offline_loop_decoder_words_lost']})"
                if same is not None
                else ""
            )
            + f"; decode s: streaming {summ['streaming_decode_s']}, offline {summ['offline_decode_s']}"
        )
    return res


async def _text(coro: Awaitable[Transcript]) -> str:
    return (await coro).text


SYSTEMS = ("streaming", "offline", "offline_loop_decoder")
