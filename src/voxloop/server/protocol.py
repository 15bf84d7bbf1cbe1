"""The wire protocol of `/v1/agent`, version 1 (docs/protocol.md describes it for client authors).

Binary frames carry audio as 16-bit little-endian mono PCM: the client's microphone at the rate it
declared in `start`, the agent's voice at the rate the server declared in `started`; or, when
`start` asks for `"codec": "opus"` (or `input_codec` / `output_codec` for one direction), one raw
20 ms Opus packet per frame. Text frames
carry JSON objects with a `type`: control from the client, events from the server.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from voxloop.agent import events as ev
from voxloop.audio.opus import DECODE_RATE as OPUS_DECODE_RATE
from voxloop.audio.opus import RATES as OPUS_RATES
from voxloop.config import AgentConfig
from voxloop.server import jsontext

VERSION = 1
MIN_RATE, MAX_RATE = 8000, 48000  # sample rates a client may send or ask for
MAX_PROMPT_CHARS = 4000

# WebSocket close codes the server uses (besides 1009, message too big, from the WebSocket layer).
CLOSE_NORMAL = 1000  # after `stop`
CLOSE_RESTART = 1012  # the server is shutting down: connect again (a load balancer picks another)
CLOSE_TRY_LATER = 1013  # server busy, or models still loading
CLOSE_IDLE = 4008  # nothing received for `idle_timeout_s`

# Error codes. Every error event carries one; only `fatal` ones are followed by a close.
BAD_JSON = "bad_json"
BAD_MESSAGE = "bad_message"
UNKNOWN_TYPE = "unknown_type"
UNSUPPORTED_PROTOCOL = "unsupported_protocol"
NOT_STARTED = "not_started"
ALREADY_STARTED = "already_started"
BAD_AUDIO = "bad_audio"
FRAME_TOO_LARGE = "frame_too_large"
RATE_LIMITED = "rate_limited"
IDLE_TIMEOUT = "idle_timeout"
SERVER_BUSY = "server_busy"
NOT_READY = "not_ready"
INTERNAL_ERROR = "internal_error"
SHUTTING_DOWN = "shutting_down"


class ProtocolError(Exception):
    """A client message the server cannot act on; answered with an error event of this code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- client -> server ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionSettings:
    """What a client may choose per session (the models themselves are the server's)."""

    system_prompt: str | None = None
    end_silence_ms: int | None = None
    interruptions: bool | None = None

    def apply(self, base: AgentConfig) -> AgentConfig:
        llm, turn = base.llm, base.turn
        if self.system_prompt is not None:
            llm = dataclasses.replace(llm, system_prompt=self.system_prompt)
        if self.end_silence_ms is not None:
            turn = dataclasses.replace(turn, end_silence_ms=self.end_silence_ms)
        if self.interruptions is not None:
            turn = dataclasses.replace(turn, interruptions=self.interruptions)
        return dataclasses.replace(base, llm=llm, turn=turn)


def effective_settings(config: AgentConfig) -> dict[str, Any]:
    return {
        "system_prompt": config.llm.system_prompt,
        "end_silence_ms": config.turn.end_silence_ms,
        "interruptions": config.turn.interruptions,
    }


@dataclass(frozen=True)
class Start:
    input_sample_rate: int
    output_sample_rate: int | None  # None: the voice's own rate
    settings: SessionSettings
    input_codec: str = "pcm16"  # the microphone's binary frames: "pcm16" or "opus" (wire_audio.py)
    output_codec: str = "pcm16"  # the voice's


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class Interrupt:
    pass


@dataclass(frozen=True)
class Playback:
    position: int  # the next agent sample the client will play, counted over every sample sent


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class EndTurn:
    """The user's turn is over (push-to-talk released): no need to wait for the end silence."""


ClientMessage = Start | Stop | Interrupt | Playback | Ping | EndTurn


def parse(text: str) -> ClientMessage:
    """One text frame from the client, checked. Unknown fields are ignored; unknown settings are not."""
    try:
        msg = jsontext.loads(text)
    except ValueError as e:
        raise ProtocolError(BAD_JSON, f"a text frame must hold one JSON object: {e}") from None
    if not isinstance(msg, dict):
        raise ProtocolError(BAD_MESSAGE, "a text frame must hold a JSON object with a 'type'")
    kind = msg.get("type")
    if kind == "start":
        return _start(msg)
    if kind == "stop":
        return Stop()
    if kind == "interrupt":
        return Interrupt()
    if kind == "playback":
        return Playback(_int(msg, "position", 0, 2**53))
    if kind == "ping":
        return Ping()
    if kind == "end_turn":
        return EndTurn()
    if not isinstance(kind, str):
        raise ProtocolError(BAD_MESSAGE, "a message needs a string 'type'")
    raise ProtocolError(
        UNKNOWN_TYPE, f"unknown message type {kind!r}: use start, stop, interrupt, end_turn, playback or ping"
    )


def _start(msg: dict[str, Any]) -> Start:
    version = msg.get("protocol", VERSION)
    if version != VERSION:
        raise ProtocolError(UNSUPPORTED_PROTOCOL, f"this server speaks protocol {VERSION}, not {version!r}")
    codec = _codec(msg, "codec", "pcm16")
    codec_in, codec_out = _codec(msg, "input_codec", codec), _codec(msg, "output_codec", codec)
    # Opus carries its own rate (decoded at 48 kHz): the microphone's rate is optional then
    opus_in = codec_in == "opus" and "input_sample_rate" not in msg
    rate = OPUS_DECODE_RATE if opus_in else _int(msg, "input_sample_rate", MIN_RATE, MAX_RATE)
    out = _int(msg, "output_sample_rate", MIN_RATE, MAX_RATE) if "output_sample_rate" in msg else None
    if codec_out == "opus" and out is not None and out not in OPUS_RATES:
        raise ProtocolError(
            BAD_MESSAGE, f"Opus voice is encoded at {', '.join(map(str, OPUS_RATES))} Hz, not {out}"
        )
    raw = msg.get("settings", {})
    if not isinstance(raw, dict):
        raise ProtocolError(BAD_MESSAGE, "'settings' must be an object")
    known = {f.name for f in dataclasses.fields(SessionSettings)}
    if unknown := sorted(set(raw) - known):
        raise ProtocolError(BAD_MESSAGE, f"unknown settings {unknown}: the known ones are {sorted(known)}")
    prompt = raw.get("system_prompt")
    if prompt is not None and (not isinstance(prompt, str) or not 0 < len(prompt) <= MAX_PROMPT_CHARS):
        raise ProtocolError(BAD_MESSAGE, f"'system_prompt' must be text of 1-{MAX_PROMPT_CHARS} characters")
    silence = _int(raw, "end_silence_ms", 200, 5000) if "end_silence_ms" in raw else None
    interruptions = raw.get("interruptions")
    if interruptions is not None and not isinstance(interruptions, bool):
        raise ProtocolError(BAD_MESSAGE, "'interruptions' must be true or false")
    return Start(rate, out, SessionSettings(prompt, silence, interruptions), codec_in, codec_out)


def _codec(obj: dict[str, Any], key: str, default: str) -> str:
    v = obj.get(key, default)
    if v not in ("pcm16", "opus"):
        raise ProtocolError(BAD_MESSAGE, f'{key!r} must be "pcm16" or "opus", got {v!r}')
    return str(v)


def check_prompt_budget(settings: SessionSettings, context_tokens: int) -> None:
    """A session's system prompt must leave the model room for the conversation: at most a
    quarter of its context (estimated at 4 characters a token). A longer one would be prefilled
    on every turn, holding the model from every other session (the probe: 4000 characters got
    only the filler, then stage_timeout, and slowed an unrelated conversation by ~7 s)."""
    if settings.system_prompt is None:
        return
    tokens, budget = len(settings.system_prompt) // 4, context_tokens // 4
    if tokens > budget:
        raise ProtocolError(
            BAD_MESSAGE,
            f"'system_prompt' is about {tokens} tokens: this server's model takes at most {budget} "
            f"(about {budget * 4} characters), a quarter of its {context_tokens}-token context",
        )


def _int(obj: dict[str, Any], key: str, lo: int, hi: int) -> int:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ProtocolError(BAD_MESSAGE, f"{key!r} must be a whole number from {lo} to {hi}, got {v!r}")
    return v


# -- server -> client ------------------------------------------------------------------------------
# Session events as the wire names them. Every event kind must be listed (a test checks): a new one
# is a protocol change, to be documented, not something that leaks out by accident.
WIRE_TYPES: dict[type[ev.Event], str] = {
    ev.SpeechStarted: "speech_started",
    ev.SpeechEnded: "speech_ended",
    ev.PartialTranscript: "partial_transcript",
    ev.TurnDecided: "turn_decided",
    ev.FinalTranscript: "final_transcript",
    ev.AgentSpeech: "agent_speech",
    ev.AgentPaused: "agent_paused",
    ev.AgentResumed: "agent_resumed",
    ev.Interrupted: "interrupted",
    ev.PlaybackFinished: "playback_finished",
    ev.TurnDropped: "turn_dropped",
    ev.TurnCompleted: "turn_completed",
    ev.ErrorOccurred: "error",
    ev.ProviderRetry: "provider_retry",
    ev.ProviderFallback: "provider_fallback",
    ev.ToolStarted: "tool_started",
    ev.ToolFinished: "tool_finished",
    ev.Transfer: "transfer",
}


def event_message(event: ev.Event) -> dict[str, Any] | None:
    """A session event as a wire message (None for a kind the protocol does not carry)."""
    name = WIRE_TYPES.get(type(event))
    if name is None:
        return None
    msg = event.to_dict()
    msg["type"] = name
    if isinstance(event, ev.TurnCompleted):
        msg["turn"] = msg.pop("record")  # the same fields as a line of turns.jsonl
    if isinstance(event, ev.ErrorOccurred):
        msg["fatal"] = False
    return msg


def error_message(code: str, message: str, *, fatal: bool = False) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "stage": "protocol", "fatal": fatal}


def dumps(msg: dict[str, Any]) -> str:
    return json.dumps(msg, ensure_ascii=False, separators=(",", ":"))
