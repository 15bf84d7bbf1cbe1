"""The Deepgram voice against a scripted Deepgram on loopback (tests/deepgram_peer.py): the wire
protocol, sockets reused and cleared, and each recovery mechanism with a test that fails without it.

The fake speaks a ramp (`speech_for`), so the audio a request yields can be compared sample for
sample with what one uninterrupted request would have given: a retry that repeated or skipped
audio shows. Nothing sleeps to wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import numpy as np
import pytest

from conftest import run_guarded
from deepgram_peer import FakeDeepgram, SpeakPlan, speech_for
from voxloop.config import DeepgramConfig, RetryConfig, TTSConfig
from voxloop.errors import ProviderError
from voxloop.providers.recovery import Incident, reporting
from voxloop.providers.tts.deepgram import DeepgramTTS

T = TypeVar("T")
KEY = "dg-secret-key-9876543210"
TEXT = "Hello there, this is the voice speaking a whole sentence."


run = partial(run_guarded, hang_s=60.0)  # only against a hang


def tts_for(url: str, **dg: Any) -> DeepgramTTS:
    retry = dg.pop("retry", RetryConfig(max_retries=3, backoff_s=0.01, backoff_max_s=0.05))
    cfg = DeepgramConfig(base_url=url, api_key=KEY, retry=retry, first_byte_timeout_s=0.3, **dg)
    return DeepgramTTS(TTSConfig(provider="deepgram", deepgram=cfg))


async def spoken(tts: DeepgramTTS, text: str = TEXT) -> np.ndarray:
    chunks = [c async for c in tts.synthesize(text)]
    return to_int16(np.concatenate(chunks)) if chunks else np.zeros(0, "<i2")


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.round(x * 32768.0).astype("<i2")


async def with_fake(
    body: Callable[[FakeDeepgram, DeepgramTTS], Awaitable[T]],
    speak: list[SpeakPlan] | None = None,
    rest: list[SpeakPlan] | None = None,
    **dg: Any,
) -> tuple[T, list[Incident]]:
    incidents: list[Incident] = []
    async with FakeDeepgram(speak=speak, rest=rest).running() as fake:
        tts = tts_for(fake.url, **dg)
        try:
            with reporting(incidents.append):
                return await body(fake, tts), incidents
        finally:
            await tts.aclose()


# -- the wire protocol ---------------------------------------------------------------------------------
def test_speak_and_flush_give_the_whole_audio_at_the_configured_rate() -> None:
    async def body(fake: FakeDeepgram, tts: DeepgramTTS) -> tuple[np.ndarray, Any]:
        return await spoken(tts), fake.of("/v1/speak")[0]

    (audio, seen), _ = run(with_fake(body))
    assert np.array_equal(audio, speech_for(TEXT, 24000))
    assert ("model", "aura-2-thalia-en") in seen.query and ("encoding", "linear16") in seen.query
    assert ("sample_rate", "24000") in seen.query
    assert seen.headers["authorization"] == f"Token {KEY}"
    assert seen.types() == ["Speak", "Flush"] and seen.texts[0]["text"] == TEXT


def test_one_socket_serves_requests_one_after_another() -> None:
    async def body(fake: FakeDeepgram, tts: DeepgramTTS) -> list[Any]:
        for text in ("One.", "Two, three.", "Four."):
            assert np.array_equal(await spoken(tts, text), speech_for(text))
        return fake.of("/v1/speak")

    seen, _ = run(with_fake(body))
    assert len(seen) == 1 and seen[0].types() == ["Speak", "Flush"] * 3


def test_a_request_closed_early_clears_the_socket_which_then_serves_the_next() -> None:
    async def body(fake: FakeDeepgram, tts: DeepgramTTS) -> list[Any]:
        gen = tts.synthesize(TEXT)
        await anext(gen)  # the first chunk: then the user barges in
        await gen.aclose()
        await asyncio.gather(*tts._tasks)  # the Clear, and the wait for Cleared
        assert np.array_equal(await spoken(tts, "Next."), speech_for("Next."))
        return fake.of("/v1/speak")

    seen, _ = run(with_fake(body))
    assert len(seen) == 1 and seen[0].types() == ["Speak", "Flush", "Clear", "Speak", "Flush"]


# -- recovery ------------------------------------------------------------------------------------------
def test_a_stall_after_flush_goes_over_rest_and_resumes_where_the_audio_stopped() -> None:
    async def body(fake: FakeDeepgram, tts: DeepgramTTS) -> np.ndarray:
        return await spoken(tts)

    audio, incidents = run(with_fake(body, speak=[SpeakPlan(chunks_then_stall=2)]))
    assert np.array_equal(audio, speech_for(TEXT))  # nothing repeated, nothing missing
    (retry,) = [i for i in incidents if i.kind == "retry"]
    assert retry.stage == "tts" and retry.category == "timeout" and "over REST" in retry.message


def test_no_audio_at_all_after_flush_is_a_stall_too() -> None:
    async def body(fake: FakeDeepgram, tts: DeepgramTTS) -> tuple[np.ndarray, DeepgramTTS]:
        return await spoken(tts), tts

    (audio, tts), _ = run(with_fake(body, speak=[SpeakPlan(chunks_then_stall=0)]))
    assert np.array_equal(audio, speech_for(TEXT))
    assert tts.counters["stall"] == 1 and tts.counters["rest"] == 1


def test_a_socket_dropped_mid_audio_goes_over_rest() -> None:
    async def body(fake: FakeDeepgram, tts: DeepgramTTS) -> np.ndarray:
        return await spoken(tts)

    audio, incidents = run(with_fake(body, speak=[SpeakPlan(chunks_then_drop=1)]))
    assert np.array_equal(audio, speech_for(TEXT))
    assert [i.category for i in incidents if i.kind == "retry"] == ["connectivity"]


def test_after_a_socket_failure_the_next_requests_go_over_rest_first() -> None:
    async def body(fake: FakeDeepgram, tts: DeepgramTTS) -> list[str]:
        await spoken(tts)
        await spoken(tts, "Again.")
        return [s.path for s in fake.seen]

    paths, _ = run(with_fake(body, speak=[SpeakPlan(refuse=503)]))
    assert paths == ["/v1/speak", "POST /v1/speak", "POST /v1/speak"]


def test_429_on_rest_waits_as_retry_after_says_then_the_socket_is_tried_again() -> None:
    async def body(fake: FakeDeepgram, tts: DeepgramTTS) -> np.ndarray:
        return await spoken(tts)

    speak = [SpeakPlan(refuse=503)]
    rest = [SpeakPlan(refuse=429, retry_after="0.04")]
    audio, incidents = run(with_fake(body, speak=speak, rest=rest))
    assert np.array_equal(audio, speech_for(TEXT))
    retries = [i for i in incidents if i.kind == "retry"]
    assert [(i.category, i.delay_s) for i in retries] == [
        ("server", 0.0),
        ("rate_limit", pytest.approx(0.04)),
    ]


def test_retries_are_bounded_and_the_failure_is_raised_as_data() -> None:
    async def body(fake: FakeDeepgram, tts: DeepgramTTS) -> tuple[ProviderError, int]:
        with pytest.raises(ProviderError) as e:
            await spoken(tts)
        return e.value, len(fake.seen)

    fail = [SpeakPlan(refuse=503)] * 10
    (error, tries), incidents = run(with_fake(body, speak=fail, rest=fail, retry=RetryConfig(max_retries=2)))
    assert tries == 3 and error.category == "server" and error.provider == "deepgram"
    assert [i.kind for i in incidents] == ["retry", "retry", "error"]


def test_401_is_not_retried_and_the_key_appears_nowhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def body(fake: FakeDeepgram, tts: DeepgramTTS) -> tuple[ProviderError, int]:
        with pytest.raises(ProviderError) as e:
            await spoken(tts)
        return e.value, len(fake.seen)

    (error, tries), incidents = run(with_fake(body, speak=[SpeakPlan(refuse=401)]))
    assert tries == 1 and error.category == "auth"
    assert all(KEY not in s for s in [str(error), caplog.text, *(repr(i) for i in incidents)])


def test_a_stalled_rest_answer_passes_its_deadline_and_the_socket_is_tried_again() -> None:
    async def body(fake: FakeDeepgram, tts: DeepgramTTS) -> np.ndarray:
        return await spoken(tts)

    speak = [SpeakPlan(chunks_then_drop=0)]
    rest = [SpeakPlan(chunks_then_stall=0)]
    audio, incidents = run(with_fake(body, speak=speak, rest=rest))
    assert np.array_equal(audio, speech_for(TEXT))
    assert [i.category for i in incidents if i.kind == "retry"] == ["connectivity", "timeout"]


def test_closing_the_provider_ends_its_sockets() -> None:
    async def body(fake: FakeDeepgram, tts: DeepgramTTS) -> None:
        await spoken(tts)
        await tts.aclose()
        with contextlib.suppress(TimeoutError):
            await fake.until(lambda: False, "nothing", within=0.0)
        assert not tts._idle

    run(with_fake(body))
