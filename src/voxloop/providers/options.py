"""Command-line options that choose providers, for every command that runs one (voxloop.cli)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from voxloop.config import STTConfig
from voxloop.errors import UnknownProvider
from voxloop.providers.registry import names


def provider_type(kind: str) -> Callable[[str], str]:
    """An argparse type: one provider of `kind`, or a fallback chain of them (`deepgram,whisper`)."""

    def check(value: str) -> str:
        try:
            names(kind, value)
        except UnknownProvider as e:
            raise argparse.ArgumentTypeError(f"{e.message} ({e.hint})") from None
        return value

    return check


def add_stt_choice(g: argparse._ActionsContainer) -> None:
    g.add_argument(
        "--stt",
        default=STTConfig.provider,
        type=provider_type("stt"),
        help="the recogniser: whisper (--stt-model), moonshine (Moonshine tiny, English) or deepgram "
        "(Nova-3 over its WebSocket); a comma list is a fallback chain, e.g. deepgram,whisper",
    )
    add_deepgram_url(g)


def add_deepgram_url(g: argparse._ActionsContainer) -> None:
    g.add_argument(
        "--deepgram-url",
        default="",
        help="Deepgram's API or a compatible server, e.g. http://127.0.0.1:8000 (default: "
        "$DEEPGRAM_BASE_URL, else https://api.deepgram.com; the key: $DEEPGRAM_API_KEY)",
    )


def voice_name(tts: str) -> str:
    """The voice of a --tts choice: Piper's joe, else heart (the first provider of a chain decides)."""
    return "joe" if tts.split(",")[0] == "piper" else "heart"
