"""Deepgram's live transcription messages (`WS /v1/listen`), as the provider reads them.

Server -> client (JSON text frames): `Results` (`is_final`, `speech_final`, `from_finalize`,
`start` and `duration` in seconds of the audio received on this socket, the best alternative's
`transcript` and `words`), `UtteranceEnd` (`last_word_end`), `SpeechStarted` (`timestamp`),
`Metadata` (after CloseStream), and errors (`type: Error`).
Client -> server: binary linear16 audio; `KeepAlive`, `Finalize`, `CloseStream` as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voxloop.config import DeepgramConfig
from voxloop.providers.base import Word
from voxloop.providers.deepgram_net import flag

KEEPALIVE = json.dumps({"type": "KeepAlive"})
FINALIZE = json.dumps({"type": "Finalize"})
CLOSE_STREAM = json.dumps({"type": "CloseStream"})


@dataclass(frozen=True)
class Results:
    text: str
    start: float
    duration: float
    is_final: bool
    speech_final: bool = False
    from_finalize: bool = False
    words: tuple[Word, ...] = ()

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class Other:
    """Any other message: UtteranceEnd, SpeechStarted, Metadata, Error, or one not known."""

    type: str
    body: dict[str, Any]


Message = Results | Other


def listen_params(cfg: DeepgramConfig, rate: int, keywords: Sequence[str]) -> list[tuple[str, str]]:
    """The query of `WS /v1/listen`: Nova-3, mono linear16 at `rate`, interim results, Deepgram's
    endpointing, utterance ends and VAD events, one `keyterm` per domain term."""
    params = [
        ("model", cfg.stt_model),
        ("encoding", "linear16"),
        ("sample_rate", str(rate)),
        ("channels", "1"),
        ("interim_results", "true"),
        ("endpointing", str(cfg.endpointing_ms)),
        ("utterance_end_ms", str(cfg.utterance_end_ms)),
        ("vad_events", "true"),
        ("punctuate", "true"),
        ("smart_format", flag(cfg.smart_format)),
    ]
    params += [("keyterm", k) for k in keywords if k.strip()]
    return params


def parse(text: str) -> Message:
    """One text frame; a frame that is not a JSON object is an `Other` of type "invalid"."""
    try:
        body = json.loads(text)
    except ValueError:
        return Other("invalid", {"text": text[:200]})
    if not isinstance(body, dict):
        return Other("invalid", {"text": text[:200]})
    kind = str(body.get("type", ""))
    if kind != "Results":
        return Other(kind, body)
    alternatives = (body.get("channel") or {}).get("alternatives") or [{}]
    best = alternatives[0] if isinstance(alternatives[0], dict) else {}
    words = tuple(
        Word(
            str(w.get("punctuated_word") or w.get("word") or ""),
            float(w.get("start", 0.0)),
            float(w.get("end", 0.0)),
            float(w.get("confidence", 1.0)),
        )
        for w in best.get("words") or ()
        if isinstance(w, dict)
    )
    return Results(
        text=str(best.get("transcript") or "").strip(),
        start=float(body.get("start") or 0.0),
        duration=float(body.get("duration") or 0.0),
        is_final=bool(body.get("is_final")),
        speech_final=bool(body.get("speech_final")),
        from_finalize=bool(body.get("from_finalize")),
        words=words,
    )
