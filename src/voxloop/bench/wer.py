"""`voxloop bench wer`: the streaming recogniser as the loop drives it, beside offline decoding.

Streaming: each clip goes frame by frame through the loop's own VAD and endpointer into the STT
stream (pre-roll, pause hints, finalize at each turn end, adaptive silence when speech resumes
after a turn end), as fast as it decodes, and the final transcripts of its turns are joined.
Offline: the same model transcribes the whole clip on Whisper's standard path (30 s window,
beam 5). Both are scored with `corpus.normalize`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from voxloop.agent.listener import Listener
from voxloop.bench.corpus import Clip, load_corpus, normalize, wer, word_errors
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
    listener = Listener(vad, stt, config)
    try:
        texts = [x.text async for x in listener.listen(audio, 16000) if isinstance(x, Transcript)]
    finally:
        await listener.aclose()
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
