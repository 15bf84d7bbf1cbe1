"""Qwen2.5's text tool format: the prompt as its chat template writes it, and calls read from a
reply streamed in pieces cut anywhere."""

from __future__ import annotations

import json

import pytest

from voxloop.providers.base import Message, ToolCall
from voxloop.providers.llm.tooltext import Parser, render, tools_block, with_tools

TOOLS = [{"type": "function", "function": {"name": "get_time", "description": "The time.", "parameters": {"type": "object", "properties": {}}}}]  # fmt: skip


def feed_all(pieces: list[str]) -> list[str | ToolCall]:
    p = Parser()
    out: list[str | ToolCall] = []
    for piece in pieces:
        out += p.feed(piece)
    return out + p.close()


def calls(items: list[str | ToolCall]) -> list[tuple[str, dict[str, object]]]:
    return [(i.name, json.loads(i.arguments)) for i in items if isinstance(i, ToolCall)]


def text(items: list[str | ToolCall]) -> str:
    return "".join(i for i in items if isinstance(i, str))


REPLY = (
    '<tool_call>\n{"name": "search_knowledge_base", "arguments": {"topic": "opening hours"}}\n</tool_call>'
)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 1000])
def test_a_call_split_anywhere_is_read_and_never_spoken(size: int) -> None:
    pieces = [REPLY[i : i + size] for i in range(0, len(REPLY), size)]
    items = feed_all(pieces)
    assert text(items) == ""
    assert calls(items) == [("search_knowledge_base", {"topic": "opening hours"})]


def test_two_calls_and_leading_whitespace() -> None:
    reply = "\n " + REPLY + "\n" + REPLY.replace("opening hours", "address")
    items = feed_all([reply[i : i + 4] for i in range(0, len(reply), 4)])
    assert text(items) == ""
    assert [a["topic"] for _, a in calls(items)] == ["opening hours", "address"]


def test_plain_text_streams_out_as_it_comes() -> None:
    q = Parser()
    assert q.feed("Hello") == ["Hello"]  # passed on piece by piece, not held to the end
    assert q.feed(" there <") == [" there "]  # "<" may begin a call: held
    assert q.feed("3.") == ["<3."]
    assert q.close() == []
    held = Parser()
    assert held.feed(" <tool") == []  # the beginning of a call: nothing said yet
    assert held.feed("box> is") == ["<toolbox> is"]  # (leading space dropped)


def test_text_then_a_call() -> None:
    reply = "Let me check. " + REPLY
    items = feed_all([reply[i : i + 3] for i in range(0, len(reply), 3)])
    assert text(items) == "Let me check. "
    assert calls(items)[0][0] == "search_knowledge_base"


def test_a_call_cut_off_at_the_end_and_bad_json() -> None:
    items = feed_all(['<tool_call>\n{"name": "get_time", "arguments": {}}'])
    assert calls(items) == [("get_time", {})]
    bad = feed_all(["<tool_call>\nget_time please\n</tool_call>"])
    assert isinstance(bad[0], ToolCall) and bad[0].name == "" and "get_time" in bad[0].arguments


def test_doubled_braces_and_string_arguments() -> None:
    items = feed_all(
        ['<tool_call>\n{{"name": "get_time", "arguments": "{\\"zone\\": \\"UTC\\"}"}}\n</tool_call>']
    )
    assert calls(items) == [("get_time", {"zone": "UTC"})]


def test_render_follows_the_chat_template() -> None:
    call = ToolCall("get_time", "{}", "call_1")
    msgs = [
        Message("system", "Be brief."),
        Message("user", "What time is it?"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", "3 PM", tool_call_id="call_1"),
        Message("tool", "UTC", tool_call_id="call_2"),
        Message("assistant", "It is 3 PM."),
    ]
    out = render(msgs, TOOLS)
    assert [m.role for m in out] == ["system", "user", "assistant", "user", "assistant"]
    assert out[0].content == "Be brief." + tools_block(TOOLS)
    assert out[0].content.endswith(
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )
    assert '\n<tools>\n{"type": "function", "function": {"name": "get_time"' in out[0].content
    assert out[2].content == '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'
    assert out[3].content == "<tool_response>\n3 PM\n</tool_response>\n<tool_response>\nUTC\n</tool_response>"
    # the tools block is added once
    assert with_tools(out[0].content, TOOLS) == out[0].content
    assert render(out, TOOLS)[0].content == out[0].content


BARE = '{"name": "search_knowledge_base", "arguments": {"topic": "opening hours"}}'


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 1000])
def test_a_bare_call_is_read_too(size: int) -> None:
    """llama.cpp leaves Qwen's special tokens (`<tool_call>`, `</tool_call>`) out of its text: the
    reply is the JSON object alone, with the newlines around it."""
    reply = "\n" + BARE + "\n"
    items = feed_all([reply[i : i + size] for i in range(0, len(reply), size)])
    assert text(items) == ""
    assert calls(items) == [("search_knowledge_base", {"topic": "opening hours"})]


def test_bare_calls_in_a_row_after_words_and_with_doubled_braces() -> None:
    reply = "Let me see. " + BARE + "\n" + BARE.replace("opening hours", "address")
    items = feed_all([reply[i : i + 3] for i in range(0, len(reply), 3)])
    assert text(items) == "Let me see. "
    assert [a["topic"] for _, a in calls(items)] == ["opening hours", "address"]
    doubled = feed_all(['{{"name": "get_time", "arguments": {}}}'])
    assert calls(doubled) == [("get_time", {})]
    cut = feed_all(['{"name": "get_time", "argu'])  # the reply ended inside the object
    assert isinstance(cut[0], ToolCall) and cut[0].name == ""


def test_braces_in_plain_words_are_spoken() -> None:
    assert text(feed_all(["Sets like {1, 2}", " are fine."])) == "Sets like {1, 2} are fine."


DEMO = [
    {"type": "function", "function": {"name": "get_date_and_time", "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "search_knowledge_base", "parameters": {"type": "object", "properties": {"topic": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "transfer_to_human", "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}}}},
]  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "name", "args"),
    [  # each as Qwen2.5-Coder 1.5B wrote it in benchmarks/tool_calls.py
        ("Get_date_and_time", "get_date_and_time", {}),
        ("<get_date_and_time/>", "get_date_and_time", {}),
        ('```json\n{\n  "name": "search_knowledge_base",\n  "arguments": {\n    "topic": "opening hours"\n  }\n}\n```', "search_knowledge_base", {"topic": "opening hours"}),
        ('<search_knowledge_base topic="opening hours"/>', "search_knowledge_base", {"topic": "opening hours"}),
        ("<search_knowledge_base>opening hours</search_knowledge_base>", "search_knowledge_base", {"topic": "opening hours"}),
        ('transfer_to_human(reason="to speak to a person")', "transfer_to_human", {"reason": "to speak to a person"}),
        ('transfer_to_human({"reason": "I need assistance"})', "transfer_to_human", {"reason": "I need assistance"}),
        ("Transfer to human.", "transfer_to_human", {}),
    ],
)  # fmt: skip
def test_calls_written_another_way_are_read_when_the_reply_begins_with_them(
    reply: str, name: str, args: dict[str, object]
) -> None:
    p = Parser(DEMO)
    items: list[str | ToolCall] = []
    for i in range(0, len(reply), 3):
        items += p.feed(reply[i : i + 3])
    items += p.close()
    assert text(items) == ""
    assert calls(items) == [(name, args)]


@pytest.mark.parametrize(
    "reply", ["Getting there now.", "The time is 3 PM.", "Searching is fun.", "Transferring you now."]
)
def test_words_that_only_look_like_a_tool_name_are_spoken(reply: str) -> None:
    p = Parser(DEMO)
    items: list[str | ToolCall] = []
    for i in range(0, len(reply), 2):
        items += p.feed(reply[i : i + 2])
    items += p.close()
    assert text(items) == reply and not calls(items)


@pytest.mark.parametrize(
    ("reply", "spoken", "called"),
    [
        ('You: {"name": "get_date_and_time", "arguments": {}}', "", ["get_date_and_time"]),
        ("You:\nThe time is 4 PM.", "The time is 4 PM.", []),
        ("You can call me any time.", "You can call me any time.", []),
    ],
)
def test_a_speakers_label_the_model_copied_is_not_said(reply: str, spoken: str, called: list[str]) -> None:
    p = Parser(DEMO)
    items: list[str | ToolCall] = []
    for i in range(0, len(reply), 2):
        items += p.feed(reply[i : i + 2])
    items += p.close()
    assert text(items) == spoken and [n for n, _ in calls(items)] == called


def test_a_call_being_written_is_a_sign_of_life_never_words() -> None:
    import asyncio
    from collections.abc import AsyncGenerator, Sequence

    from voxloop.providers.base import LLM
    from voxloop.providers.llm import tooltext

    call = '<tool_call>{"name": "get_date_and_time", "arguments": {}}</tool_call>'

    class Pieces(LLM):
        name = "pieces"

        async def load(self) -> None:
            return None

        async def _gen(self) -> AsyncGenerator[str, None]:
            for i in range(0, len(call), 5):
                yield call[i : i + 5]

        def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
            return self._gen()

    async def items() -> list[object]:
        return [i async for i in tooltext.stream(Pieces(), [Message("user", "time?")], [])]

    got = asyncio.run(items())
    calls = [i for i in got if isinstance(i, ToolCall)]
    assert [c.name for c in calls] == ["get_date_and_time"]
    words = [i for i in got if isinstance(i, str)]
    assert words and all(w == "" for w in words)  # only signs of life while the call was written
