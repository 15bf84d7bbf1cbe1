"""Fallback chains (providers/fallback.py, fallback_stt.py) with fakes, in virtual time: the primary
fails -> the next member serves at once -> after the cool-down a probe finds the primary back ->
it serves again. Loading tolerates a member that cannot load; the registry builds chains."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import numpy as np
import pytest

from conftest import run_virtual
from fakes import FakeLLM, FakeSTT, FakeTTS
from fakes.flaky import FlakyLLM
from voxloop.config import AgentConfig, FallbackConfig
from voxloop.errors import ProviderError, UnknownProvider
from voxloop.providers import registry
from voxloop.providers.base import Message, Samples
from voxloop.providers.fallback import FallbackLLM, FallbackTTS
from voxloop.providers.fallback_stt import FallbackSTT
from voxloop.providers.recovery import Incident, reporting

COOL = FallbackConfig(cooldown_s=5.0, max_cooldown_s=20.0, probe_timeout_s=2.0)
ASK = [Message("user", "hi")]


def llm_chain() -> tuple[FlakyLLM, FakeLLM, FallbackLLM]:
    primary = FlakyLLM(default=("cloud", " words"), name="openai")
    local = FakeLLM(default=("local", " words"), name="llama")
    return primary, local, FallbackLLM([primary, local], COOL)


async def say(llm: FallbackLLM, incidents: list[Incident]) -> str:
    with reporting(incidents.append):
        return "".join([p async for p in llm.stream(ASK)])


def test_llm_moves_to_the_next_member_mid_conversation_and_back_after_recovery() -> None:
    primary, local, chain = llm_chain()

    async def main() -> None:
        await chain.load()
        incidents: list[Incident] = []
        assert await say(chain, incidents) == "cloud words"
        primary.down = ProviderError("HTTP 503", category="server")
        assert await say(chain, incidents) == "local words"  # the same request, at once
        assert [(i.kind, i.provider, i.category, i.to_provider) for i in incidents] == [
            ("error", "openai", "server", ""),
            ("fallback", "openai", "server", "llama"),
        ]
        calls = len(primary.calls)
        assert await say(chain, incidents) == "local words"  # the conversation stays on llama
        assert len(primary.calls) == calls and chain.chain.state() == {"openai": "down", "llama": "up"}
        await asyncio_sleep(COOL.cooldown_s)  # the first probe fails: still down
        assert chain.chain.state()["openai"] == "down"
        primary.down = None
        await asyncio_sleep(COOL.cooldown_s * 2)  # the next probe, after a doubled cool-down
        assert chain.chain.state()["openai"] == "up"
        assert chain.chain.incidents[-1].kind == "recovered"
        assert await say(chain, incidents) == "cloud words"
        await chain.aclose()

    run_virtual(main())


async def asyncio_sleep(seconds: float) -> None:
    """Virtual time passing (the cool-down is the mechanism's own wait, not a synchronisation)."""
    import asyncio

    await asyncio.sleep(seconds + 0.001)


def test_a_retry_after_keeps_the_member_down_at_least_that_long() -> None:
    primary, _, chain = llm_chain()

    async def main() -> None:
        await chain.load()
        primary.down = ProviderError("HTTP 429", category="rate_limit", retry_after=12.0)
        assert await say(chain, []) == "local words"
        primary.down = None
        await asyncio_sleep(COOL.cooldown_s)
        assert chain.chain.state()["openai"] == "down"  # the cool-down alone would have probed
        await asyncio_sleep(12.0 - COOL.cooldown_s)
        assert chain.chain.state()["openai"] == "up"
        await chain.aclose()

    run_virtual(main())


def test_a_closed_chain_cancels_its_probes_and_schedules_no_more() -> None:
    """A probe left pending outlives the loop ("Task was destroyed but it is pending"): closing the
    chain cancels the one scheduled, and a request that fails as the chain closes adds none."""
    primary, _, chain = llm_chain()

    async def main() -> None:
        import asyncio

        await chain.load()
        primary.down = ProviderError("HTTP 503", category="server")
        assert await say(chain, []) == "local words"
        (probe,) = chain.chain._probes.values()
        await chain.aclose()
        assert probe.cancelled() and not chain.chain._probes
        chain.chain.failed(1, ProviderError("late", category="server"), None)  # one not yet down
        assert not chain.chain._probes
        assert {t for t in asyncio.all_tasks() if t is not asyncio.current_task()} == set()

    run_virtual(main())


def test_words_already_said_are_not_said_again_by_the_next_member() -> None:
    primary, local, chain = llm_chain()
    primary.default = ("cloud",)

    class Cut(FlakyLLM):
        async def _generate(self, call, script):  # type: ignore[no-untyped-def]
            yield "cloud"
            raise ProviderError("cut", category="connectivity")

    cut = Cut(name="openai")
    chain = FallbackLLM([cut, local], COOL)

    async def main() -> None:
        got: list[str] = []
        with pytest.raises(ProviderError):
            async for p in chain.stream(ASK):
                got.append(p)
        assert got == ["cloud"] and not local.calls
        await chain.aclose()

    run_virtual(main())


def test_a_member_that_cannot_load_does_not_stop_the_start(caplog: pytest.LogCaptureFixture) -> None:
    primary, _, chain = llm_chain()
    primary.load_error = ProviderError("no OpenAI API key", category="auth")

    async def main() -> None:
        await chain.load()
        assert chain.chain.state() == {"openai": "down", "llama": "up"}
        assert await say(chain, []) == "local words" and not primary.calls
        await chain.aclose()

    with caplog.at_level("WARNING", logger="voxloop.fallback"):
        run_virtual(main())
    assert "openai could not be loaded (no OpenAI API key)" in caplog.text


def test_a_chain_none_of_whose_members_load_fails_to_load() -> None:
    a = FlakyLLM(name="openai")
    b = FlakyLLM(name="llama")
    a.load_error = ProviderError("no key", category="auth")
    b.load_error = ProviderError("model missing")
    chain = FallbackLLM([a, b], COOL)

    async def main() -> None:
        with pytest.raises(ProviderError, match="no llm of the chain openai,llama could be loaded"):
            await chain.load()
        await chain.aclose()

    run_virtual(main())


def test_tts_falls_back_and_speaks_at_the_chains_rate() -> None:
    class Broken(FakeTTS):
        async def synthesize(self, text: str) -> AsyncGenerator[Samples, None]:
            raise ProviderError("socket refused", category="connectivity")
            yield np.zeros(1, np.float32)  # pragma: no cover

    local = FakeTTS()
    local.sample_rate = 16000
    chain = FallbackTTS([Broken(), local], COOL)

    async def main() -> None:
        incidents: list[Incident] = []
        with reporting(incidents.append):
            audio = np.concatenate([a async for a in chain.synthesize("two words")])
        assert chain.sample_rate == 24000 and len(audio) == pytest.approx(0.5 * 24000, abs=2)
        assert [i.kind for i in incidents] == ["error", "fallback"] and local.texts == ["two words"]
        await chain.aclose()

    run_virtual(main())


def test_stt_fails_over_mid_turn_without_losing_audio_and_returns_between_turns() -> None:
    class Dropping(FakeSTT):
        fail = False

        def stream(self, on_partial=None):  # type: ignore[no-untyped-def]
            s = super().stream(on_partial)
            push = s.push

            async def flaky(audio: Samples) -> None:
                if self.fail:
                    raise ProviderError("socket dropped", category="connectivity")
                await push(audio)

            s.push = flaky  # type: ignore[method-assign]
            return s

    primary = Dropping(["cloud one", "(the probe's)", "cloud three"])
    local = FakeSTT(["local two"])
    primary.name, local.name = "deepgram", "whisper"
    chain = FallbackSTT([primary, local], COOL)
    a, b, c = (np.full(160, v, np.float32) for v in (0.1, 0.2, 0.3))

    async def main() -> None:
        s = chain.stream()
        await s.push(a)
        assert (await s.finalize()).text == "cloud one"
        s.keywords(["voxloop"])
        await s.push(b)
        s.speech_paused()
        primary.fail = True
        await s.push(c)  # the primary's socket drops mid-turn: the local one hears all of it
        assert local.streams[0].pushed.tolist() == np.concatenate([b, c]).tolist()
        assert local.streams[0].log == ["keywords: voxloop", "paused"]
        assert (await s.finalize()).text == "local two"
        primary.fail = False
        await asyncio_sleep(COOL.cooldown_s)  # the probe finds the primary back
        await s.push(a)  # the next turn is the primary's again
        assert (await s.finalize()).text == "cloud three"
        assert local.streams[0].closed and len(primary.streams) == 3  # the first, the probe's, this one
        await s.aclose()
        await chain.aclose()

    run_virtual(main())


def test_registry_builds_a_chain_from_a_comma_list() -> None:
    config = AgentConfig()
    config.llm.provider = "openai, llama"
    llm = registry.create_llm(config)
    assert isinstance(llm, FallbackLLM) and llm.name == "openai,llama"
    assert [type(m).__name__ for m in llm.chain.members] == ["OpenAILLM", "LlamaLLM"]
    config.tts.provider = "piper,hibari"
    assert isinstance(registry.create_tts(config), FallbackTTS)
    for bad in ("llama,llama", "openai,nope", ","):
        config.llm.provider = bad
        with pytest.raises(UnknownProvider):
            registry.create_llm(config)
