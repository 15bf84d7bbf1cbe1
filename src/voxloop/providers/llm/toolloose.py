"""Tool calls written some other way than Qwen2.5's format, which a small model often does.

Measured with `benchmarks/tool_calls.py` on Qwen2.5-Coder 1.5B: asked for the time, a reply is as
often `get_date_and_time`, `transfer_to_human(reason="...")`, `<search_knowledge_base
topic="opening hours"/>` or a ```json fenced object as the format its template asks for. None of
those is ever meant to be spoken, so a reply that *begins* with markup (`<`, `{`, a code fence) or
with a tool's name (`_` or spaces, any case) is read as a call, once it has ended (one that
cannot be read, such as `<tools></tools>`, is a call without a name: the model is told to try again):

- a JSON object `{"name": ..., "arguments": ...}` inside it (a fenced one);
- else the named tool, its arguments from a JSON object after the name, `key="value"` pairs
  (Python's call or XML's attributes), or the text after the name (`<tool>text</tool>`,
  `tool("text")`) for a tool with one parameter.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from typing import Any

from voxloop.providers.base import ToolCall

_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*|\s*```\s*$")
_PAIR = re.compile(r"""(\w+)\s*[=:]\s*(?:"([^"]*)"|'([^']*)')""")


def names(tools: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each tool's name -> its function schema."""
    return {t["function"]["name"]: t["function"] for t in tools if "function" in t}


def starts(tools: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """Lower-case beginnings that make a reply a loose call."""
    out: list[str] = ["```"]
    for n in names(tools):
        low = n.lower()
        out += [low, low.replace("_", " "), f"<{low}"]
    return tuple(out)


def begins_call(head: str, tools: Sequence[dict[str, Any]]) -> bool:
    """The reply so far (`head`, stripped) begins with markup (`<`, `{`, a fence: never spoken,
    perhaps an unreadable call) or with a tool's name and a boundary."""
    if head.startswith(("```", "<", "{")):
        return True
    return _match(head, tools) is not None


def _match(text: str, tools: Sequence[dict[str, Any]]) -> tuple[str, int] | None:
    for name in sorted(names(tools), key=len, reverse=True):
        pattern = r"^\W{0,2}" + "[_ ]".join(re.escape(p) for p in name.split("_")) + r"(?![\w])"
        m = re.match(pattern, text, re.IGNORECASE)
        if m is not None:
            return name, m.end()
    return None


def parse(text: str, tools: Sequence[dict[str, Any]]) -> list[ToolCall]:
    """The calls in a whole loose reply; one call with no name when none can be read."""
    from voxloop.providers.llm.tooltext import call_of

    body = _FENCE.sub("", text.strip())
    calls: list[ToolCall] = []
    rest = body.strip()
    while rest.startswith("{"):
        try:
            obj, end = json.JSONDecoder().raw_decode(rest)
        except ValueError:
            break
        call = call_of(obj)
        if call is None:
            break
        calls.append(call)
        rest = rest[end:].strip()
    if calls:
        return calls
    found = _match(body, tools)
    if found is None:
        return [ToolCall("", text.strip(), _id())]
    name, end = found
    args = _arguments(body[end:], names(tools)[name])
    return [ToolCall(name, json.dumps(args, ensure_ascii=False), _id())]


def _arguments(rest: str, schema: dict[str, Any]) -> dict[str, Any]:
    at = rest.find("{")
    if at >= 0:
        try:
            obj, _ = json.JSONDecoder().raw_decode(rest[at:])
            if isinstance(obj, dict):
                inner = obj.get("arguments", obj)
                return inner if isinstance(inner, dict) else {}
        except ValueError:
            pass
    pairs = {m.group(1): m.group(2) if m.group(2) is not None else m.group(3) for m in _PAIR.finditer(rest)}
    if pairs:
        return pairs
    params = list(schema.get("parameters", {}).get("properties", {}))
    text = re.sub(r"</?\w+>|/>|[<>()\"'`]", " ", rest).strip(" .,:;!?\n\t")
    return {params[0]: text} if text and len(params) == 1 else {}


def _id() -> str:
    return f"call_{secrets.token_hex(4)}"
