"""`--llm openai` against voxloop's own /v1/chat/completions on loopback, with the real local model
behind it (SmolLM2-135M): the provider streams a real reply, counts its usage and keeps to
max_tokens; then a conversation on `openai,llama` whose endpoint goes away between two turns goes
on with the local model mid-call (a fallback event, counted in the turn's record).

The server's other models are fakes (only chat is asked of it); the conversation's microphone,
recogniser and voice are fakes too, so the language models are the only real work."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from typing import Any

import pytest

from conftest import Mic
from fakes import FakeSTT, FakeTTS, FakeVAD
from live_server import LiveServer, live_server
from voxloop.agent import events as ev
from voxloop.agent.providers import Providers
from voxloop.agent.session import VoiceSession
from voxloop.config import AgentConfig, FallbackConfig, LLMConfig, OpenAIConfig, RetryConfig
from voxloop.providers.base import LLM, Message, Sampling, Usage
from voxloop.providers.fallback import FallbackLLM
from voxloop.server.settings import ServerSettings
from voxloop.transports.timeline import TimelineSink

from .conftest import Arun, load_or_skip

pytest.importorskip("openai")
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def smol(arun: Arun[Any]) -> Iterator[LLM]:
    from voxloop.providers.llm.llama import LlamaLLM

    llm = load_or_skip(arun, LlamaLLM(LLMConfig(model="smollm2-135m")))
    yield llm
    arun(llm.aclose())


class _Lent(LLM):
    """The module's model lent to a chain: closing the chain (which closes its members) leaves
    the model loaded for the other tests."""

    def __init__(self, inner: LLM) -> None:
        self.inner, self.name = inner, inner.name

    def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        return self.inner.stream(messages)

    def stream_with(
        self, messages: Sequence[Message], sampling: Sampling, usage: Usage | None = None
    ) -> AsyncGenerator[str, None]:
        return self.inner.stream_with(messages, sampling, usage)

    async def prefill(self, messages: Sequence[Message]) -> None:
        await self.inner.prefill(messages)


def openai_llm(url: str) -> LLM:
    from voxloop.providers.llm.openai import OpenAILLM

    settings = OpenAIConfig(
        model="gpt-4o-mini",  # the server's name for its loaded chat model
        base_url=url,
        api_key="unused",
        first_token_timeout_s=60.0,  # a busy 2-core machine; the deadlines are not under test here
        idle_timeout_s=30.0,
        retry=RetryConfig(max_retries=1, backoff_s=0.05, backoff_max_s=0.1),
    )
    return OpenAILLM(LLMConfig(provider="openai", max_tokens=24, temperature=0.0, openai=settings))


@contextlib.asynccontextmanager
async def chat_server(smol: LLM) -> AsyncIterator[LiveServer]:
    config = AgentConfig()
    config.llm.model = "smollm2-135m"
    providers = Providers(FakeVAD(), FakeSTT(), smol, FakeTTS())
    async with live_server(providers, ServerSettings(port=0), config) as srv:
        yield srv


def test_the_provider_streams_a_real_reply_from_voxloop_serve(arun: Arun[Any], smol: LLM) -> None:
    async def main() -> None:
        async with chat_server(smol) as srv:
            llm = openai_llm(f"{srv.http_url}/v1")
            await llm.load()
            usage = Usage()
            ask = [Message("system", "You are brief."), Message("user", "Name a colour.")]
            pieces = [p async for p in llm.stream_with(ask, Sampling(max_tokens=8), usage)]
            await llm.aclose()
        assert pieces and "".join(pieces).strip()
        assert 1 <= usage.completion_tokens <= 8 and usage.prompt_tokens > 0
        assert usage.finish_reason in ("stop", "length")

    arun(main())


def test_a_conversation_moves_to_the_local_model_when_the_endpoint_goes_away(
    arun: Arun[Any], smol: LLM
) -> None:
    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            srv = await stack.enter_async_context(chat_server(smol))
            cloud = openai_llm(f"{srv.http_url}/v1")
            chain = FallbackLLM([cloud, _Lent(smol)], FallbackConfig(cooldown_s=300.0))
            try:
                await cloud.load()
                providers = Providers(FakeVAD(), FakeSTT(["name a colour", "name a fruit"]), chain, FakeTTS())
                config = AgentConfig()
                config.llm.max_tokens = 24
                session = VoiceSession(providers, TimelineSink(FakeTTS.sample_rate), config)
                events: list[ev.Event] = []
                session.subscribe(events.append)
                mic = Mic(session)

                async def turn(n: int) -> None:
                    await mic.silence(0.3)
                    await mic.speak(0.8)
                    done = lambda: len([e for e in events if isinstance(e, ev.TurnCompleted)]) >= n  # noqa: E731
                    assert await mic.silence_until(done, max_s=120), [e.type for e in events]

                await turn(1)
                await stack.aclose()  # the endpoint goes away between the turns
                await turn(2)
                await session.aclose()
            finally:  # the chain's probe of the cloud is pending (its cool-down): closing cancels it
                await chain.aclose()
        first, second = session.records
        assert first.agent_text and first.fallbacks == 0
        assert second.agent_text and second.fallbacks == 1  # answered by the local model, mid-call
        (moved,) = [e for e in events if isinstance(e, ev.ProviderFallback)]
        assert (moved.provider, moved.to_provider, moved.category) == ("openai", "llama", "connectivity")
        errors = [e for e in events if isinstance(e, ev.ErrorOccurred)]
        assert errors and all(e.stage == "llm" and e.category == "connectivity" for e in errors)
        assert chain.chain.state() == {"openai": "down", "llama": "up"}

    arun(main())
