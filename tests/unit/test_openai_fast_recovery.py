"""The OpenAI-compatible LLM's fast recovery, against a scripted upstream on loopback: a request
with no first words is hedged by a second one on another connection (the first to speak serves),
and in a fallback chain an endpoint that cannot be reached is given up on at once (the next
member answers) while a lone provider still retries it. Each test fails without its mechanism:
the deadlines are set past the hang guard, so only the mechanism can finish them. Nothing is timed."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from conftest import run_guarded as run
from fakes import FakeLLM
from openai_upstream import Busy, Reply, Stall, upstream
from voxloop.config import FallbackConfig, LLMConfig, OpenAIConfig, RetryConfig
from voxloop.errors import ProviderError
from voxloop.providers.base import Message
from voxloop.providers.fallback import FallbackLLM
from voxloop.providers.recovery import Incident, reporting

pytest.importorskip("openai")
from voxloop.providers.llm.openai import OpenAILLM  # noqa: E402

ASK = [Message("user", "hello?")]
FAST = RetryConfig(max_retries=3, backoff_s=0.01, backoff_max_s=0.02, retry_after_max_s=5.0)
NEVER = 120.0  # a deadline past the guard: the test hangs (and fails) unless the mechanism acts


def make(url: str, **settings: Any) -> OpenAILLM:
    base = OpenAIConfig(
        base_url=url, api_key="k", first_token_timeout_s=NEVER, idle_timeout_s=NEVER, retry=FAST
    )
    return OpenAILLM(LLMConfig(provider="openai", openai=dataclasses.replace(base, **settings)))


async def say(llm: Any, incidents: list[Incident]) -> str:
    with reporting(incidents.append):
        return "".join([p async for p in llm.stream(ASK)])


@asynccontextmanager
async def resetting_server() -> AsyncIterator[str]:
    """Accepts connections and resets them at once (a balancer with nothing behind it)."""

    def reset(_: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    finally:
        server.close()
        await server.wait_closed()


def test_a_stalled_request_is_hedged_and_the_second_one_answers() -> None:
    async def main() -> None:
        async with upstream(Stall(0), Reply(("Hello", " there."))) as up:
            llm = make(up.url, hedge_after_s=0.05)
            await llm.load()
            incidents: list[Incident] = []
            text = await say(llm, incidents)
            await llm.aclose()
        assert text == "Hello there." and len(up.chats) == 2
        assert incidents == []  # a hedge is no failure: no error, no retry, no filler
        assert llm.counters["hedge"] == 1 and llm.counters["hedge_won"] == 1

    run(main())


def test_a_server_that_answered_but_has_no_words_yet_is_hedged_only_later() -> None:
    async def main() -> None:
        go = asyncio.Event()
        async with upstream(Busy(go), Reply(("Hello", " there."))) as up:
            # the first wait is far longer than a loopback answer takes: the server has answered
            llm = make(up.url, hedge_after_s=1.0, hedge_after_answer_s=1.1)
            await llm.load()
            text = await say(llm, [])
            go.set()  # the busy one's words are no longer wanted
            await llm.aclose()
        assert text == "Hello there." and len(up.chats) == 2
        assert llm.counters["hedge_deferred"] == 1 and llm.counters["hedge_won"] == 1

    run(main())


def test_a_prompt_answer_is_not_hedged() -> None:
    async def main() -> None:
        async with upstream(Reply(("Hi.",))) as up:
            llm = make(up.url, hedge_after_s=NEVER)
            await llm.load()
            assert await say(llm, []) == "Hi."
            await llm.aclose()
        assert len(up.chats) == 1 and llm.counters["hedge"] == 0

    run(main())


def test_in_a_chain_a_refused_endpoint_falls_over_without_back_off() -> None:
    async def main() -> tuple[str, list[Incident], OpenAILLM]:
        async with upstream() as up:  # loaded while it answered; then its port refuses
            primary = make(up.url, hedge_after_s=0)
            await primary.load()
        chain = FallbackLLM([primary, FakeLLM(default=("local", " words"), name="llama")], FallbackConfig())
        incidents: list[Incident] = []
        text = await say(chain, incidents)
        await chain.aclose()
        return text, incidents, primary

    text, incidents, primary = run(main())
    assert text == "local words"
    assert [i.delay_s for i in incidents if i.kind == "retry"] == [0.0]  # one at once, no back-off
    assert [i.kind for i in incidents][-1] == "fallback" and primary.counters["unreachable"] == 2


def test_in_a_chain_an_endpoint_that_resets_before_answering_falls_over_too() -> None:
    async def main() -> tuple[str, list[Incident], OpenAILLM]:
        async with resetting_server() as url:
            primary = make(url, hedge_after_s=0)
            primary._reachable = True  # as if loaded while it answered
            await primary.load()
            chain = FallbackLLM([primary, FakeLLM(default=("local",), name="llama")], FallbackConfig())
            incidents: list[Incident] = []
            text = await say(chain, incidents)
            await chain.aclose()
            return text, incidents, primary

    text, incidents, primary = run(main())
    assert text == "local"
    assert [i.delay_s for i in incidents if i.kind == "retry"] == [0.0]
    assert primary.counters["unreachable"] == 2


def test_alone_a_refused_endpoint_is_still_retried_with_back_off() -> None:
    async def main() -> tuple[list[Incident], ProviderError]:
        async with upstream() as up:
            llm = make(up.url, hedge_after_s=0)
            await llm.load()
        incidents: list[Incident] = []
        with pytest.raises(ProviderError) as e:
            await say(llm, incidents)
        await llm.aclose()
        return incidents, e.value

    incidents, error = run(main())
    assert error.category == "connectivity" and error.unreachable
    assert len([i for i in incidents if i.kind == "retry"]) == FAST.max_retries
