"""The JSON Deepgram's transcription answers are made of: words, alternatives, `Results`,
`Metadata`, paragraphs and utterances.

Words carry times in seconds from the start of the audio. Where the recogniser tells where each
word was said (`Transcript.words`: Whisper's cross-attention alignment), those times are used;
otherwise (`spread`) the words are spread over the speech they came from in proportion to their
length, an estimate that is right at the ends of the speech and approximate between them.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from voxloop.providers.base import Word

_PUNCT = re.compile(r"[^\w\s']")
_SENTENCE_END = re.compile(r"[.?!]['\")\]]*$")


@dataclass(frozen=True)
class ModelInfo:
    name: str  # the name the client asked for
    local: str  # the local model that answered

    @property
    def uuid(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"voxloop:{self.local}"))

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": f"voxloop-{self.local}", "arch": self.local}


def plain(token: str) -> str:
    """A word as Deepgram writes `word`: lower case, no punctuation (apostrophes kept)."""
    return _PUNCT.sub("", token.lower()).strip()


def spread(text: str, start: float, end: float, confidence: float = 1.0) -> tuple[Word, ...]:
    """The words of `text` spread over [start, end] in proportion to their length (an estimate)."""
    tokens = [t for t in text.split() if plain(t)]
    if not tokens:
        return ()
    weights = [len(plain(t)) + 1 for t in tokens]
    span, total = max(end - start, 0.0), sum(weights)
    words, at = [], start
    for token, w in zip(tokens, weights, strict=True):
        step = span * w / total
        words.append(Word(token, round(at, 3), round(at + step, 3), confidence))
        at += step
    return tuple(words)


def shifted(words: tuple[Word, ...], offset: float) -> tuple[Word, ...]:
    return tuple(
        Word(w.word, round(w.start + offset, 3), round(w.end + offset, 3), w.confidence) for w in words
    )


def from_onset(words: tuple[Word, ...], onset: float) -> tuple[Word, ...]:
    """Whisper's alignment starts a turn's first word in the silence before it (the pre-roll the
    recogniser hears): a word that starts before the speech did starts where the speech began, if
    that is within the word (as `deepgram_prerecorded.out_of_silence` does for a recording)."""
    return tuple(
        Word(w.word, round(onset, 3), w.end, w.confidence) if w.start < onset < w.end - 0.02 else w
        for w in words
    )


def word_json(w: Word, punctuated: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "word": plain(w.word),
        "start": w.start,
        "end": w.end,
        "confidence": round(w.confidence, 4),
    }
    if punctuated:
        out["punctuated_word"] = w.word
    return out


def transcript_of(text: str, punctuated: bool) -> str:
    if punctuated:
        return " ".join(text.split())
    return " ".join(p for p in (plain(t) for t in text.split()) if p)


def confidence_of(words: tuple[Word, ...]) -> float:
    return round(sum(w.confidence for w in words) / len(words), 4) if words else 0.0


def alternative(text: str, words: tuple[Word, ...], punctuated: bool) -> dict[str, Any]:
    return {
        "transcript": transcript_of(text, punctuated),
        "confidence": confidence_of(words),
        "words": [word_json(w, punctuated) for w in words if plain(w.word)],
    }


def results_message(
    *,
    start: float,
    duration: float,
    text: str,
    words: tuple[Word, ...],
    is_final: bool,
    speech_final: bool,
    from_finalize: bool,
    punctuated: bool,
    request_id: str,
    model: ModelInfo,
) -> dict[str, Any]:
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": round(max(duration, 0.0), 3),
        "start": round(start, 3),
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": from_finalize,
        "channel": {"alternatives": [alternative(text, words, punctuated)]},
        "metadata": {"request_id": request_id, "model_info": model.as_dict(), "model_uuid": model.uuid},
    }


def metadata(request_id: str, sha256: hashlib._Hash, duration: float, model: ModelInfo) -> dict[str, Any]:
    """The fields the live `Metadata` message and the prerecorded `metadata` share."""
    return {
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": sha256.hexdigest(),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "duration": round(duration, 3),
        "channels": 1,
        "models": [model.uuid],
        "model_info": {model.uuid: model.as_dict()},
    }


@dataclass(frozen=True)
class Utterance:
    """One stretch of speech the listener heard as a turn: its words, times in the whole audio."""

    text: str
    start: float
    end: float
    words: tuple[Word, ...]


def paragraphs(utts: list[Utterance], punctuated: bool) -> dict[str, Any]:
    """One paragraph per utterance, its sentences split at their final punctuation."""
    paras = []
    for u in utts:
        sentences, current = [], []
        for w in u.words:
            current.append(w)
            if _SENTENCE_END.search(w.word):
                sentences.append(current)
                current = []
        if current:
            sentences.append(current)
        paras.append(
            {
                "sentences": [
                    {
                        "text": transcript_of(" ".join(w.word for w in s), punctuated),
                        "start": s[0].start,
                        "end": s[-1].end,
                    }
                    for s in sentences
                ],
                "speaker": 0,
                "num_words": len(u.words),
                "start": u.start,
                "end": u.end,
            }
        )
    text = "\n".join(transcript_of(u.text, punctuated) for u in utts)
    return {"transcript": f"\n{text}" if text else "", "paragraphs": paras}


def utterance_json(u: Utterance, punctuated: bool) -> dict[str, Any]:
    return {
        "start": u.start,
        "end": u.end,
        "confidence": confidence_of(u.words),
        "channel": 0,
        "transcript": transcript_of(u.text, punctuated),
        "words": [{**word_json(w, punctuated), "speaker": 0} for w in u.words if plain(w.word)],
        "speaker": 0,
        "id": str(uuid.uuid4()),
    }
