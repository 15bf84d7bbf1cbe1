"""Where the session's words leave it, masked when `AgentConfig.privacy` asks: the user's words
on their way to the LLM, and the events and turn records handed to subscribers and turns.jsonl."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from voxloop.config import AgentConfig
from voxloop.redact import redact

E = TypeVar("E")


def llm_scrub(config: AgentConfig) -> Callable[[str], str] | None:
    """What the history applies to the user's words before the LLM sees them."""
    return redact if config.privacy.redact_llm else None


def redacted(value: Any) -> Any:
    """`value` with every string in it (in dicts and lists too) masked."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redacted(v) for v in value)
    return value


def redacted_event(event: E) -> E:
    """A copy of a session event (a frozen dataclass) with its text fields masked."""
    if not dataclasses.is_dataclass(event) or isinstance(event, type):
        return event
    changes = {
        f.name: redacted(v)
        for f in dataclasses.fields(event)
        if isinstance(v := getattr(event, f.name), str | dict | list)
    }
    return dataclasses.replace(event, **changes)
