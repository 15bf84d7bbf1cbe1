"""`voxloop bench wer`: the streaming recogniser as the loop drives it, beside offline decoding.

Streaming: each clip goes frame by frame through the loop's own VAD and endpointer into the STT
stream (pre-roll, pause hints, finalize at each turn end, adaptive silence when speech resumes
after a turn end), as fast as it decodes, and the final transcripts of its turns are joined.
Offline: the same model transcribes the whole clip on Whisper's standard path (30 s window,
beam 5). Both are scored with `corpus.normalize`.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from voxloop.agent.endpoint import Endpointer
from voxloop.bench.corpus import Clip, load_corpus, normalize, wer, word_errors
from voxloop.bench.stats import write_csv, write_json
from voxloop.config import AgentConfig
from voxloop.providers import registry
from voxloop.providers.base import STT, VAD

log = logging.getLogger("voxloop.bench")


async def streaming_text(vad: VAD, stt: STT, config: AgentConfig, clip: Clip) -> str:
    audio = np.concatenate([np.zeros(8000, np.float32), clip.audio(), np.zeros(16000, np.float32)])
    vs, stream = vad.stream(), stt.stream()
    ep = Endpointer(config.turn, config.vad, vad.sample_rate)
    n = vad.frame_samples
    keep = int((config.turn.preroll_ms + config.turn.min_speech_ms) / (n / 16)) + 2
    preroll: deque[np.ndarray] = deque(maxlen=keep)
    texts: list[str] = []
    in_turn = False
    ended: int | None = None  # where the last turn's speech ended
    try:
        for i in range(0, len(audio) - n + 1, n):
            frame = audio[i : i + n]
            if in_turn:
                await stream.push(frame)
            else:
                preroll.append(frame)
            for b in ep.update(vs(frame), i + n, n):
                if b.kind == "speech_start":
                    gap_ms = None if ended is None else (b.sample - ended) * 1000 / vad.sample_rate
                    if gap_ms is not None and gap_ms <= config.turn.max_end_silence_ms:
                        ep.went_on(gap_ms)  # the loop would still be answering: the user went on
                        if texts:
                            stream.continues(texts[-1])
                    in_turn = True
                    for f in preroll:
                        await stream.push(f)
                    preroll.clear()
                elif b.kind == "pause" and in_turn:
                    stream.speech_paused()
                elif b.kind == "resume" and in_turn:
                    stream.speech_resumed()
                elif b.kind == "turn_end" and in_turn:
                    in_turn, ended = False, b.sample
                    texts.append((await stream.finalize()).text)
        if in_turn:
            texts.append((await stream.finalize()).text)
    finally:
        await stream.aclose()
    return " ".join(t for t in texts if t)


async def run(corpus: Path, out: Path, config: AgentConfig, limit: int | None = None) -> dict[str, Any]:
    clips = load_corpus(corpus, limit)
    vad, stt = registry.create_vad(config), registry.create_stt(config)
    await vad.load()
    await stt.load()
    rows = []
    try:
        for clip in tqdm(clips, desc="wer", unit="clip"):
            s = await streaming_text(vad, stt, config, clip)
            o = (await stt.transcribe(clip.audio())).text
            # The loop's own final decoder (short window, final beam) on the whole clip, when the provider
            # has one: separates what streaming costs from what the decoder settings cost.
            same = getattr(stt, "decode_async", None)
            g = await same(clip.audio(), final=True) if same is not None else None
            ref = normalize(clip.transcript)
            rows.append(
                {
                    "id": clip.id,
                    "reference": clip.transcript,
                    "streaming": s,
                    "offline": o,
                    "offline_loop_decoder": g,
                    "words": len(ref),
                    "streaming_errors": word_errors(ref, normalize(s)),
                    "offline_errors": word_errors(ref, normalize(o)),
                }
            )
    finally:
        await stt.aclose()
    refs = [c.transcript for c in clips]
    res = {
        "n": len(rows),
        "words": sum(r["words"] for r in rows),
        "streaming_wer": round(wer(refs, [r["streaming"] for r in rows]), 4),
        "offline_wer": round(wer(refs, [r["offline"] for r in rows]), 4),
        "model": config.stt.model,
        "short_window": config.stt.short_window,
        "normaliser": "lowercase; punctuation removed except apostrophes; numbers not expanded",
    }
    if all(r["offline_loop_decoder"] is not None for r in rows):
        res["offline_loop_decoder_wer"] = round(wer(refs, [r["offline_loop_decoder"] for r in rows]), 4)
    res["relative_gap"] = round(res["streaming_wer"] / max(res["offline_wer"], 1e-9) - 1, 4)
    write_json(out / "wer.json", res)
    write_csv(out / "wer.csv", rows)
    same = res.get("offline_loop_decoder_wer")
    print(
        f"WER over {res['n']} clips ({res['words']} words): streaming {res['streaming_wer']:.3f}, "
        f"offline {res['offline_wer']:.3f} (relative gap {res['relative_gap']:+.1%})"
        + (f", offline with the loop's decoder {same:.3f}" if same is not None else "")
    )
    return res
