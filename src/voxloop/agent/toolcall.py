"""One reply's tool calls: the model calls, the tools run, the model answers from their results.

    round 1: the model's reply (`LLM.stream_tools`): text is spoken; calls are collected
    the calls run (only once the reply is committed: a speculative reply must not act), together;
      after `filler_after_s` still running: a filler ("Let me check."), once per reply
      after `timeout_s`: abandoned
    a tool failed or timed out: a spoken apology, and the reply ends (never a hang)
    else round 2 with the calls and their results in the prompt (a call the model got wrong, one
      that cannot be read, an unknown tool, bad arguments: the error, so it can try again), ...
      at most `max_rounds` rounds of calls; a model still calling after that gets `give_up_text`

The calls and results are kept as messages (`messages`, for the history) and reported as
`tool_started` / `tool_finished` events and in the turn's record; `transfer_to_human` (a tool
returning `Transfer`) emits a `transfer` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any

from voxloop.agent import events as ev
from voxloop.agent.providers import Providers
from voxloop.config import DEFAULT_SYSTEM_PROMPT, AgentConfig, ToolsConfig
from voxloop.providers.base import LLM, Message, Sampling, ToolCall
from voxloop.providers.llm.tooltext import call_text, render, tools_block
from voxloop.tools.toolbox import Outcome, Toolbox, load

log = logging.getLogger("voxloop.tools")

TOOLS_SYSTEM_PROMPT = (
    "You are Vox, a friendly voice assistant answering callers for a business. "
    "Your words are spoken aloud, so answer in one or two short, plain sentences: "
    "no lists, no markdown, no emoji. Be direct and warm. If you don't know, say so."
)
GUIDE = (
    "You have tools. When the caller asks for something a tool can answer or do, call the tool "
    "first and never guess: the time or the date, facts about the business (opening hours, "
    "address, returns, delivery), or a person to talk to. Call it yourself: never tell the "
    "caller about functions or tools. Then answer from the tool's result in one or two short "
    "spoken sentences."
)


def system_prompt(base: str, box: Toolbox, text_format: bool, guide: str = GUIDE) -> str:
    """The system prompt for a session with tools: the guidance, and for a model without a tools
    API the tools themselves in its text format. Unchanged if `base` has them already."""
    suffix = guide + (tools_block(box.schemas) + examples(box) if text_format else "")
    if base.endswith(suffix):
        return base
    return f"{TOOLS_SYSTEM_PROMPT if base == DEFAULT_SYSTEM_PROMPT else base}\n\n{suffix}"


def examples(box: Toolbox) -> str:
    """The tools' examples as replies in the model's text format (and one in words)."""
    shown = [
        (said, call_text(ToolCall(t.name, json.dumps(args))))
        for t in box.tools.values()
        for said, args in t.examples
    ]
    if not shown:
        return ""
    lines = [f'\n\nThe caller says "{said}": your whole reply is\n{text}' for said, text in shown]
    return "\n\nExamples:" + "".join(lines)


def use_tools(config: AgentConfig, llm: LLM) -> Toolbox:
    """Load `config.tools.module`. The configured system prompt is left as it is: each session
    adds the tools to it (`tool_prompt`), and `warm` puts that prompt in a local model's cache."""
    box = load(config.tools.module, config.tools.kb_dir)
    how = "its tools API" if llm.native_tools else "Qwen2.5's text format in the system prompt"
    log.info("tools: %s, offered to the language model through %s", ", ".join(box.tools), how)
    return box


async def warm(llm: LLM, prompt: str) -> None:
    """Evaluate a local model's system prompt with its tools ahead of the first turn, through a
    one-token reply (the prompt evaluated in the reply's steps). Measured on Qwen2.5-Coder 1.5B
    at temperature 0 (`benchmarks/tool_calls.py`, 5 phrasings of each demo request): with the
    tools' prompt as the configured system prompt, which the model's load evaluates in one batch,
    it called the right tool 4 times in 15; evaluated this way, 14 in 15."""
    if llm.native_tools:
        return
    t0 = time.perf_counter()
    request = [Message("system", prompt), Message("user", "Hello.")]
    async with contextlib.aclosing(llm.stream_with(request, Sampling(max_tokens=1))) as pieces:
        async for _ in pieces:
            pass
    log.info("tools: the system prompt with the tools evaluated in %.1f s", time.perf_counter() - t0)


def for_prefill(providers: Providers, messages: list[Message]) -> list[Message]:
    """The messages as the model will read them, for `LLM.prefill`: a local model's tool calls
    and results in its text format, so its cache holds what the next reply's prompt begins with."""
    if not providers.tools or providers.llm.native_tools:
        return messages
    return render(messages, providers.tools.schemas)


def tool_prompt(config: AgentConfig, providers: Providers) -> str:
    """A session's system prompt: the configured one, with the tools if it has any (a session's
    own prompt, set by a client, gets them too)."""
    base = config.llm.system_prompt
    if not providers.tools:
        return base
    return system_prompt(base, providers.tools, not providers.llm.native_tools)


Emit = Callable[..., None]


class ToolRounds:
    """The tool rounds of one reply. `say` speaks a filler (once per reply: the reply decides);
    `touch` tells the reply's watchdog the stage is alive; `committed` waits for the reply to be
    let through to the speaker."""

    def __init__(
        self,
        llm: LLM,
        box: Toolbox,
        config: ToolsConfig,
        *,
        turn_id: int,
        emit: Emit,
        say: Callable[[str], None],
        touch: Callable[[], None],
        committed: Callable[[], Awaitable[object]],
        records: list[dict[str, Any]] | None = None,
    ) -> None:
        self.llm, self.box, self.config = llm, box, config
        self.turn_id, self._emit, self._say = turn_id, emit, say
        self._touch, self._committed = touch, committed
        self.messages: list[Message] = []  # the calls and their results, in order, for the history
        self.outcomes: list[Outcome] = []
        self._records = records if records is not None else []  # the turn record's `tools`

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        """The text to speak, through as many rounds as the model calls tools."""
        before = ""  # what earlier rounds said: the next round's words are a new sentence
        for n in range(self.config.max_rounds + 1):
            calls: list[ToolCall] = []
            said = ""
            self._touch()
            async with contextlib.aclosing(
                self.llm.stream_tools([*messages, *self.messages], self.box.schemas)
            ) as items:
                async for item in items:
                    if item == "":  # the model is writing a call: alive, though nothing is said
                        self._touch()
                        continue
                    if isinstance(item, ToolCall):
                        calls.append(item)
                    elif not calls:  # text after a call in the same message is not said
                        if before and not said and not item[:1].isspace():
                            item = " " + item
                        said += item
                        yield item
            if not calls:
                if not said.strip() and not before.strip() and self.outcomes:
                    yield self.config.give_up_text  # tools ran, then no words at all: not silence
                return
            if n == self.config.max_rounds:
                log.warning("turn %d: the model still calls tools after %d rounds", self.turn_id, n)
                yield (" " if before or said else "") + self.config.give_up_text
                return
            before += said
            await self._committed()  # a speculative reply does not act until the turn is its own
            outcomes = await self._run(calls)
            # the calls and their results together: a reply cut off while its tools ran leaves no
            # call without its result in the history (an OpenAI endpoint refuses such a prompt)
            self.messages.append(Message("assistant", said.strip(), tool_calls=tuple(calls)))
            self.messages += [Message("tool", o.result, tool_call_id=o.call.id) for o in outcomes]
            if any(not o.ok and not o.misread for o in outcomes):  # the tool failed: an apology
                yield (" " if before else "") + self.config.apology_text
                return
            if handover := next((o.transfer for o in outcomes if o.transfer is not None), None):
                # the caller is being handed over: the transfer's own words end the reply (a
                # model asked to go on after it said "I can't assist with that" half the time)
                yield (" " if before else "") + handover.note
                return
            # else the next round: the model reads the results (a misread call's error too)

    async def _run(self, calls: list[ToolCall]) -> list[Outcome]:
        """Run the calls together: a filler once one is slow, abandoned at the deadline."""
        cfg, loop = self.config, asyncio.get_running_loop()
        for c in calls:
            self._emit(ev.ToolStarted, turn_id=self.turn_id, name=c.name, arguments=c.arguments, call_id=c.id)
            log.info("turn %d: calling %s(%s)", self.turn_id, c.name, c.arguments)
        deadline = loop.time() + cfg.timeout_s
        tasks = [loop.create_task(self._invoke(c)) for c in calls]
        try:
            pending: set[asyncio.Task[Outcome]] = set(tasks)
            if 0 < cfg.filler_after_s < cfg.timeout_s:
                _, pending = await asyncio.wait(pending, timeout=cfg.filler_after_s)
                if pending:
                    slow = next(calls[i] for i, t in enumerate(tasks) if t in pending)
                    tool = self.box.tools.get(slow.name)
                    self._say(tool.filler if tool is not None and tool.filler else cfg.filler_text)
            if pending:
                _, pending = await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
        finally:
            for t in tasks:
                t.cancel()  # those still running: abandoned (a sync tool's thread runs to its end)
            await asyncio.gather(*tasks, return_exceptions=True)
        self._touch()
        outcomes = [self._outcome(c, t) for c, t in zip(calls, tasks, strict=True)]
        for o in outcomes:
            self._report(o)
        return outcomes

    async def _invoke(self, call: ToolCall) -> Outcome:
        """The call, unless it repeats one that succeeded in this reply (a small model may call
        again instead of answering): then the model is told to answer from the result it has."""
        same = (call.name, call.arguments)
        if earlier := next(
            (o for o in self.outcomes if o.ok and (o.call.name, o.call.arguments) == same), None
        ):
            # the result again, not an error: told "error: you already have this result", the
            # model said "I'm sorry, but I can't assist with that" (in CI, and 2 of 10 opening
            # hours requests at temperature 0)
            note = f"{earlier.result}\n(You looked this up already: answer the caller from it now, in words.)"
            return Outcome(call, False, note, "repeated call")
        return await self.box.invoke(call)

    def _outcome(self, call: ToolCall, task: asyncio.Task[Outcome]) -> Outcome:
        if task.cancelled():
            s = self.config.timeout_s
            return Outcome(
                call, False, f"error: {call.name} gave no answer within {s:g} s", "timeout", s * 1000
            )
        return task.result()

    def _report(self, o: Outcome) -> None:
        self.outcomes.append(o)
        record: dict[str, Any] = o.record()
        self._records.append(record)
        if o.ok:
            log.info("turn %d: %s answered in %.0f ms: %s", self.turn_id, o.call.name, o.ms, o.result[:200])
        else:
            then = "the model is told" if o.misread else "the agent apologises"
            log.warning("turn %d: %s failed (%s); %s", self.turn_id, o.call.name or "a call", o.error, then)
        self._emit(
            ev.ToolFinished,
            turn_id=self.turn_id,
            name=o.call.name,
            ok=o.ok,
            result=record["result"],
            error=o.error,
            ms=record["ms"],
            call_id=o.call.id,
        )
        if o.transfer is not None:
            log.info("turn %d: transfer to a person requested (%s)", self.turn_id, o.transfer.reason)
            self._emit(ev.Transfer, turn_id=self.turn_id, reason=o.transfer.reason)
