"""A conversation through provider trouble, in virtual time: a language model retried says one
filler and goes on; a retrying provider is not abandoned by the watchdog; a fallback chain moves
the conversation to the next member mid-call and back after recovery. Every failure is an error
event with stage, provider and category, and each turn counts its retries, fallbacks and fillers
(the columns of turns.jsonl)."""

from __future__ import annotations

from conftest import config, conversation, make_providers, run_virtual
from fakes import FakeLLM, FakeSTT, FakeTTS
from fakes.flaky import FlakyLLM, RetryingLLM
from voxloop.agent import events as ev
from voxloop.config import FallbackConfig
from voxloop.errors import ProviderError
from voxloop.providers.fallback import FallbackLLM

FILLER = "Give me a second."


def test_a_retried_llm_says_one_filler_and_the_turn_counts_its_retries() -> None:
    llm = RetryingLLM(default=("Sure", ".") * 3, failures=3, backoff_s=0.4, name="openai")
    tts = FakeTTS()

    async def main() -> None:
        async with conversation(make_providers(stt=FakeSTT(["hello"]), llm=llm, tts=tts)) as c:
            await c.turn(1.0)
            assert tts.texts[0] == FILLER and tts.texts.count(FILLER) == 1  # once, for 3 retries
            assert "One moment." not in tts.texts  # one filler per reply
            errors = c.of(ev.ErrorOccurred)
            assert [(e.stage, e.provider, e.category, e.code, e.turn_id) for e in errors] == [
                ("llm", "openai", "server", "llm_server", 1)
            ] * 3
            assert [r.attempt for r in c.of(ev.ProviderRetry)] == [1, 2, 3]
            rec = c.session.records[0].to_dict()
            assert (rec["retries"], rec["fallbacks"], rec["fillers"]) == (3, 0, 1)
            assert rec["agent_text"].startswith(FILLER)
            assert [e["type"] for e in rec["events"]].count("provider_retry") == 3

    run_virtual(main())


def test_a_provider_retrying_past_the_stage_timeout_is_not_abandoned() -> None:
    # 3 retries 5 s apart: 15 s without a token, past the watchdog's 12 s, but never 12 s silent
    llm = RetryingLLM(failures=3, backoff_s=5.0, name="openai")

    async def main() -> None:
        async with conversation(make_providers(stt=FakeSTT(["hello"]), llm=llm)) as c:
            await c.turn(1.0, max_s=40)
            assert not [e for e in c.of(ev.ErrorOccurred) if e.code == "stage_timeout"]
            assert c.of(ev.PlaybackFinished) and c.session.records[0].retries == 3

    run_virtual(main())


def test_fallback_moves_the_conversation_to_the_local_model_and_back_after_recovery() -> None:
    cloud = FlakyLLM(default=("From", " the", " cloud", "."), name="openai")
    local = FakeLLM(default=("From", " here", "."), name="llama")
    chain = FallbackLLM([cloud, local], FallbackConfig(cooldown_s=3.0))
    stt = FakeSTT(["one", "two", "three", "four"])
    tts = FakeTTS()

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=chain, tts=tts), config()) as c:
            await c.turn(1.0)
            cloud.down = ProviderError("openai at api: HTTP 503", category="server")
            await c.turn(1.0)  # mid-call: the same turn is answered by the local model
            await c.turn(1.0)  # and the conversation stays there while the cloud is down
            cloud.down = None
            await c.mic.silence(4.0)  # the cool-down passes; the probe finds the cloud back
            await c.turn(1.0)
            texts = [r.agent_text for r in c.session.records]
            assert texts == ["From the cloud.", "From here.", "From here.", "From the cloud."]
            assert [r.fallbacks for r in c.session.records] == [0, 1, 0, 0]
            (moved,) = c.of(ev.ProviderFallback)
            assert (moved.stage, moved.provider, moved.to_provider, moved.category, moved.turn_id) == (
                "llm",
                "openai",
                "llama",
                "server",
                2,
            )
            (error,) = c.of(ev.ErrorOccurred)
            assert (error.provider, error.category, error.turn_id) == ("openai", "server", 2)
            assert chain.chain.incidents[-1].kind == "recovered"

    run_virtual(main())


def test_the_turn_record_has_the_recovery_columns() -> None:
    async def main() -> None:
        async with conversation(make_providers(stt=FakeSTT(["hi"]))) as c:
            await c.turn(1.0)
            rec = c.session.records[0].to_dict()
            assert {k: rec[k] for k in ("retries", "fallbacks", "fillers")} == {
                "retries": 0,
                "fallbacks": 0,
                "fillers": 0,
            }

    run_virtual(main())


def test_the_slow_first_token_filler_is_counted() -> None:
    llm = FakeLLM(first_delay=3.0)

    async def main() -> None:
        async with conversation(make_providers(stt=FakeSTT(["hi"]), llm=llm)) as c:
            await c.turn(1.0, max_s=20)
            rec = c.session.records[0]
            assert rec.fillers == 1
            # v2v_ms times the filler ("One moment." after 2.5 s); v2v_answer_ms the answer (3 s on)
            assert rec.v2v_ms is not None and rec.v2v_answer_ms is not None
            assert rec.v2v_ms < 3000 < rec.v2v_answer_ms

    run_virtual(main())
