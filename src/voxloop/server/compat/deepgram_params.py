"""Query parameters of Deepgram's `/v1/listen` and `/v1/speak`, read and checked.

What voxloop acts on is read here; every other documented (or undocumented) parameter is accepted
and ignored, as Deepgram does. A value it cannot honour is a 400 (`DeepgramError`), and a model
name that stands for no local model of the right kind a 404.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from voxloop.audio import ogg_opus
from voxloop.config import AgentConfig
from voxloop.server.compat.deepgram_errors import DeepgramError
from voxloop.server.compat.names import Kind, serves

ENCODINGS = ("linear16", "mulaw", "alaw")
COMPRESSED = ("mp3", "opus", "flac", "aac")  # speech over REST only, through PyAV's encoders
OPUS = ("opus", "ogg-opus")  # Ogg Opus heard live, through PyAV's decoder (audio/ogg_opus.py)
MIN_RATE, MAX_RATE = 8000, 48000


class Query:
    """Repeated keys (`keyterm=a&keyterm=b`) kept; booleans as Deepgram writes them."""

    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        self.items = list(items)

    def get(self, key: str) -> str | None:
        values = self.all(key)
        return values[-1] if values else None

    def all(self, key: str) -> list[str]:
        return [v for k, v in self.items if k == key]

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.get(key)
        if value is None or value == "":
            return default
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise DeepgramError(400, f"{key}={value!r}: expected true or false")

    def number(self, key: str, low: int, high: int) -> int | None:
        value = self.get(key)
        if value is None or value == "":
            return None
        try:
            n = int(float(value))
        except ValueError:
            raise DeepgramError(400, f"{key}={value!r}: expected a whole number") from None
        if not low <= n <= high:
            raise DeepgramError(400, f"{key}={n}: must be between {low} and {high}")
        return n


def model_name(q: Query, kind: Kind, config: AgentConfig, default: str) -> str:
    name = q.get("model") or default
    if not serves(name, kind, config):
        what = "speech-to-text" if kind == "stt" else "text-to-speech"
        raise DeepgramError(
            404,
            f"No such model/language/tier combination found: {name!r} is not a {what} model here "
            "(see docs/compatible-apis.md for the names voxloop accepts)",
        )
    return name


def encoding(q: Query, allowed: Sequence[str] = ENCODINGS) -> str | None:
    value = q.get("encoding")
    if value is None or value == "":
        return None
    if value.lower() not in allowed:
        raise DeepgramError(400, f"encoding={value!r} is not supported here: use one of {', '.join(allowed)}")
    return value.lower()


def channels(q: Query) -> int:
    n = q.number("channels", 1, 64) or 1
    if n != 1:
        raise DeepgramError(
            400, f"channels={n}: voxloop transcribes one channel; mix the audio down to mono (channels=1)"
        )
    if q.flag("multichannel"):
        raise DeepgramError(400, "multichannel=true is not supported here: send one channel")
    return n


def keywords(q: Query) -> tuple[str, ...]:
    """`keyterm` and `keywords` (a keyword may carry an intensifier, `word:2`: the weight is dropped)."""
    words = [*q.all("keyterm"), *(k.rsplit(":", 1)[0] for k in q.all("keywords"))]
    return tuple(dict.fromkeys(w.strip() for w in words if w.strip()))


@dataclass(frozen=True)
class ListenOptions:
    model: str
    encoding: str | None  # None: a container (prerecorded) or linear16 (live)
    sample_rate: int | None
    interim_results: bool = False
    endpointing_ms: int | None = None  # None: the server's own end-of-turn silence
    endpointing: bool = True  # false: no result is ever speech_final
    utterance_end_ms: int | None = None
    vad_events: bool = False
    keywords: tuple[str, ...] = ()
    punctuate: bool = False
    smart_format: bool = False
    language: str = "en"
    paragraphs: bool = False
    utterances: bool = False

    @property
    def punctuated(self) -> bool:
        return self.punctuate or self.smart_format


def listen_options(params: Sequence[tuple[str, str]], config: AgentConfig, *, live: bool) -> ListenOptions:
    q = Query(params)
    model = model_name(q, "stt", config, "nova-3")
    enc = encoding(q, (*ENCODINGS, *OPUS))
    rate = q.number("sample_rate", MIN_RATE, MAX_RATE)
    if enc in OPUS:
        if live and not ogg_opus.available():
            raise DeepgramError(400, f"encoding={enc} needs PyAV's Opus decoder: use linear16, mulaw or alaw")
        rate = ogg_opus.RATE  # Opus says its own rate
    if enc is not None and rate is None:
        raise DeepgramError(400, f"encoding={enc} needs a sample_rate")
    if live and enc is None:
        if rate is not None:
            raise DeepgramError(400, "sample_rate needs an encoding (linear16, mulaw or alaw)")
        raise DeepgramError(
            400, "say what the live audio is: encoding (linear16, mulaw, alaw with sample_rate; or opus)"
        )
    channels(q)
    language = q.get("language") or "en"
    if not (language.lower() == "en" or language.lower().startswith("en-")):
        raise DeepgramError(400, f"language={language!r}: the loaded recogniser hears English (en) only")
    ep = q.get("endpointing")
    endpointing, endpointing_ms = True, None
    if ep is not None and ep.lower() == "false":
        endpointing = False
    elif ep is not None and ep.lower() != "true":
        endpointing_ms = q.number("endpointing", 0, 60_000)
    return ListenOptions(
        model=model,
        encoding=enc,
        sample_rate=rate,
        interim_results=q.flag("interim_results"),
        endpointing_ms=endpointing_ms,
        endpointing=endpointing,
        utterance_end_ms=q.number("utterance_end_ms", 1000, 60_000),
        vad_events=q.flag("vad_events"),
        keywords=keywords(q),
        punctuate=q.flag("punctuate"),
        smart_format=q.flag("smart_format"),
        language=language,
        paragraphs=q.flag("paragraphs"),
        utterances=q.flag("utterances"),
    )


@dataclass(frozen=True)
class SpeakOptions:
    model: str
    encoding: str  # linear16, mulaw, alaw; over REST also mp3, opus, flac, aac
    sample_rate: int  # of the raw encodings (the compressed ones have their codec's own)
    container: str  # wav or none (REST only); opus: ogg or none, both Ogg


def speak_options(
    params: Mapping[str, str] | Sequence[tuple[str, str]], config: AgentConfig, *, rest: bool
) -> SpeakOptions:
    """On the socket: raw audio (linear16, mulaw, alaw). Over REST also Deepgram's compressed
    encodings (mp3, its default there; opus in Ogg; flac; aac), at their codec's own rate."""
    q = Query(list(params.items()) if isinstance(params, Mapping) else params)
    model = model_name(q, "tts", config, "aura-2-thalia-en")
    enc = encoding(q, (*ENCODINGS, *COMPRESSED) if rest else ENCODINGS) or ("mp3" if rest else "linear16")
    default_rate = 24000 if enc == "linear16" else 8000
    rate = q.number("sample_rate", MIN_RATE, MAX_RATE) or default_rate
    raw_default = "wav" if rest and enc == "linear16" else "none"
    container = (q.get("container") or raw_default).lower()
    allowed = ("none", "ogg") if enc == "opus" else ("none",) if enc in COMPRESSED else ("wav", "none")
    if container not in allowed:
        raise DeepgramError(
            400, f"container={container!r} does not go with encoding={enc}: use {' or '.join(allowed)}"
        )
    return SpeakOptions(model, enc, rate, container)
