"""A tool's JSON schema from its Python signature and docstring.

    def lookup(topic: str, limit: int = 3) -> str:
        \"\"\"Look a topic up in the knowledge base.

        Args:
            topic: what to look up, in a few words
            limit: at most this many passages
        \"\"\"

gives `{"type": "function", "function": {"name": "lookup", "description": "Look a topic up in the
knowledge base.", "parameters": {"type": "object", "properties": {"topic": {"type": "string",
"description": "what to look up, in a few words"}, "limit": {"type": "integer", "description":
..., "default": 3}}, "required": ["topic"]}}}`.

Types: str, int, float, bool, None, `X | None` / Optional[X] (never required: one left out is
None), Literal[...] and Enum subclasses (`enum`), list[X] / tuple[X, ...] / set[X] (`array`),
dict[str, X] (`object`). The description is the docstring's first paragraph; each parameter's
comes from a Google-style `Args:` section (a line `name: text`, or `name (type): text`, continued
on more-indented lines).
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union

_SIMPLE: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Examples?|Notes?):\s*$")


class SchemaError(TypeError):
    """A tool's signature cannot be described in JSON schema."""


def type_schema(tp: Any) -> dict[str, Any]:
    """The JSON schema of one Python type annotation."""
    if tp is inspect.Parameter.empty or tp is Any:
        return {}
    if tp in _SIMPLE:
        return {"type": _SIMPLE[tp]}
    if tp is type(None) or tp is None:
        return {"type": "null"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [m.value for m in tp]
        return {**_json_type_of(values), "enum": values}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return {**_json_type_of(list(args)), "enum": list(args)}
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return type_schema(options[0])  # Optional[X]: X, and the parameter is not required
        return {"anyOf": [type_schema(a) for a in options]}
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set):
        item = args[0] if args else Any
        return {"type": "array", "items": type_schema(item)} if item is not Any else {"type": "array"}
    if origin is dict or tp is dict:
        value = args[1] if len(args) == 2 else Any
        return (
            {"type": "object", "additionalProperties": type_schema(value)}
            if value is not Any
            else {"type": "object"}
        )
    raise SchemaError(f"cannot describe the type {tp!r} in JSON schema")


def _json_type_of(values: list[Any]) -> dict[str, Any]:
    kinds = {_SIMPLE.get(type(v)) for v in values}
    return {"type": kinds.pop()} if len(kinds) == 1 and None not in kinds else {}


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(the first paragraph as one line, {parameter: description} from the Args: section)."""
    lines = inspect.cleandoc(doc or "").splitlines()
    first: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line):
            break
        first.append(line.strip())
    params: dict[str, str] = {}
    section, name, indent = "", "", 0
    for line in lines:
        header = _SECTION.match(line)
        if header:
            section, name = header.group(1), ""
            continue
        if section not in ("Args", "Arguments", "Parameters") or not line.strip():
            continue
        here = len(line) - len(line.lstrip())
        m = re.match(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", line)
        if m and (not name or here <= indent):
            name, indent = m.group(1), here
            params[name] = m.group(2).strip()
        elif name:
            params[name] = f"{params[name]} {line.strip()}".strip()
    return " ".join(first), params


def function_schema(fn: Callable[..., Any], name: str | None = None) -> dict[str, Any]:
    """OpenAI's `{"type": "function", "function": {name, description, parameters}}` for `fn`."""
    description, docs = parse_docstring(fn.__doc__)
    hints = typing.get_type_hints(fn)
    props: dict[str, Any] = {}
    required: list[str] = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        tp = hints.get(p.name, p.annotation)
        try:
            prop = type_schema(tp)
        except SchemaError as e:
            raise SchemaError(f"tool {name or fn.__name__}, parameter {p.name}: {e}") from None
        if p.name in docs:
            prop["description"] = docs[p.name]
        if p.default is not p.empty:
            default = p.default.value if isinstance(p.default, enum.Enum) else p.default
            if default is None or isinstance(default, str | int | float | bool):
                prop["default"] = default
        elif not is_optional(tp):
            required.append(p.name)
        props[p.name] = prop
    params: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        params["required"] = required
    return {
        "type": "function",
        "function": {"name": name or fn.__name__, "description": description, "parameters": params},
    }


def is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType) and type(None) in typing.get_args(tp)
