"""`voxloop say`'s options, and running it (voxloop.commands.say)."""

from __future__ import annotations

import argparse
from pathlib import Path

from voxloop.config import TTSConfig
from voxloop.providers.options import add_deepgram_url, provider_type, voice_name


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("say", help="speak text to a WAV file")
    s.add_argument("text")
    s.add_argument("-o", "--out", type=Path, default=Path("say.wav"))
    s.add_argument("--tts", default="hibari", type=provider_type("tts"))
    add_deepgram_url(s)
    s.add_argument("--speed", type=float, default=1.0)


async def dispatch(a: argparse.Namespace) -> None:
    from voxloop import commands

    voice = TTSConfig(provider=a.tts, voice=voice_name(a.tts), speed=a.speed)
    voice.deepgram.base_url = a.deepgram_url
    path, seconds = await commands.say(a.text, a.out, voice)
    print(f"wrote {path} ({seconds:.2f} s of audio)")
