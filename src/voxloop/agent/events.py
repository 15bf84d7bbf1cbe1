"""What a session reports, as plain data. Every transport and the turn log read the same events.

`t` is the session clock (seconds since the session started).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voxloop.providers.recovery import Incident


@dataclass(frozen=True)
class Event:
    t: float

    @property
    def type(self) -> str:
        name = type(self).__name__
        return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self)}


@dataclass(frozen=True)
class SpeechStarted(Event):
    audio_s: float  # where in the input the speech began


@dataclass(frozen=True)
class SpeechEnded(Event):
    audio_s: float  # where in the input the speech ended


@dataclass(frozen=True)
class TurnDecided(Event):
    turn_id: int


@dataclass(frozen=True)
class PartialTranscript(Event):
    text: str


@dataclass(frozen=True)
class FinalTranscript(Event):
    turn_id: int
    text: str
    revises: bool = False  # the last turn's words heard again with this one's: this text replaces it


@dataclass(frozen=True)
class AgentSpeech(Event):
    turn_id: int
    text: str  # the piece of the reply that was just sent to the speaker


@dataclass(frozen=True)
class Interrupted(Event):
    turn_id: int
    heard_text: str


@dataclass(frozen=True)
class AgentPaused(Event):
    turn_id: int  # user sound while the agent spoke: its voice is held until the sound is judged


@dataclass(frozen=True)
class AgentResumed(Event):
    turn_id: int
    reason: str  # why the sound did not take the turn ("no words", "backchannel: uh-huh")


@dataclass(frozen=True)
class PlaybackFinished(Event):
    turn_id: int


@dataclass(frozen=True)
class TurnDropped(Event):
    turn_id: int
    reason: str


@dataclass(frozen=True)
class ToolStarted(Event):
    """The language model called a tool (`arguments`: its JSON object as text)."""

    turn_id: int
    name: str
    arguments: str
    call_id: str = ""


@dataclass(frozen=True)
class ToolFinished(Event):
    """A tool call ended: `result` is what the model read; `error` "timeout" or the failure."""

    turn_id: int
    name: str
    ok: bool
    result: str
    error: str = ""
    ms: float = 0.0
    call_id: str = ""


@dataclass(frozen=True)
class Transfer(Event):
    """The caller is to be handed to a person (`transfer_to_human`), for `reason`. A telephony
    transport ends the call's stream with a transfer hint once the agent has said so."""

    turn_id: int
    reason: str


@dataclass(frozen=True)
class TurnCompleted(Event):
    record: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorOccurred(Event):
    """A failure, as data: `stage` (stt, llm, tts, reply), `provider`, and `category` (auth,
    rate_limit, connectivity, server, timeout, bad_request: voxloop.errors). The session lives on."""

    code: str
    message: str
    stage: str = ""
    provider: str = ""
    category: str = ""
    turn_id: int | None = None  # the turn it happened in, when one is being answered


@dataclass(frozen=True)
class ProviderRetry(Event):
    """A provider's request failed and is tried again after `delay_s` (retry `attempt`, from 1)."""

    stage: str
    provider: str
    category: str
    attempt: int
    delay_s: float
    turn_id: int | None = None


@dataclass(frozen=True)
class ProviderFallback(Event):
    """A provider failed past its retries: `to_provider`, the next of its chain, takes over."""

    stage: str
    provider: str
    to_provider: str
    category: str
    turn_id: int | None = None


def incident_event(i: Incident, turn_id: int | None) -> tuple[type[Event], dict[str, Any]] | None:
    """A provider's failure, retry or move to the next of its chain, as the event that reports it
    (its type and fields); None for what is not reported as an event (a provider recovered)."""
    common: dict[str, Any] = {"stage": i.stage, "provider": i.provider, "category": i.category}
    common["turn_id"] = turn_id
    if i.kind == "error":
        return ErrorOccurred, {"code": f"{i.stage}_{i.category or 'error'}", "message": i.message, **common}
    if i.kind == "retry":
        return ProviderRetry, {"attempt": i.attempt, "delay_s": i.delay_s, **common}
    if i.kind == "fallback":
        return ProviderFallback, {"to_provider": i.to_provider, **common}
    return None
