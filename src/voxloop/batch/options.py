"""`voxloop transcribe`'s options, and running it (voxloop.batch.run)."""

from __future__ import annotations

import argparse
from pathlib import Path

from voxloop.config import STTConfig
from voxloop.providers.options import add_stt_choice


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tr = sub.add_parser("transcribe", help="transcribe audio files and folders (batch, every core)")
    tr.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="audio files, or folders (recursive)")
    tr.add_argument("--out", type=Path, default=None, help="one transcript per file here, mirroring folders")
    tr.add_argument("--format", default="txt", choices=["json", "txt", "srt", "vtt"])
    tr.add_argument("--workers", type=int, default=0, help="files decoded at once, one core each (0: all)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_stt_choice(tr)
    tr.add_argument("--stt-model", default=STTConfig.model, choices=["tiny.en", "base"], help="for whisper")
    tr.add_argument("--keywords", default="")


async def dispatch(a: argparse.Namespace) -> int:
    keywords = [k.strip() for k in a.keywords.split(",") if k.strip()]
    cfg = STTConfig(provider=a.stt, model=a.stt_model, keywords=keywords)
    cfg.deepgram.base_url = a.deepgram_url
    from voxloop.batch.run import run as transcribe

    return await transcribe(a.paths, a.out, a.format, cfg, a.workers, not a.no_progress)
