"""How reliably does the local model call the demo tools, and answer from their results?

For each of three requests (the time, the opening hours, a person) it asks ten phrasings, as
text, through the reply's tool loop (agent/toolcall.py) with the demo tools (`--tools demo`), the
same system prompt and Qwen2.5 text tool format the agent uses, and counts per request:
  called   the right tool was called in the first round
  wrong    another tool was called
  none     no tool was called (the model answered by itself)
  used     the spoken answer holds the tool's result (the hour; "9" and "6"; a transfer said)

    flock /tmp/voxloop-cpu.lock .venv/bin/python benchmarks/tool_calls.py [--per 10] [--model qwen2.5-1.5b]

Each phrasing starts a fresh conversation (system + one user message), at the configured
temperature (0.3): a rate, not a single verdict. Results as a table and `--out` JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

from voxloop.agent import events as ev
from voxloop.agent.toolcall import GUIDE, ToolRounds, system_prompt, warm
from voxloop.config import DEFAULT_SYSTEM_PROMPT, LLMConfig, ToolsConfig
from voxloop.providers.base import Message
from voxloop.providers.llm.llama import LlamaLLM
from voxloop.tools import load

PHRASINGS: dict[str, tuple[str, list[str]]] = {
    "get_date_and_time": (
        "time",
        [
            "What time is it?",
            "What's the time right now?",
            "Can you tell me the time?",
            "Do you know what time it is?",
            "What is today's date?",
            "What day is it today?",
            "Tell me the current time please.",
            "Hey, what time have you got?",
            "What's the date and time?",
            "Is it morning or afternoon right now?",
        ],
    ),
    "search_knowledge_base": (
        "hours",
        [
            "Look up our opening hours.",
            "What are your opening hours?",
            "When are you open?",
            "Are you open on Saturday?",
            "What time do you close today?",
            "When does the shop open in the morning?",
            "Can you check your opening times for me?",
            "Are you open on Sundays?",
            "What hours is the bookshop open?",
            "How late are you open on Friday?",
        ],
    ),
    "transfer_to_human": (
        "transfer",
        [
            "Let me talk to a person.",
            "I want to speak to a human.",
            "Can I talk to someone real?",
            "Put me through to an agent please.",
            "Connect me to a member of staff.",
            "I'd like to speak with a real person.",
            "Transfer me to a human, please.",
            "Get me a representative.",
            "Can I speak to the manager?",
            "I need to talk to somebody, not a machine.",
        ],
    ),
}


# Written in session 8 before the guide or the tools were changed again, and never tuned on: the
# tuning phrasings above shaped the guide and the tools' descriptions; these judge them. "none":
# requests no tool should answer (a transfer that nobody asked for is worse than none).
HELDOUT: dict[str, tuple[str, list[str]]] = {
    "get_date_and_time": (
        "time",
        [
            "What's today?",
            "Sorry, what time is it now?",
            "Could you check the date for me?",
            "How late is it?",
            "Which day of the week is it?",
        ],
    ),
    "search_knowledge_base": (
        "hours",
        [
            "Until when are you open tonight?",
            "Do you open on public holidays?",
            "What are the store hours?",
            "Is the shop open right now?",
            "When can I come in?",
        ],
    ),
    "transfer_to_human": (
        "transfer",
        [
            "Is there a human I can talk to?",
            "Please connect me with an operator.",
            "I want to talk to your supervisor.",
            "This isn't working, give me a person.",
            "Let me speak to somebody.",
            "Put me on with a human being.",
            "Operator, please.",
            "Is anyone there I can speak to?",
            "I'd rather talk to one of your staff.",
            "Can you get customer service on the line?",
        ],
    ),
    "none": (
        "none",
        [
            "Tell me a joke.",
            "What's twelve times twelve?",
            "Thanks, that's all I needed.",
            "Are you a person?",
            "Who am I talking to?",
            "How do I say hello in Spanish?",
            "Is a tomato a fruit?",
            "My friend told me to call you.",
            "I talked to a person yesterday and they were rude.",
            "Can you recommend a good book?",
        ],
    ),
}


EXAMPLE = (
    ' To call a tool, your whole reply is the call, for example (the caller asks "What time is it?"):'
    '\n<tool_call>\n{"name": "get_date_and_time", "arguments": {}}\n</tool_call>'
)
# Written after the first held-out run (whose "none" answers showed the model claiming to be a
# person), before the guide was changed for it: these judge that change.
HELDOUT2: dict[str, tuple[str, list[str]]] = {
    "transfer_to_human": (
        "transfer",
        [
            "Can I please speak to a real human?",
            "I don't want a robot, I want a person.",
            "Put a manager on.",
            "Could you connect me to your sales team?",
            "Can someone from your staff call me back?",
            "I need a human to help with my refund.",
        ],
    ),
    "none": (
        "none",
        [
            "Are you a real person?",
            "Am I speaking to a robot?",
            "What's your name?",
            "Is this a recording?",
            "Tell me about yourself.",
            "How far is the moon?",
            "I spoke to your colleague last week.",
            "What is the capital of Peru?",
        ],
    ),
}

SETS = {
    "tuning": PHRASINGS,
    "heldout": HELDOUT,
    "heldout2": HELDOUT2,
    "both": {
        **{k: (kind, [*t, *HELDOUT[k][1]]) for k, (kind, t) in PHRASINGS.items()},
        "none": HELDOUT["none"],
    },
}
GUIDES = {"guide": GUIDE, "guide+example": GUIDE + EXAMPLE}


def used(kind: str, text: str, result: str) -> bool:
    """The answer holds the result: the hour or the date; 9 and 6 (or the day asked); a transfer."""
    low = text.lower()
    if kind == "time":
        hour = re.search(r"It is (\d+):(\d+)", result)
        day = re.search(r"on (\w+), (\d+) (\w+)", result)
        hits = [
            hour.group(1) if hour else "",
            day.group(1).lower() if day else "",
            day.group(3).lower() if day else "",
        ]
        return any(h and re.search(rf"\b{h}\b", low) for h in hits)
    if kind == "hours":
        return any(w in low for w in ("9", "nine", "6 pm", "six", "10", "ten", "closed", "4 pm", "four"))
    return any(w in low for w in ("transfer", "connect", "put you through", "person", "someone", "staff"))


async def ask(llm: LlamaLLM, rounds: ToolRounds, prompt: str, text: str) -> str:
    return "".join([p async for p in rounds.stream([Message("system", prompt), Message("user", text)])])


async def main_async(a: argparse.Namespace) -> dict[str, Any]:
    box = load("demo")
    first = system_prompt(DEFAULT_SYSTEM_PROMPT, box, text_format=True, guide=GUIDES[a.guides.split(",")[0]])
    # --warm reply (as `--tools` does): the default prompt at load, then the tools' through a
    # one-token reply (evaluated in the reply's steps); load: the tools' prompt as the configured
    # one, evaluated by the model's load in one batch; plain: the first phrasing evaluates it
    at_load = first if a.warm == "load" else DEFAULT_SYSTEM_PROMPT
    llm = LlamaLLM(LLMConfig(model=a.model, system_prompt=at_load, temperature=a.temperature))
    await llm.load()
    if a.warm == "reply":
        await warm(llm, first)
    raw: list[str] = []  # what the model wrote, each round (a call's format, before parsing)
    stream = llm.stream

    async def recorded(messages: Any) -> Any:
        raw.append("")
        async for piece in stream(messages):
            raw[-1] += piece
            yield piece

    llm.stream = recorded  # type: ignore[method-assign]
    rows: list[dict[str, Any]] = []
    tuning = {t for _k, ts in PHRASINGS.values() for t in ts}
    try:
        for variant in a.guides.split(","):
            prompt = system_prompt(DEFAULT_SYSTEM_PROMPT, box, text_format=True, guide=GUIDES[variant])
            for tool_name, (kind, texts) in SETS[a.set].items():
                if a.only and tool_name not in a.only.split(","):
                    continue
                for text in texts[: a.per]:
                    events: list[tuple[type[ev.Event], dict[str, Any]]] = []
                    fillers: list[str] = []

                    async def now() -> None:
                        return None

                    rounds = ToolRounds(
                        llm,
                        box,
                        ToolsConfig(timeout_s=30.0),
                        turn_id=1,
                        emit=lambda k, _e=events, **f: _e.append((k, f)),
                        say=fillers.append,
                        touch=lambda: None,
                        committed=now,
                    )
                    raw.clear()
                    t0 = time.perf_counter()
                    answer = await ask(llm, rounds, prompt, text)
                    names = [o.call.name for o in rounds.outcomes]
                    result = rounds.outcomes[0].result if rounds.outcomes else ""
                    row = {
                        "guide": variant,
                        "set": a.set if a.set != "both" else "tuning" if text in tuning else "heldout",
                        "expected": tool_name,
                        "text": text,
                        "called": names,
                        "first_ok": names[:1] == [tool_name] or (tool_name == "none" and not names),
                        "answer": answer,
                        "raw": raw[0][:200] if raw else "",
                        "format": _format(raw[0] if raw else "", names),
                        "used": bool(names) and names[0] == tool_name and used(kind, answer, result),
                        "transfer": any(k is ev.Transfer for k, _ in events),
                        "s": round(time.perf_counter() - t0, 1),
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        await llm.aclose()
    summary = {}
    keys = {(r["guide"], r["set"], r["expected"]): None for r in rows}
    for variant, part, tool_name in keys:
        mine = [r for r in rows if (r["guide"], r["set"], r["expected"]) == (variant, part, tool_name)]
        summary[f"{variant} {part}: {tool_name}"] = {
            "n": len(mine),
            "called": sum(r["first_ok"] for r in mine),
            "wrong": sum(bool(r["called"]) and not r["first_ok"] for r in mine),
            "none": sum(not r["called"] for r in mine) if tool_name != "none" else 0,
            "used": sum(r["used"] for r in mine),
            "qwen_format": sum(r["format"] == "qwen" for r in mine),
        }
    return {"model": a.model, "warm": a.warm, "temperature": a.temperature, "rows": rows, "summary": summary}


def _format(first: str, called: list[str]) -> str:
    """How the first round was written: Qwen's (tags or bare JSON), another way read as a call
    (toolloose.py), or words."""
    head = first.lstrip()
    if head.startswith(("<tool_call>", '{"name"', "{{")):
        return "qwen"
    return "loose" if called else "words"


def main() -> None:
    ap = argparse.ArgumentParser(description="tool-call reliability of the local model")
    ap.add_argument("--per", type=int, default=20, help="phrasings per request, at most")
    ap.add_argument("--model", default=LLMConfig.model)
    ap.add_argument("--warm", choices=["reply", "load", "plain"], default="reply")
    ap.add_argument("--temperature", type=float, default=LLMConfig.temperature)
    ap.add_argument("--guides", default="guide", help=f"comma-separated, of: {', '.join(GUIDES)}")
    ap.add_argument(
        "--set", choices=list(SETS), default="tuning", help="which phrasings (both: tuning, then held-out)"
    )
    ap.add_argument("--only", default="", help="comma-separated expected tools (or none) to ask for")
    ap.add_argument("--out", type=Path, default=Path("bench-out/tool_calls.json"))
    a = ap.parse_args()
    res = asyncio.run(main_async(a))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    print(f"warm {a.warm}, temperature {a.temperature}")
    print(
        f"{'guide: tool':40s} {'n':>3s} {'called':>7s} {'wrong':>6s} {'none':>5s} {'used':>5s} {'qwen':>5s}"
    )
    for name, s in res["summary"].items():
        print(
            f"{name:40s} {s['n']:3d} {s['called']:7d} {s['wrong']:6d} {s['none']:5d} {s['used']:5d} {s['qwen_format']:5d}"
        )


if __name__ == "__main__":
    main()
