"""Tools: plain Python functions the language model may call, and the box that holds and runs them.

    from voxloop import tool

    @tool
    def order_status(order_id: str) -> str:
        \"\"\"Where an order is.

        Args:
            order_id: the order number the caller gives
        \"\"\"
        return "shipped on Monday"

A tool may be sync (it runs in a worker thread, off the event loop) or async. What it returns is
what the model reads: a string as is, anything else as JSON; return `Transfer(reason)` to hand
the caller to a person. A module of tools (`--tools MODULE`) offers its `@tool` functions, or,
when it marks none, every public function defined in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar, overload

from voxloop.errors import VoxloopError
from voxloop.providers.base import ToolCall
from voxloop.tools.schema import SchemaError, function_schema, is_optional

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__voxloop_tool__"


@dataclass(frozen=True)
class Tool:
    fn: Callable[..., Any]
    schema: dict[str, Any]
    filler: str = ""  # said while this tool is slow (empty: the configured filler)
    # what a caller might say and the arguments it calls for: shown to a model that reads its
    # tools as text (a small model follows examples better than instructions)
    examples: tuple[tuple[str, dict[str, Any]], ...] = ()

    @property
    def name(self) -> str:
        return str(self.schema["function"]["name"])

    @classmethod
    def of(
        cls,
        fn: Callable[..., Any],
        name: str | None = None,
        filler: str = "",
        examples: Sequence[tuple[str, dict[str, Any]]] = (),
    ) -> Tool:
        return cls(fn, function_schema(fn, name), filler, tuple(examples))


Example = tuple[str, dict[str, Any]]


@overload
def tool(fn: F, /) -> F: ...
@overload
def tool(
    *, name: str | None = None, filler: str = "", examples: Sequence[Example] = ()
) -> Callable[[F], F]: ...
def tool(
    fn: Any = None, /, *, name: str | None = None, filler: str = "", examples: Sequence[Example] = ()
) -> Any:
    """Mark a function as a tool (its schema is made now: a type it cannot describe fails here).
    `examples`: (what a caller says, the arguments), e.g. `[("Is my order here?", {"id": "42"})]`."""

    def mark(f: F) -> F:
        setattr(f, _MARK, Tool.of(f, name, filler, examples))
        return f

    return mark(fn) if fn is not None else mark


@dataclass(frozen=True)
class Transfer:
    """A tool's answer that hands the caller to a person: the session emits a `transfer` event
    with `reason`, and the model reads `note`."""

    reason: str
    note: str = "I'm connecting you to a member of staff now."  # worded to be said as it is


@dataclass
class Outcome:
    """One call's end: `result` is what the model reads (a failure's too)."""

    call: ToolCall
    ok: bool
    result: str
    error: str = ""  # empty, "timeout", or the failure in words
    ms: float = 0.0
    transfer: Transfer | None = None

    @property
    def misread(self) -> bool:
        """The model's mistake (a call that cannot be read, an unknown tool, bad arguments), not
        the tool's: the model is told and may try again."""
        if self.error in ("unreadable call", "no such tool", "repeated call"):
            return True
        return self.error.startswith("bad arguments")

    def record(self) -> dict[str, Any]:
        """As kept in the turn's record (turns.jsonl)."""
        args: Any = self.call.arguments
        with contextlib.suppress(ValueError):
            args = json.loads(args)
        return {"name": self.call.name, "arguments": args, "ok": self.ok, "result": self.result,
                "error": self.error, "ms": round(self.ms, 1)}  # fmt: skip


@dataclass
class Toolbox:
    tools: dict[str, Tool] = field(default_factory=dict)

    @classmethod
    def of(cls, items: Sequence[Callable[..., Any] | Tool]) -> Toolbox:
        box = cls()
        for item in items:
            t = item if isinstance(item, Tool) else getattr(item, _MARK, None) or Tool.of(item)
            if t.name in box.tools:
                raise VoxloopError(f"two tools are named {t.name}", "give each tool its own name")
            box.tools[t.name] = t
        return box

    def __bool__(self) -> bool:
        return bool(self.tools)

    @property
    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema for t in self.tools.values()]

    async def invoke(self, call: ToolCall) -> Outcome:
        """Run one call to its end (no deadline here: the caller has it); errors as an Outcome."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        out = await self._invoke(call)
        out.ms = (loop.time() - t0) * 1000
        return out

    async def _invoke(self, call: ToolCall) -> Outcome:
        t = self.tools.get(call.name)
        if not call.name:
            how = '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
            note = f"error: that reply was neither words nor a tool call: call a tool as {how}, or answer in words"
            return Outcome(call, False, note, "unreadable call")
        if t is None:
            known = ", ".join(self.tools)
            return Outcome(
                call, False, f"error: there is no tool {call.name!r}; the tools are {known}", "no such tool"
            )
        try:
            args = json.loads(call.arguments or "{}")
            if not isinstance(args, dict):
                raise ValueError("the arguments are not a JSON object")
            kwargs = _bind(t.fn, args)
        except (ValueError, TypeError) as e:
            return Outcome(call, False, f"error: bad arguments for {call.name}: {e}", f"bad arguments: {e}")
        try:
            if inspect.iscoroutinefunction(t.fn):
                value = await t.fn(**kwargs)
            else:
                loop = asyncio.get_running_loop()
                value = await loop.run_in_executor(None, functools.partial(t.fn, **kwargs))
        except Exception as e:
            what = f"{type(e).__name__}: {e}"
            return Outcome(call, False, f"error: the tool failed ({what})", what)
        if isinstance(value, Transfer):
            return Outcome(call, True, value.note, transfer=value)
        text = value if isinstance(value, str) else "done" if value is None else _json(value)
        return Outcome(call, True, text)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _bind(fn: Callable[..., Any], args: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments for `fn`: unknown names refused, a missing Optional one is None."""
    sig = inspect.signature(fn)
    hints = _hints(fn)
    params = {n: p for n, p in sig.parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    extra = [k for k in args if k not in params]
    if extra and not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        raise TypeError(f"no parameter {', '.join(extra)}")
    kwargs = dict(args)
    for n, p in params.items():
        if n not in kwargs and p.default is p.empty:
            if not is_optional(hints.get(n)):
                raise TypeError(f"missing the parameter {n}")
            kwargs[n] = None
    return kwargs


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(fn)
    except Exception:
        return {}


def load(spec: str, kb_dir: str = "") -> Toolbox:
    """`--tools`: "demo" (the built-in set; `kb_dir` its knowledge base), a dotted module, or a
    .py file."""
    if spec == "demo":
        from voxloop.tools import demo

        return Toolbox.of(demo.tools(Path(kb_dir) if kb_dir else None))
    module = _module(spec)
    marked = [v for v in vars(module).values() if callable(v) and hasattr(v, _MARK)]
    if not marked:
        marked = [
            v
            for k, v in vars(module).items()
            if inspect.isfunction(v) and not k.startswith("_") and v.__module__ == module.__name__
        ]
    if not marked:
        raise VoxloopError(f"--tools {spec}: the module has no tools", "mark functions with @voxloop.tool")
    try:
        return Toolbox.of(marked)
    except SchemaError as e:
        raise VoxloopError(
            f"--tools {spec}: {e}", "use str, int, float, bool, Literal, Enum, list or dict"
        ) from None


def _module(spec: str) -> ModuleType:
    try:
        if spec.endswith(".py") or "/" in spec:
            path = Path(spec)
            if not path.is_file():
                raise VoxloopError(f"--tools {spec}: no such file", "give a .py file or a dotted module name")
            name = f"voxloop_user_tools_{path.stem}"
            found = importlib.util.spec_from_file_location(name, path)
            if found is None or found.loader is None:
                raise VoxloopError(f"--tools {spec}: cannot load it as Python", "give a .py file")
            module = importlib.util.module_from_spec(found)
            sys.modules[name] = module
            found.loader.exec_module(module)
            return module
        return importlib.import_module(spec)
    except ImportError as e:
        raise VoxloopError(
            f"--tools {spec}: cannot import it ({e})", "check the name and PYTHONPATH"
        ) from None
