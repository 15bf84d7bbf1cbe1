"""Tool calls in whole conversations (fake recogniser, voice and language model; virtual time).

The fake model answers in Qwen2.5's text format, cut into small pieces, so these runs go through
the prompt rendering and the streamed parsing too: its reply to the tool's result is keyed by the
`<tool_response>` user message the template makes of it.
"""

from __future__ import annotations

import asyncio

from conftest import conversation, make_providers, run_virtual
from fakes import FakeLLM, FakeSTT, FakeTTS
from voxloop.agent import events as ev
from voxloop.config import AgentConfig
from voxloop.providers.base import ToolCall
from voxloop.tools import Toolbox, Transfer, tool

ASK = "what time is it"


def call(name: str, args: str = "{}") -> tuple[str, ...]:
    text = f'<tool_call>\n{{"name": "{name}", "arguments": {args}}}\n</tool_call>'
    return tuple(text[i : i + 5] for i in range(0, len(text), 5))  # cut anywhere


def response(result: str) -> str:
    return f"<tool_response>\n{result}\n</tool_response>"


@tool
def clock() -> str:
    """The time."""
    return "3 PM"


@tool(filler="Let me look.")
async def slow_clock() -> str:
    """The time, slowly."""
    await asyncio.sleep(1.5)
    return "3 PM"


@tool
async def stuck_clock() -> str:
    """Never answers."""
    await asyncio.sleep(3600)
    return "never"


@tool
def broken_clock() -> str:
    """Fails."""
    raise RuntimeError("the clock server is down")


@tool
def transfer_to_human(reason: str) -> Transfer:
    """A person."""
    return Transfer(reason)


def run_turn(tools: list[object], replies: dict[str, object], cfg: AgentConfig | None = None):  # type: ignore[no-untyped-def]
    llm = FakeLLM(replies, delay=0.02)  # type: ignore[arg-type]
    tts = FakeTTS(delay=0.03)
    providers = make_providers(stt=FakeSTT([ASK, "thanks"]), llm=llm, tts=tts)
    providers.tools = Toolbox.of(tools)  # type: ignore[arg-type]
    out: dict[str, object] = {}

    async def main() -> None:
        async with conversation(providers, cfg or AgentConfig()) as c:
            await c.turn(1.0)
            out["c"] = c
            out["history"] = list(c.session.history.messages)
            out["record"] = c.of(ev.TurnCompleted)[0].record

    run_virtual(main())
    c = out["c"]
    return c, llm, tts, out["record"], out["history"]


def said(c) -> str:  # type: ignore[no-untyped-def]
    return " ".join(e.text for e in c.of(ev.AgentSpeech))


def test_a_fast_tool_is_called_its_result_answered_and_kept() -> None:
    c, llm, tts, rec, history = run_turn(
        [clock], {ASK: call("clock"), response("3 PM"): ("It is", " 3 PM", ".")}
    )
    assert said(c) == "It is 3 PM."  # the call was never spoken, and no filler for a fast tool
    assert rec["fillers"] == 0
    assert c.kinds(ev.ToolStarted, ev.ToolFinished, ev.AgentSpeech)[:2] == ["ToolStarted", "ToolFinished"]
    done = c.of(ev.ToolFinished)[0]
    assert (done.name, done.ok, done.result, done.error) == ("clock", True, "3 PM", "")
    assert rec["tools"] == [
        {"name": "clock", "arguments": {}, "ok": True, "result": "3 PM", "error": "", "ms": 0.0}
    ]
    assert [e["type"] for e in rec["events"] if e["type"].startswith("tool")] == [
        "tool_started",
        "tool_finished",
    ]
    # the history: the call and its result between the question and the answer
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[1].tool_calls[0].name == "clock" and history[2].content == "3 PM"
    assert history[2].tool_call_id == history[1].tool_calls[0].id
    # the model saw its tools in the system message, and the result as the template writes it
    assert '"name": "clock"' in llm.calls[-1].messages[0].content
    assert llm.calls[-1].messages[-1].content == response("3 PM")
    assert llm.calls[-1].messages[-2].content.startswith("<tool_call>\n")


def test_a_slow_tool_gets_its_filler_first() -> None:
    c, _, tts, rec, _ = run_turn([slow_clock], {ASK: call("slow_clock"), response("3 PM"): ("It is 3 PM.",)})
    assert said(c) == "Let me look. It is 3 PM."
    assert rec["fillers"] == 1 and tts.texts[0] == "Let me look."
    filler_t = c.of(ev.AgentSpeech)[0].t
    started, finished = c.of(ev.ToolStarted)[0], c.of(ev.ToolFinished)[0]
    assert started.t < filler_t < finished.t  # said while the tool ran


def test_a_stuck_tool_times_out_into_an_apology() -> None:
    cfg = AgentConfig()
    c, llm, _, rec, history = run_turn([stuck_clock], {ASK: call("stuck_clock")}, cfg)
    assert said(c) == f"{cfg.tools.filler_text} {cfg.tools.apology_text}"
    done = c.of(ev.ToolFinished)[0]
    assert not done.ok and done.error == "timeout"
    assert done.t - c.of(ev.ToolStarted)[0].t == cfg.tools.timeout_s  # virtual time: exact
    assert len(llm.calls) == 1  # the apology is said, not asked of the model
    assert history[-2].role == "tool" and "no answer within 5 s" in history[-2].content
    assert not rec["interrupted"] and rec["tools"][0]["error"] == "timeout"


def test_a_failing_tool_becomes_an_apology() -> None:
    cfg = AgentConfig()
    c, _, _, rec, history = run_turn([broken_clock], {ASK: call("broken_clock")}, cfg)
    assert said(c) == cfg.tools.apology_text
    assert rec["tools"][0]["ok"] is False
    assert "RuntimeError: the clock server is down" in rec["tools"][0]["error"]
    assert history[-2].content == "error: the tool failed (RuntimeError: the clock server is down)"


def test_a_call_the_model_got_wrong_is_told_to_it_and_it_tries_again() -> None:
    """An unknown tool, bad arguments, a reply that is neither words nor a readable call: the
    model's mistakes, not the tool's: it reads the error and goes on (no apology)."""
    for first, error in (
        (call("calendar"), "no such tool"),
        (call("clock", '{"zone": "UTC"}'), "bad arguments: no parameter zone"),
        (("<tools>", "</tools>"), "unreadable call"),
    ):
        c, llm, _, rec, history = run_turn([clock], {ASK: first})
        assert rec["tools"][0]["error"] == error
        assert said(c) == "Sure, happy to help."  # the fake's answer to the error: no apology
        assert len(llm.calls) == 2 and llm.calls[1].messages[-1].content.startswith(
            "<tool_response>\nerror: "
        )
        assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]


@tool
def echo(n: int) -> str:
    """Says n."""
    return str(n)


def test_rounds_are_limited() -> None:
    cfg = AgentConfig()
    cfg.tools.max_rounds = 2
    replies = {
        ASK: call("echo", '{"n": 1}'),
        response("1"): call("echo", '{"n": 2}'),
        response("2"): call("echo", '{"n": 3}'),
    }
    c, llm, _, rec, _ = run_turn([echo], replies, cfg)  # type: ignore[arg-type]
    assert len(llm.calls) == 3 and [t["result"] for t in rec["tools"]] == ["1", "2"]
    assert said(c) == cfg.tools.give_up_text


def test_transfer_to_human_emits_a_transfer_event_and_says_its_note() -> None:
    """The transfer's note ends the reply: the model is not asked to go on (it said "I'm sorry,
    but I can't assist with that" after half the transfers, benchmarks/tool_calls.py)."""
    c, llm, _, rec, history = run_turn(
        [transfer_to_human],
        {
            ASK: ("One moment.", *call("transfer_to_human", '{"reason": "wants a person"}')),
            response(Transfer("x").note): ("I can't assist with that.",),
        },
    )
    t = c.of(ev.Transfer)
    assert len(t) == 1 and t[0].reason == "wants a person" and t[0].turn_id == 1
    assert said(c) == f"One moment. {Transfer('x').note}" and len(llm.calls) == 1
    assert "transfer" in [e["type"] for e in rec["events"]]
    assert [m.role for m in history[1:]] == ["assistant", "tool", "assistant"]


def test_the_model_can_say_words_before_its_call() -> None:
    pieces = ("Let me", " check.", *call("clock"))
    c, _, _, _, history = run_turn([clock], {ASK: pieces, response("3 PM"): ("It is 3 PM.",)})
    assert said(c) == "Let me check. It is 3 PM."
    assert history[1].content == "Let me check." and history[1].tool_calls[0].name == "clock"


def test_tool_call_dataclass_is_hashable() -> None:
    assert hash(ToolCall("a", "{}", "1")) == hash(ToolCall("a", "{}", "1"))


def test_the_system_prompt_gets_the_guidance_and_for_a_text_model_the_tools() -> None:
    from voxloop.agent.toolcall import GUIDE, TOOLS_SYSTEM_PROMPT, system_prompt
    from voxloop.config import DEFAULT_SYSTEM_PROMPT

    box = Toolbox.of([clock])
    text = system_prompt(DEFAULT_SYSTEM_PROMPT, box, text_format=True)
    assert text.startswith(TOOLS_SYSTEM_PROMPT) and GUIDE in text and '"name": "clock"' in text
    assert "cannot" not in text.split(GUIDE)[0]  # the default's "you cannot check the time" is gone
    assert system_prompt(text, box, text_format=True) == text  # once only
    native = system_prompt("Be a pirate.", box, text_format=False)
    assert native == f"Be a pirate.\n\n{GUIDE}" and "<tools>" not in native


@tool
async def very_slow() -> str:
    """Takes its time."""
    await asyncio.sleep(4.0)
    return "late"


def test_a_barge_in_while_a_tool_runs_cancels_it_and_leaves_no_call_without_its_result() -> None:
    llm = FakeLLM({ASK: call("very_slow")}, delay=0.02)
    providers = make_providers(stt=FakeSTT([ASK, "never mind"]), llm=llm, tts=FakeTTS(delay=0.03))
    providers.tools = Toolbox.of([very_slow])

    async def main() -> None:
        async with conversation(providers, AgentConfig()) as c:
            await c.mic.silence(0.3)
            await c.mic.speak(1.0)
            assert await c.mic.silence_until(lambda: bool(c.of(ev.AgentSpeech)), 10)  # the filler
            await c.mic.speak(1.5)  # the caller talks over it while the tool runs
            assert await c.mic.silence_until(c.completed(2), 20), c.kinds()
            assert c.of(ev.Interrupted) and not c.of(ev.ToolFinished)
            history = c.session.history.messages
            assert not any(m.tool_calls for m in history)  # the unfinished call is not kept

    run_virtual(main())


def test_partials_are_prefilled_as_the_model_will_read_the_tool_exchange() -> None:
    llm = FakeLLM({ASK: call("clock"), response("3 PM"): ("It is 3 PM.",)}, delay=0.02)
    providers = make_providers(stt=FakeSTT([ASK, "and the date"], partial_every_s=0.25), llm=llm)
    providers.tools = Toolbox.of([clock])

    async def main() -> None:
        async with conversation(providers, AgentConfig()) as c:
            await c.turn(1.0)
            await c.turn(1.0)
            later = [m for m in llm.prefills if m[-1].content == "and the date"]
            assert later, "the second turn's partials were not prefilled"
            roles = [m.role for m in later[-1]]
            assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
            assert later[-1][3].content == response("3 PM")  # not a raw "tool" message

    run_virtual(main())


def test_no_filler_when_it_is_turned_off_and_the_deadline_still_holds() -> None:
    cfg = AgentConfig()
    cfg.tools.filler_after_s = 0.0
    c, _, _, rec, _ = run_turn(
        [slow_clock], {ASK: call("slow_clock"), response("3 PM"): ("It is 3 PM.",)}, cfg
    )
    assert said(c) == "It is 3 PM." and rec["fillers"] == 0
    cfg.tools.timeout_s = 1.0  # shorter than the tool
    c, _, _, rec, _ = run_turn([slow_clock], {ASK: call("slow_clock")}, cfg)
    assert said(c) == cfg.tools.apology_text and rec["tools"][0]["error"] == "timeout"


def test_examples_are_shown_in_the_text_format_only() -> None:
    from voxloop.agent.toolcall import system_prompt

    @tool(examples=[("Is it late?", {})])
    def now() -> str:
        """The time."""
        return "late"

    box = Toolbox.of([now])
    text = system_prompt("Be brief.", box, text_format=True)
    call = '<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>'
    assert f'The caller says "Is it late?": your whole reply is\n{call}' in text
    assert "Examples" not in system_prompt("Be brief.", box, text_format=False)
    # the model reads the prompt as it is (tools block, then examples), which is what `warm`
    # caches: rendered, the block went on after the examples a second time, 350 tokens every
    # conversation's first reply read again (beside two compiles 16 s, past the watchdog)
    from voxloop.providers.base import Message
    from voxloop.providers.llm.tooltext import render

    assert render([Message("system", text)], box.schemas)[0].content == text


def test_a_repeated_call_is_not_run_again_and_the_model_is_told_to_answer() -> None:
    """Seen with the 1.5B model on 'Look up our opening hours': the right call, three times. It
    gets the result again (not an error, which it answered with "I can't assist with that")."""
    told = response("3 PM\n(You looked this up already: answer the caller from it now, in words.)")
    c, llm, _, rec, _ = run_turn(
        [clock], {ASK: call("clock"), response("3 PM"): call("clock"), told: ("It is 3 PM.",)}
    )
    assert said(c) == "It is 3 PM."
    assert [t["error"] for t in rec["tools"]] == ["", "repeated call"]
    assert len(llm.calls) == 3


def test_no_words_at_all_after_the_tools_is_not_silence() -> None:
    c, _, _, _, _ = run_turn([clock], {ASK: call("clock"), response("3 PM"): ("  ",)})
    assert said(c) == AgentConfig().tools.give_up_text
