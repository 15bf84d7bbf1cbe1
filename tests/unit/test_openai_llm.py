"""The OpenAI-compatible LLM against a scripted upstream on loopback (tests/openai_upstream.py):
the wire format, the deadlines, bounded retries with back-off or Retry-After, errors with their
category and never the key. Real sockets, real time; every wait is on the scripted server's
requests or on the provider, with `guard` only against a hang."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from conftest import run_guarded as run
from openai_upstream import Cut, Reply, Stall, Status, Step, Upstream, upstream
from voxloop.config import LLMConfig, OpenAIConfig, RetryConfig
from voxloop.errors import ProviderError
from voxloop.providers.base import Message, Sampling, Usage
from voxloop.providers.recovery import Incident, reporting

pytest.importorskip("openai")
from voxloop.providers.llm.openai import OpenAILLM  # noqa: E402

KEY = "sk-test-4f9a8b7c6d5e"
ASK = [Message("system", "be brief"), Message("user", "hello?")]
FAST = RetryConfig(max_retries=3, backoff_s=0.01, backoff_max_s=0.02, retry_after_max_s=5.0)


def make(url: str, **settings: Any) -> OpenAILLM:
    base = OpenAIConfig(base_url=url, api_key=KEY, first_token_timeout_s=1.0, idle_timeout_s=1.0, retry=FAST)
    return OpenAILLM(LLMConfig(provider="openai", openai=dataclasses.replace(base, **settings)))


@asynccontextmanager
async def loaded(
    *script: Step, default: Step | None = None, **settings: Any
) -> AsyncIterator[tuple[Upstream, OpenAILLM]]:
    """The provider (`make`'s, with `settings`), loaded, against an upstream playing `script`;
    closed on leaving."""
    async with upstream(*script, default=default) as up:
        llm = make(up.url, **settings)
        await llm.load()
        try:
            yield up, llm
        finally:
            await llm.aclose()


async def reply(llm: OpenAILLM, incidents: list[Incident] | None = None) -> str:
    with reporting((incidents if incidents is not None else []).append):
        return "".join([p async for p in llm.stream(ASK)])


def kinds(incidents: list[Incident]) -> list[tuple[str, str]]:
    return [(i.kind, i.category) for i in incidents]


def test_streams_the_reply_as_openai_sends_it() -> None:
    async def main() -> None:
        async with loaded(Reply(("Paris", " is", " lovely", ".")), model="gpt-4o-mini") as (up, llm):
            usage = Usage()
            pieces = [p async for p in llm.stream_with(ASK, Sampling(max_tokens=7, temperature=0.5), usage)]
        assert pieces == ["Paris", " is", " lovely", "."]
        assert usage.finish_reason == "stop" and usage.completion_tokens == 4
        req = up.chats[0]
        assert req.headers["authorization"] == f"Bearer {KEY}"
        assert req.body["model"] == "gpt-4o-mini" and req.body["stream"] is True
        assert req.body["max_tokens"] == 7 and req.body["temperature"] == 0.5
        assert req.body["messages"] == [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello?"},
        ]

    run(main())


def test_5xx_is_retried_then_answered_and_every_step_is_reported() -> None:
    async def main() -> None:
        async with loaded(Status(503), Status(500)) as (up, llm):
            incidents: list[Incident] = []
            text = await reply(llm, incidents)
        assert text == "Hello there."
        assert len(up.chats) == 3
        assert kinds(incidents) == [("error", "server"), ("retry", "server")] * 2
        assert [i.attempt for i in incidents if i.kind == "retry"] == [1, 2]

    run(main())


def test_5xx_is_retried_at_most_3_times_then_fails_as_server() -> None:
    async def main() -> None:
        async with loaded(default=Status(502)) as (up, llm):
            incidents: list[Incident] = []
            with pytest.raises(ProviderError) as e:
                await reply(llm, incidents)
        assert len(up.chats) == 4  # the request and 3 retries, no more
        assert [i.attempt for i in incidents if i.kind == "retry"] == [1, 2, 3]
        assert e.value.category == "server" and e.value.status == 502 and e.value.retryable

    run(main())


def test_the_clients_hidden_retries_are_off() -> None:
    async def main() -> None:
        async with loaded(default=Status(503), retry=dataclasses.replace(FAST, max_retries=0)) as (up, llm):
            with pytest.raises(ProviderError):
                await reply(llm)
        assert len(up.chats) == 1  # the openai client's own default would have tried 3 times

    run(main())


def test_429_waits_for_retry_after() -> None:
    async def main() -> None:
        async with loaded(Status(429, retry_after="1")) as (up, llm):
            incidents: list[Incident] = []
            assert await reply(llm, incidents) == "Hello there."
        retry = next(i for i in incidents if i.kind == "retry")
        assert retry.category == "rate_limit" and retry.delay_s == 1.0  # the server's wait, not the back-off

    run(main())


def test_429_asking_for_too_long_is_not_waited_for() -> None:
    async def main() -> None:
        async with loaded(Status(429, retry_after="30")) as (up, llm):
            incidents: list[Incident] = []
            with pytest.raises(ProviderError) as e:
                await reply(llm, incidents)
        assert len(up.chats) == 1 and kinds(incidents) == [("error", "rate_limit")]
        assert e.value.retry_after == 30.0  # a fallback chain keeps the member down at least this long

    run(main())


@pytest.mark.parametrize(("status", "category"), [(400, "bad_request"), (404, "bad_request"), (401, "auth")])
def test_4xx_is_not_retried_and_the_key_never_shows(status: int, category: str) -> None:
    async def main() -> None:
        async with loaded(Status(status, message=f"Incorrect API key provided: {KEY}")) as (up, llm):
            incidents: list[Incident] = []
            with pytest.raises(ProviderError) as e:
                await reply(llm, incidents)
        assert len(up.chats) == 1 and kinds(incidents) == [("error", category)]
        assert e.value.category == category and not e.value.retryable
        assert KEY not in str(e.value) and KEY not in incidents[0].message and "***" in e.value.message
        assert "127.0.0.1" in e.value.message and f"HTTP {status}" in e.value.message

    run(main())


def test_a_stall_before_the_first_words_meets_its_deadline_and_is_retried() -> None:
    async def main() -> None:
        async with loaded(Stall(0), first_token_timeout_s=0.3) as (up, llm):
            incidents: list[Incident] = []
            text = await reply(llm, incidents)
        assert text == "Hello there."
        assert kinds(incidents)[:2] == [("error", "timeout"), ("retry", "timeout")]
        assert "first words" in incidents[0].message
        assert len(up.chats) == 2

    run(main())


def test_a_stall_after_the_first_words_ends_the_reply_with_a_timeout() -> None:
    async def main() -> None:
        async with loaded(Stall(2), idle_timeout_s=0.3) as (up, llm):
            got: list[str] = []
            with pytest.raises(ProviderError) as e:
                async for piece in llm.stream(ASK):
                    got.append(piece)
        assert got == ["w0 ", "w1 "] and len(up.chats) == 1  # said words are not said again
        assert e.value.category == "timeout" and "next piece" in e.value.message

    run(main())


@pytest.mark.parametrize("clean", [False, True])
def test_a_truncated_stream_is_a_connectivity_failure_and_retried(clean: bool) -> None:
    async def main() -> None:
        async with loaded(Cut(after=0, clean=clean)) as (up, llm):
            incidents: list[Incident] = []
            assert await reply(llm, incidents) == "Hello there."
        assert kinds(incidents) == [("error", "connectivity"), ("retry", "connectivity")]

    run(main())


def test_load_without_a_key_for_openai_itself_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ProviderError) as e:
        run(OpenAILLM(LLMConfig(provider="openai")).load())
    assert e.value.category == "auth" and "OPENAI_API_KEY" in e.value.hint


def test_load_of_an_unreachable_endpoint_fails_as_connectivity() -> None:
    async def main() -> None:
        async with upstream() as up:
            url = up.url
        llm = make(url)  # the server is gone: its port refuses
        with pytest.raises(ProviderError) as e:
            await llm.load()
        await llm.aclose()
        assert e.value.category == "connectivity"

    run(main())


def test_key_and_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        async with upstream() as up:
            monkeypatch.setenv("OPENAI_BASE_URL", up.url)
            monkeypatch.setenv("OPENAI_API_KEY", KEY)
            llm = OpenAILLM(LLMConfig(provider="openai"))
            await llm.load()
            assert await reply(llm) == "Hello there."
            await llm.aclose()
        assert up.chats[0].headers["authorization"] == f"Bearer {KEY}"
        assert up.chats[0].body["model"] == "gpt-4o-mini"
        assert KEY not in repr(llm.config)

    run(main())
