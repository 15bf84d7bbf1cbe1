"""The Deepgram recogniser against a scripted Deepgram on loopback (tests/deepgram_peer.py): the
wire protocol, and each recovery mechanism with a test that fails without it.

Audio is coded words (`words_audio`): the fake hears word k exactly, so a lost or doubled word
shows in the final text. Nothing sleeps to wait: waits are on what the fake has seen, with a
timeout that only guards against a hang.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import numpy as np
import pytest

from conftest import run_guarded
from deepgram_peer import GAP, RATE, FakeDeepgram, ListenPlan, silent_server, words_audio
from voxloop.config import DeepgramConfig, RetryConfig, STTConfig
from voxloop.errors import ProviderError
from voxloop.providers.recovery import Incident, reporting
from voxloop.providers.stt.deepgram import DeepgramStream, DeepgramSTT

T = TypeVar("T")
KEY = "dg-secret-key-0123456789"


run = partial(run_guarded, hang_s=60.0)  # only against a hang


def stt_for(url: str, **dg: Any) -> DeepgramSTT:
    retry = dg.pop("retry", RetryConfig(max_retries=3, backoff_s=0.01, backoff_max_s=0.05))
    cfg = DeepgramConfig(base_url=url, api_key=KEY, retry=retry, **dg)
    return DeepgramSTT(STTConfig(provider="deepgram", deepgram=cfg, keywords=["voxloop"]))


def words(n: int, first: int = 1) -> list[int]:
    return list(range(first, first + n))


def text_of(ks: list[int]) -> str:
    return " ".join(f"w{k}" for k in ks)


async def push_words(stream: DeepgramStream, ks: list[int], frame: int = 512) -> None:
    audio = words_audio(ks)
    for i in range(0, len(audio), frame):
        await stream.push(audio[i : i + frame])


async def until(s: DeepgramStream, check: Callable[[], bool]) -> None:
    """Wait until `check()` holds, re-checked whenever the stream's link changes."""
    while not check():
        s.link.changed.clear()
        await s.link.changed.wait()


async def with_fake(
    plans: list[ListenPlan], body: Callable[[FakeDeepgram], Awaitable[T]]
) -> tuple[T, list[Incident]]:
    incidents: list[Incident] = []
    async with FakeDeepgram(listen=plans).running() as fake:
        with reporting(incidents.append):
            return await body(fake), incidents


# -- the wire protocol ---------------------------------------------------------------------------------
def test_a_turn_over_the_wire_query_auth_partials_finalize_and_close() -> None:
    partials: list[str] = []

    async def body(fake: FakeDeepgram) -> tuple[str, list[str]]:
        stt = stt_for(fake.url)
        await stt.load()
        s = stt.stream(lambda tr: partials.append(tr.text))
        s.keywords(["Nova", "Aura"])
        await push_words(s, words(4))
        final = await s.finalize()
        await s.aclose()
        await fake.until(lambda: "CloseStream" in fake.of("/v1/listen")[0].types(), "CloseStream")
        return final.text, fake.of("/v1/listen")[0].types()

    (text, types), _ = run(with_fake([], body))
    assert text == text_of(words(4))
    assert partials and partials[-1].startswith("w1")
    assert types[-2:] == ["Finalize", "CloseStream"]


def test_the_query_and_the_key_header_are_deepgrams() -> None:
    async def body(fake: FakeDeepgram) -> Any:
        s = stt_for(fake.url).stream()
        s.keywords(["Nova 3", "Aura"])
        await push_words(s, words(1))
        await s.finalize()
        await s.aclose()
        return fake.of("/v1/listen")[0]

    seen, _ = run(with_fake([], body))
    q = seen.query
    for k, v in [
        ("model", "nova-3"),
        ("encoding", "linear16"),
        ("sample_rate", "16000"),
        ("channels", "1"),
        ("interim_results", "true"),
        ("endpointing", "300"),
        ("utterance_end_ms", "1000"),
        ("vad_events", "true"),
        ("smart_format", "true"),
    ]:
        assert (k, v) in q
    assert [v for k, v in q if k == "keyterm"] == ["voxloop", "Nova 3", "Aura"]
    assert seen.headers["authorization"] == f"Token {KEY}"


def test_keepalive_while_the_user_is_silent() -> None:
    async def body(fake: FakeDeepgram) -> list[str]:
        s = stt_for(fake.url, keepalive_s=0.05).stream()
        await push_words(s, words(2))
        assert (await s.finalize()).text == text_of(words(2))
        await fake.until(lambda: "KeepAlive" in fake.of("/v1/listen")[0].types(), "a KeepAlive")
        await s.aclose()
        return fake.of("/v1/listen")[0].types()

    types, _ = run(with_fake([], body))
    assert types.index("KeepAlive") > types.index("Finalize")


def test_finals_from_deepgrams_endpointing_and_turns_in_a_row() -> None:
    async def body(fake: FakeDeepgram) -> list[str]:
        s = stt_for(fake.url).stream()
        texts = []
        for turn in range(3):
            await push_words(s, words(5, first=10 * turn + 1))
            texts.append((await s.finalize()).text)
        await s.aclose()
        return texts

    texts, _ = run(with_fake([ListenPlan(final_every=2)], body))
    assert texts == [text_of(words(5, first=10 * t + 1)) for t in range(3)]


# -- recovery ----------------------------------------------------------------------------------------
def test_a_dropped_socket_is_reopened_and_the_turns_audio_replayed_no_word_lost() -> None:
    async def body(fake: FakeDeepgram) -> tuple[str, DeepgramSTT]:
        stt = stt_for(fake.url)
        s = stt.stream()
        await push_words(s, words(4))
        await fake.until(lambda: len(fake.of("/v1/listen")) == 1 and fake.of("/v1/listen")[0].words, "words")
        await push_words(s, words(8, first=5))
        text = (await s.finalize()).text
        await s.aclose()
        return text, stt

    (text, stt), incidents = run(with_fake([ListenPlan(drop_after_words=6)], body))
    assert text == text_of(words(12))  # every word, once
    assert stt.counters["reconnect"] == 1 and stt.counters["replay"] == 1
    assert any(i.kind == "retry" and i.stage == "stt" for i in incidents)


def test_a_drop_after_a_final_replays_only_what_no_final_covered() -> None:
    async def body(fake: FakeDeepgram) -> tuple[str, list[Any]]:
        s = stt_for(fake.url).stream()
        await push_words(s, words(10))
        text = (await s.finalize()).text
        await s.aclose()
        return text, fake.of("/v1/listen")

    (text, seen), _ = run(with_fake([ListenPlan(final_every=4, drop_after_words=6)], body))
    assert text == text_of(words(10))
    assert seen[1].words[0] == "w5"  # the new socket starts after the final that covered w1-w4


def test_handshake_5xx_is_retried_with_backoff_then_the_stream_goes_on() -> None:
    async def body(fake: FakeDeepgram) -> str:
        s = stt_for(fake.url).stream()
        await push_words(s, words(3))
        text = (await s.finalize()).text
        await s.aclose()
        return text

    plans = [ListenPlan(refuse=503), ListenPlan(refuse=502)]
    text, incidents = run(with_fake(plans, body))
    assert text == text_of(words(3))
    retries = [i for i in incidents if i.kind == "retry"]
    assert [i.category for i in retries] == ["server", "server"]
    assert [i.attempt for i in retries] == [1, 2]
    assert 0.005 <= retries[0].delay_s <= 0.01 and 0.01 <= retries[1].delay_s <= 0.02  # jittered, doubling


def test_retries_are_bounded_and_the_failure_is_raised_as_data() -> None:
    async def body(fake: FakeDeepgram) -> tuple[ProviderError, int]:
        s = stt_for(fake.url, retry=RetryConfig(max_retries=2, backoff_s=0.01)).stream()
        await push_words(s, words(2))
        with pytest.raises(ProviderError) as e:
            await s.finalize()
        await s.aclose()
        return e.value, len(fake.of("/v1/listen"))

    (error, connections), incidents = run(with_fake([ListenPlan(refuse=503)] * 10, body))
    assert connections == 3  # the first try and two retries
    assert error.category == "server" and error.provider == "deepgram" and error.status == 503
    assert [i.kind for i in incidents].count("error") == 1


def test_429_waits_as_retry_after_says() -> None:
    async def body(fake: FakeDeepgram) -> str:
        s = stt_for(fake.url).stream()
        await push_words(s, words(2))
        text = (await s.finalize()).text
        await s.aclose()
        return text

    text, incidents = run(with_fake([ListenPlan(refuse=429, retry_after="0.03")], body))
    assert text == text_of(words(2))
    (retry,) = [i for i in incidents if i.kind == "retry"]
    assert retry.category == "rate_limit" and retry.delay_s == pytest.approx(0.03)


def test_a_retry_after_longer_than_allowed_is_not_waited_for() -> None:
    async def body(fake: FakeDeepgram) -> ProviderError:
        s = stt_for(fake.url).stream()
        await push_words(s, words(2))
        with pytest.raises(ProviderError) as e:
            await s.finalize()
        await s.aclose()
        return e.value

    error, incidents = run(with_fake([ListenPlan(refuse=429, retry_after="3600")], body))
    assert error.category == "rate_limit" and error.retry_after == 3600
    assert not [i for i in incidents if i.kind == "retry"]


def test_401_is_not_retried_and_the_key_appears_nowhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def body(fake: FakeDeepgram) -> tuple[ProviderError, int]:
        s = stt_for(fake.url).stream()
        await push_words(s, words(2))
        with pytest.raises(ProviderError) as e:
            await s.finalize()
        await s.aclose()
        return e.value, len(fake.of("/v1/listen"))

    (error, connections), incidents = run(with_fake([ListenPlan(refuse=401)], body))
    assert connections == 1 and error.category == "auth" and not error.retryable
    shown = [str(error), repr(error), caplog.text, *(repr(i) for i in incidents)]
    assert all(KEY not in s for s in shown)
    assert KEY not in repr(stt_for("http://x").config)


def test_a_stalled_finalize_is_replayed_on_a_new_socket() -> None:
    async def body(fake: FakeDeepgram) -> tuple[str, DeepgramSTT]:
        stt = stt_for(fake.url, final_timeout_s=0.3)
        s = stt.stream()
        await s.push(words_audio(words(5))[:-GAP])  # w5 has no silence after it: only a final has it
        text = (await s.finalize()).text
        await s.aclose()
        return text, stt

    (text, stt), _ = run(with_fake([ListenPlan(answer_finalize=False)], body))
    assert text == text_of(words(5))
    assert stt.counters["stall"] == 1 and stt.counters["replay"] == 1


def test_no_final_at_all_falls_back_to_the_last_interim() -> None:
    async def body(fake: FakeDeepgram) -> tuple[str, DeepgramSTT, str]:
        stt = stt_for(fake.url, final_timeout_s=0.2)
        s = stt.stream()
        await push_words(s, words(3))
        first = (await s.finalize()).text
        await push_words(s, words(2, first=7))  # the next turn: on a fresh socket, which answers
        second = (await s.finalize()).text
        await s.aclose()
        return first, stt, second

    plans = [ListenPlan(answer_finalize=False), ListenPlan(answer_finalize=False)]
    (first, stt, second), incidents = run(with_fake(plans, body))
    assert first == text_of(words(3))  # the interim: all its words were complete
    assert stt.counters["interim_fallback"] == 1
    assert any(i.kind == "error" and i.category == "timeout" for i in incidents)
    assert second == text_of([7, 8])


def test_a_send_that_blocks_is_detected_and_the_audio_goes_out_on_a_new_socket() -> None:
    async def body(fake: FakeDeepgram) -> tuple[str, DeepgramSTT]:
        stt = stt_for(fake.url, send_timeout_s=0.2, max_replay_s=3600.0, stall_timeout_s=0)
        s = stt.stream()
        await push_words(s, words(3))
        await s.push(np.zeros(RATE * 300, np.float32))  # more than the socket buffers hold (~3.6 MB)
        await until(s, lambda: stt.counters["reconnect"] > 0)
        await push_words(s, [4, 5])
        text = (await s.finalize()).text
        await s.aclose()
        return text, stt

    (text, stt), incidents = run(with_fake([ListenPlan(deaf=True)], body))
    assert stt.counters["reconnect"] == 1
    assert any(i.kind == "retry" and "a send blocked" in i.message for i in incidents)
    assert text == text_of(words(5))


def test_a_handshake_that_never_answers_passes_its_deadline() -> None:
    async def go() -> ProviderError:
        async with silent_server() as url:
            s = stt_for(url, connect_timeout_s=0.1, retry=RetryConfig(max_retries=1, backoff_s=0.01)).stream()
            await push_words(s, words(1))
            with pytest.raises(ProviderError) as e:
                await s.finalize()
            await s.aclose()
            return e.value

    error = run(go())
    assert error.category == "timeout"
