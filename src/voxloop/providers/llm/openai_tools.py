"""Tool calls on OpenAI's chat API: messages as the wire has them, and calls read from the
streamed `tool_calls` deltas.

A streamed call comes in pieces, keyed by its `index`: the first delta has the call's `id` and
`function.name`, the next ones add to `function.arguments` (JSON text cut anywhere). Several
calls may interleave. A call is complete when the reply ends (`finish_reason` "tool_calls").
"""

from __future__ import annotations

from typing import Any

from voxloop.providers.base import Message, ToolCall


def wire_message(m: Message) -> dict[str, Any]:
    """One message as OpenAI's chat API takes it."""
    if m.role == "assistant" and m.tool_calls:
        return {
            "role": "assistant",
            "content": m.content or None,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in m.tool_calls
            ],
        }
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
    return {"role": m.role, "content": m.content}


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


class ToolCallDeltas:
    """The calls of one streamed reply, put together from their deltas."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def add(self, deltas: Any) -> bool:
        """Take a delta's `tool_calls` (None or a list); True if it held any."""
        if not deltas:
            return False
        for d in deltas:
            index = _get(d, "index")
            call = self._calls.setdefault(index if isinstance(index, int) else len(self._calls), {})
            if _get(d, "id"):
                call["id"] = _get(d, "id")
            fn = _get(d, "function")
            if fn is not None:
                if _get(fn, "name"):
                    call["name"] = call.get("name", "") + _get(fn, "name")
                if _get(fn, "arguments"):
                    call["arguments"] = call.get("arguments", "") + _get(fn, "arguments")
        return True

    def done(self) -> list[ToolCall]:
        """The calls, in index order."""
        return [
            ToolCall(c.get("name", ""), c.get("arguments", "") or "{}", c.get("id", "") or f"call_{i}")
            for i, c in sorted(self._calls.items())
        ]
