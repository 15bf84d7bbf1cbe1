"""Tools through an OpenAI-compatible endpoint: `tools` in the request, the streamed `tool_calls`
deltas read back into calls, the calls and results sent back as OpenAI's messages; and a whole
turn of a session over it. The scripted upstream (tests/openai_upstream.py) speaks the wire format
byte for byte on loopback; real sockets, real time, nothing timed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import run_guarded as run
from openai_upstream import Calls, Reply, upstream
from voxloop.config import LLMConfig, OpenAIConfig, RetryConfig
from voxloop.providers.base import Message, ToolCall
from voxloop.tools import Toolbox, tool

pytest.importorskip("openai")
from voxloop.providers.llm.openai import OpenAILLM  # noqa: E402

ASK = [Message("system", "be brief"), Message("user", "What time is it in Paris?")]


@tool
def get_time(city: str, twelve_hour: bool = True) -> str:
    """The time in a city.

    Args:
        city: the city's name
    """
    return f"3 PM in {city}"


BOX = Toolbox.of([get_time])


def make(url: str) -> OpenAILLM:
    s = OpenAIConfig(base_url=url, api_key="sk-x", retry=RetryConfig(max_retries=0))
    return OpenAILLM(LLMConfig(provider="openai", openai=s))


def test_tool_calls_deltas_become_calls_and_go_back_as_openai_messages() -> None:
    args = '{"city": "Paris", "twelve_hour": false}'
    script = (Calls((("call_a1", "get_time", args), ("call_b2", "get_time", '{"city": "Lyon"}'))),)

    async def main() -> tuple[list[str | ToolCall], list[Any]]:
        async with upstream(*script, Reply(("It is 3 PM.",))) as up:
            llm = make(up.url)
            await llm.load()
            items = [i async for i in llm.stream_tools(ASK, BOX.schemas)]
            calls = [i for i in items if isinstance(i, ToolCall)]
            follow = [
                *ASK,
                Message("assistant", "", tool_calls=tuple(calls)),
                *(
                    Message("tool", f"3 PM in {json.loads(c.arguments)['city']}", tool_call_id=c.id)
                    for c in calls
                ),
            ]
            text = [i async for i in llm.stream_tools(follow, BOX.schemas)]
            await llm.aclose()
            return [*items, *text], up.chats

    items, chats = run(main())
    assert items == [
        ToolCall("get_time", args, "call_a1"),
        ToolCall("get_time", '{"city": "Lyon"}', "call_b2"),
        "It is 3 PM.",
    ]
    first, second = chats[0].body, chats[1].body
    assert first["tools"] == BOX.schemas
    assert first["tools"][0]["function"]["parameters"]["required"] == ["city"]
    assert second["messages"][2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_a1", "type": "function", "function": {"name": "get_time", "arguments": args}},
            {
                "id": "call_b2",
                "type": "function",
                "function": {"name": "get_time", "arguments": '{"city": "Lyon"}'},
            },
        ],
    }
    assert second["messages"][3] == {"role": "tool", "tool_call_id": "call_a1", "content": "3 PM in Paris"}
    assert second["messages"][4] == {"role": "tool", "tool_call_id": "call_b2", "content": "3 PM in Lyon"}


def test_words_before_a_call_are_text_and_stream_without_tools_is_unchanged() -> None:
    async def main() -> tuple[list[str | ToolCall], list[str], list[Any]]:
        async with upstream(
            Calls((("c1", "get_time", '{"city": "Rome"}'),), ("Let me", " check.")), Reply()
        ) as up:
            llm = make(up.url)
            await llm.load()
            items = [i async for i in llm.stream_tools(ASK, BOX.schemas)]
            plain = [p async for p in llm.stream(ASK)]
            await llm.aclose()
            return items, plain, up.chats

    items, plain, chats = run(main())
    assert items == ["Let me", " check.", ToolCall("get_time", '{"city": "Rome"}', "c1")]
    assert plain == ["Hello", " there", "."]
    assert "tools" not in chats[1].body


def test_a_replys_tool_rounds_over_openai_call_the_tool_and_speak_the_answer() -> None:
    """The reply's tool loop (agent/toolcall.py) on the real wire: the call, the tool run, its
    result sent back, the answer's words; the events and the record."""
    from voxloop.agent import events as ev
    from voxloop.agent.toolcall import ToolRounds
    from voxloop.config import ToolsConfig

    emitted: list[tuple[type[ev.Event], dict[str, Any]]] = []
    records: list[dict[str, Any]] = []

    async def committed() -> None:
        return None

    async def main() -> tuple[list[str], list[Any], ToolRounds]:
        async with upstream(
            Calls((("call_9", "get_time", '{"city": "Paris"}'),)), Reply(("It is", " 3 PM", " in Paris."))
        ) as up:
            llm = make(up.url)
            await llm.load()
            rounds = ToolRounds(
                llm,
                BOX,
                ToolsConfig(),
                turn_id=1,
                emit=lambda kind, **f: emitted.append((kind, f)),
                say=lambda text: None,
                touch=lambda: None,
                committed=committed,
                records=records,
            )
            said = [p async for p in rounds.stream(ASK)]
            await llm.aclose()
            return said, up.chats, rounds

    said, chats, rounds = run(main())
    assert "".join(said) == "It is 3 PM in Paris."
    assert [k for k, _ in emitted] == [ev.ToolStarted, ev.ToolFinished]
    assert emitted[1][1]["result"] == "3 PM in Paris" and emitted[1][1]["ok"]
    assert records[0]["arguments"] == {"city": "Paris"}
    assert [m.role for m in rounds.messages] == ["assistant", "tool"]
    assert chats[0].body["tools"] == BOX.schemas
    assert chats[1].body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_9",
        "content": "3 PM in Paris",
    }
