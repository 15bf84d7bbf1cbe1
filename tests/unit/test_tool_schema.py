"""JSON schemas of tools from their signatures and docstrings; loading tools from a module."""

from __future__ import annotations

import enum
import textwrap
from pathlib import Path
from typing import Literal, Optional

import pytest

from voxloop import tool
from voxloop.errors import VoxloopError
from voxloop.tools import SchemaError, Toolbox, function_schema, load
from voxloop.tools.schema import parse_docstring


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


def book_table(
    name: str,
    people: int,
    time: Literal["lunch", "dinner"] = "dinner",
    colour: Colour = Colour.RED,
    notes: Optional[str] = None,  # noqa: UP045 - the old spelling must work too
    tags: list[str] | None = None,
    deposit: float = 0.0,
    vip: bool = False,
) -> str:
    """Book a table at the restaurant.

    Only for today. This paragraph is not part of the description.

    Args:
        name: the caller's name
        people (int): how many people, the
            caller included
        time: which sitting
        notes: anything the kitchen should know
    """
    return "booked"


def test_schema_from_signature_and_docstring() -> None:
    s = function_schema(book_table)
    assert s["type"] == "function"
    fn = s["function"]
    assert fn["name"] == "book_table"
    assert fn["description"] == "Book a table at the restaurant."
    params = fn["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["name", "people"]
    p = params["properties"]
    assert p["name"] == {"type": "string", "description": "the caller's name"}
    assert p["people"] == {"type": "integer", "description": "how many people, the caller included"}
    assert p["time"] == {
        "type": "string",
        "enum": ["lunch", "dinner"],
        "description": "which sitting",
        "default": "dinner",
    }
    assert p["colour"] == {"type": "string", "enum": ["red", "green"], "default": "red"}
    assert p["notes"] == {
        "type": "string",
        "description": "anything the kitchen should know",
        "default": None,
    }
    assert p["tags"] == {"type": "array", "items": {"type": "string"}, "default": None}
    assert p["deposit"] == {"type": "number", "default": 0.0}
    assert p["vip"] == {"type": "boolean", "default": False}


def test_optional_without_default_is_not_required_and_unions_are_any_of() -> None:
    def f(a: int | None, b: int | str, c: dict[str, int], d: tuple[int, ...], e: Literal[1, 2]) -> None:
        """No args section."""

    p = function_schema(f)["function"]["parameters"]
    assert p["required"] == ["b", "c", "d", "e"]
    assert p["properties"]["a"] == {"type": "integer"}
    assert p["properties"]["b"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert p["properties"]["c"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert p["properties"]["d"] == {"type": "array", "items": {"type": "integer"}}
    assert p["properties"]["e"] == {"type": "integer", "enum": [1, 2]}


def test_no_parameters_and_no_docstring() -> None:
    def ping() -> str:
        return "pong"

    fn = function_schema(ping)["function"]
    assert fn == {"name": "ping", "description": "", "parameters": {"type": "object", "properties": {}}}


def test_a_type_json_cannot_describe_fails_when_declared() -> None:
    with pytest.raises(SchemaError, match="parameter where"):

        @tool
        def bad(where: Path) -> str:
            return ""


def test_docstring_sections() -> None:
    desc, params = parse_docstring(
        """Summary line
        goes on.

        Args:
            a: first
            b (str): second,
                continued
        Returns:
            c: not a parameter
        """
    )
    assert desc == "Summary line goes on."
    assert params == {"a": "first", "b": "second, continued"}


def test_decorator_keeps_the_function_and_names_it() -> None:
    @tool(name="lookup_order", filler="Let me find that order.")
    def order(order_id: str) -> str:
        """Where an order is."""
        return f"order {order_id} shipped"

    assert order("7") == "order 7 shipped"
    box = Toolbox.of([order])
    assert list(box.tools) == ["lookup_order"]
    assert box.tools["lookup_order"].filler == "Let me find that order."


def test_load_a_py_file_takes_marked_tools_or_else_public_functions(tmp_path: Path) -> None:
    marked = tmp_path / "marked.py"
    marked.write_text(
        textwrap.dedent(
            '''
            from voxloop import tool

            @tool
            def weather(city: str) -> str:
                """The weather in a city."""
                return "sunny"

            def helper() -> None:
                pass
            '''
        )
    )
    plain = tmp_path / "plain.py"
    plain.write_text("def a(x: int) -> int:\n    return x\n\ndef _hidden() -> None:\n    pass\n")
    assert list(load(str(marked)).tools) == ["weather"]
    assert list(load(str(plain)).tools) == ["a"]
    assert list(load("voxloop.tools.demo").tools) == ["get_date_and_time", "transfer_to_human"]
    assert list(load("demo").tools) == ["get_date_and_time", "search_knowledge_base", "transfer_to_human"]
    with pytest.raises(VoxloopError, match="no such file"):
        load(str(tmp_path / "missing.py"))
    with pytest.raises(VoxloopError, match="cannot import"):
        load("no_such_module_here")


def test_cli_tools_and_kb_reach_the_config_and_load_with_the_providers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typing import Any

    from voxloop import commands
    from voxloop.agent.providers import Providers
    from voxloop.agent.toolcall import GUIDE
    from voxloop.cli import main
    from voxloop.config import AgentConfig

    seen: list[AgentConfig] = []

    async def fake(*args: Any, **kw: Any) -> None:
        seen.extend(a for a in args if isinstance(a, AgentConfig))

    monkeypatch.setattr(commands, "run_wav", fake)
    (tmp_path / "faq.txt").write_text("Parking\nThere is free parking behind the shop.\n")
    assert main(["run", "--in", "x.wav", "--tools", "demo", "--kb", str(tmp_path)]) == 0
    cfg = seen[0]
    assert (cfg.tools.module, cfg.tools.kb_dir) == ("demo", str(tmp_path))
    providers = Providers.from_config(cfg)  # nothing is loaded until load()
    assert providers.tools is not None
    assert GUIDE in providers.tool_prompt and "<tools>" in providers.tool_prompt  # warmed at load
    assert GUIDE not in cfg.llm.system_prompt  # sessions add the tools to it
    lookup = providers.tools.tools["search_knowledge_base"].fn
    assert lookup("where can I park") == "Parking: There is free parking behind the shop."
    assert "Its topics are: Parking" in lookup("weather")
