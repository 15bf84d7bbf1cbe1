"""Tool calling in text, in Qwen2.5's format, for a model served without a `tools` API (llama.cpp).

This is what Qwen2.5's own chat template (in the GGUF's `tokenizer.chat_template`) writes:

- the tools' JSON schemas go at the end of the system message, one per line inside
  `<tools></tools>`, with the instruction to answer a call as
  `<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`;
- an assistant message that called tools holds those `<tool_call>` blocks as its text;
- tool results become one user message of `<tool_response>\\n...\\n</tool_response>` blocks
  (consecutive results share it).

`Parser` reads the streamed reply: one that begins with `<tool_call>` is a call (never spoken);
any other text is spoken, up to a `<tool_call>` that starts later in it (a model that says
"Let me check." first). `<tool_call>` and `</tool_call>` are special tokens of Qwen's vocabulary,
which llama.cpp's detokenizer leaves out of the text: a reply that is (or goes on with) a bare JSON
object `{"name": ...}` is read as a call too. The template of the Coder build doubles the braces of its example
(`{{"name": ...}}`); the single braces of Qwen2.5's are written here, and a doubled pair is read.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any

from voxloop.providers.base import Message, ToolCall
from voxloop.providers.llm import toolloose

if TYPE_CHECKING:
    from voxloop.providers.base import LLM

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_HEAD = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
_TAIL = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    'within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, '
    '"arguments": <args-json-object>}\n</tool_call>'
)


def tools_block(tools: Sequence[dict[str, Any]]) -> str:
    """The text the template appends to the system message."""
    return _HEAD + "".join("\n" + json.dumps(t, ensure_ascii=False) for t in tools) + _TAIL


def with_tools(system: str, tools: Sequence[dict[str, Any]]) -> str:
    """`system` with the tools block at its end (unchanged if it holds it already: a session's
    prompt has it before the tools' examples, `agent/toolcall.py`)."""
    block = tools_block(tools)
    return system if block in system else system + block


def call_text(call: ToolCall) -> str:
    """A call as the model writes it."""
    try:
        args = json.dumps(json.loads(call.arguments or "{}"), ensure_ascii=False)
    except ValueError:
        args = call.arguments
    return f'{OPEN}\n{{"name": "{call.name}", "arguments": {args}}}\n{CLOSE}'


def render(messages: Sequence[Message], tools: Sequence[dict[str, Any]]) -> list[Message]:
    """The messages as plain ChatML ones: tools in the system message, calls and results as text."""
    out: list[Message] = []
    if not messages or messages[0].role != "system":
        out.append(Message("system", tools_block(tools).lstrip()))
    after_tool = False
    for i, m in enumerate(messages):
        if i == 0 and m.role == "system":
            out.append(Message("system", with_tools(m.content, tools)))
        elif m.role == "assistant" and m.tool_calls:
            parts = ([m.content] if m.content else []) + [call_text(c) for c in m.tool_calls]
            out.append(Message("assistant", "\n".join(parts)))
        elif m.role == "tool":
            block = f"<tool_response>\n{m.content}\n</tool_response>"
            if after_tool:
                out[-1] = Message("user", f"{out[-1].content}\n{block}")
            else:
                out.append(Message("user", block))
        else:
            out.append(Message(m.role, m.content))
        after_tool = m.role == "tool"
    return out


def parse_call(body: str) -> ToolCall:
    """The JSON inside one `<tool_call>` block; a call with no name when it cannot be read."""
    text = body.strip()
    for candidate in (text, text[1:-1].strip() if text.startswith("{{") and text.endswith("}}") else ""):
        if not candidate:
            continue
        with contextlib.suppress(ValueError):
            call = call_of(json.loads(candidate))
            if call is not None:
                return call
    return ToolCall("", text, f"call_{secrets.token_hex(4)}")


def call_of(obj: object) -> ToolCall | None:
    """A call from its decoded JSON `{"name": ..., "arguments": {...}}` (None if it is not one)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args = obj.get("arguments", {})
    if isinstance(args, str):  # some models write the arguments as a JSON string
        with contextlib.suppress(ValueError):
            args = json.loads(args)
    return ToolCall(obj["name"], json.dumps(args, ensure_ascii=False), f"call_{secrets.token_hex(4)}")


_STARTS = (OPEN, '{"name"', '{{"name"', '{ "name"')  # a call, tagged or (tags unseen) bare JSON
_BARE = re.compile(r'\{\{?\s*"name"')
_LABELS = ("you:", "assistant:", "agent:", "reply:", "vox:")  # a speaker's label a reply may begin with
_LABEL = re.compile(r"(you|assistant|agent|reply|vox)\s*:\s*", re.IGNORECASE)


class Parser:
    """Streamed reply text in; text to speak and `ToolCall`s out, as soon as each is known.

    A call is `<tool_call>{json}</tool_call>`, or the bare JSON object `{"name": ...}`: Qwen's
    tags are special tokens, which llama.cpp leaves out of the text it gives back."""

    def __init__(self, tools: Sequence[dict[str, Any]] = ()) -> None:
        """`tools`: their schemas, to read a reply that begins with a tool's name (toolloose.py)."""
        self._buf = ""
        self._mode = "start"  # start (not known yet), text, call (tagged), json (bare), loose, after
        self._tools = tools
        self._starts = _STARTS + toolloose.starts(tools) if tools else _STARTS

    def feed(self, piece: str) -> list[str | ToolCall]:
        self._buf += piece
        out: list[str | ToolCall] = []
        while self._step(out):
            pass
        return out

    def _step(self, out: list[str | ToolCall]) -> bool:
        """One step of the reading; False when it needs more text."""
        if self._mode == "start":
            head = self._buf.lstrip()
            low = head.lower()
            if not head or any(m.startswith(low) and m != low for m in (*self._starts, *_LABELS)):
                return False  # whitespace, or the beginning of a call or a label so far
            label = _LABEL.match(head)
            if label is not None:  # "You: ...", copied from the examples: not said
                self._buf = head[label.end() :]
                return bool(self._buf.strip())
            qwen = head.startswith(OPEN) or _BARE.match(head) is not None  # found in "text" mode
            loose = not qwen and bool(self._tools) and toolloose.begins_call(low, self._tools)
            self._buf, self._mode = head, "loose" if loose else "text"
            return True
        if self._mode == "loose":
            return False  # read whole at the end
        if self._mode in ("text", "after"):
            at, kind = _find_call(self._buf)
            if at < 0:
                keep = _partial_start(self._buf)
                if self._mode == "text" and len(self._buf) > keep:
                    out.append(self._buf[: len(self._buf) - keep])
                self._buf = self._buf[len(self._buf) - keep :] if keep else ""
                return False
            if self._mode == "text" and self._buf[:at].strip():
                out.append(self._buf[:at])
            self._buf = self._buf[at + len(OPEN) :] if kind == "call" else self._buf[at:]
            self._mode = kind
            return True
        if self._mode == "call":
            at = self._buf.find(CLOSE)
            if at < 0:
                return False
            out.append(parse_call(self._buf[:at]))
            self._buf, self._mode = self._buf[at + len(CLOSE) :], "after"
            return True
        # bare JSON: a whole object read
        text = self._buf.lstrip()
        try:
            obj, end = json.JSONDecoder().raw_decode(text[1:] if text.startswith("{{") else text)
        except ValueError:
            return False  # not complete yet (or never: `close` reads what is left)
        end += 1 if text.startswith("{{") else 0
        out.append(call_of(obj) or ToolCall("", text[:end], f"call_{secrets.token_hex(4)}"))
        self._buf, self._mode = text[end:].lstrip("}"), "after"
        return True

    def close(self) -> list[str | ToolCall]:
        """The end of the reply: held-back text, or a call cut off before its end."""
        rest, self._buf = self._buf, ""
        if self._mode == "loose":
            return list(toolloose.parse(rest, self._tools))
        if self._mode in ("call", "json") and rest.strip():
            return [parse_call(rest)]
        if (
            self._mode in ("start", "text")
            and rest.strip()
            and _partial_start(rest.strip()) < len(rest.strip())
        ):
            return [rest]
        return []


def _find_call(text: str) -> tuple[int, str]:
    """Where the first call in `text` begins, and its kind ("call": tagged, "json": bare)."""
    tag = text.find(OPEN)
    bare = _BARE.search(text)
    if bare is not None and (tag < 0 or bare.start() < tag):
        return bare.start(), "json"
    return tag, "call"


def _partial_start(text: str) -> int:
    """How many characters at the end of `text` could be the beginning of a call."""
    for n in range(min(len(OPEN) - 1, len(text)), 0, -1):
        if any(m.startswith(text[-n:]) for m in _STARTS):
            return n
    return 0


async def stream(
    llm: LLM, messages: Sequence[Message], tools: Sequence[dict[str, Any]]
) -> AsyncGenerator[str | ToolCall, None]:
    """`llm.stream` of the rendered messages, read by a `Parser`. A piece that gives nothing to
    say yet (a call being written, never spoken) is an empty string: the consumer's sign of life."""
    parser = Parser(tools)
    async with contextlib.aclosing(llm.stream(render(messages, tools))) as pieces:
        async for piece in pieces:
            items = list(parser.feed(piece))
            if not items:
                yield ""  # nothing to say yet (a call being written): a sign of life, not words
            for item in items:
                yield item
    for item in parser.close():
        yield item
