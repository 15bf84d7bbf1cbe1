"""Deepgram's fast recovery against the scripted Deepgram on loopback (tests/deepgram_peer.py):
the recogniser finds a socket that stopped answering while the user speaks (no need to wait for
the turn's end), and the voice races REST against a socket that gives no first audio. The slow
deadlines are set past the hang guard, so each test finishes only through its mechanism; waits
are on what the fake or the provider saw, and nothing is timed."""

from __future__ import annotations

import asyncio
import socket
from functools import partial
from typing import Any

import numpy as np
import pytest

from conftest import run_guarded
from deepgram_peer import FakeDeepgram, ListenPlan, SpeakPlan, push_words, speech_for
from voxloop.config import DeepgramConfig, RetryConfig, STTConfig, TTSConfig
from voxloop.errors import ProviderError
from voxloop.providers.recovery import Incident, reporting
from voxloop.providers.stt.deepgram import DeepgramSTT
from voxloop.providers.tts.deepgram import DeepgramTTS

NEVER = 120.0  # past the guard
RETRY = RetryConfig(max_retries=3, backoff_s=0.01, backoff_max_s=0.05)
TEXT = "Hello there, this is the voice speaking a whole sentence."


run = partial(run_guarded, hang_s=60.0)  # only against a hang


def config(url: str, **dg: Any) -> DeepgramConfig:
    return DeepgramConfig(base_url=url, api_key="k", retry=RETRY, **dg)


def test_a_socket_that_stops_answering_mid_speech_is_replaced_before_the_turn_ends() -> None:
    async def main() -> tuple[str, DeepgramSTT, list[Incident]]:
        incidents: list[Incident] = []
        async with FakeDeepgram(listen=[ListenPlan(mute_after_words=3)]).running() as fake:
            cfg = config(fake.url, stall_timeout_s=0.2, final_timeout_s=NEVER, connect_timeout_s=5.0)
            stt = DeepgramSTT(STTConfig(provider="deepgram", deepgram=cfg))
            s = stt.stream()
            with reporting(incidents.append):
                await push_words(s, list(range(1, 7)))  # the user speaks on; no Finalize yet
                await fake.until(lambda: len(fake.of("/v1/listen")) == 2, "a new socket mid-speech")
                await push_words(s, [7, 8])
                text = (await s.finalize()).text
            await s.aclose()
        return text, stt, incidents

    text, stt, incidents = run(main())
    assert text == " ".join(f"w{k}" for k in range(1, 9))  # replayed: no word lost, none doubled
    assert stt.counters["stall_speech"] == 1 and stt.counters["replay"] == 1
    assert any(i.kind == "retry" and "while speech was sent" in i.message for i in incidents)


def test_a_pause_stops_the_stall_clock() -> None:
    async def main() -> float:
        async with FakeDeepgram(listen=[ListenPlan(mute_after_words=1)]).running() as fake:
            stt = DeepgramSTT(STTConfig(provider="deepgram", deepgram=config(fake.url, stall_timeout_s=0.2)))
            s = stt.stream()
            await push_words(s, [1, 2])
            await fake.until(lambda: fake.of("/v1/listen") and fake.of("/v1/listen")[0].words, "words")
            s.speech_paused()
            waiting = s.link._stall_in(asyncio.get_running_loop().time())
            s.speech_resumed()
            await s.aclose()
            return waiting

    assert run(main()) == float("inf")


def test_a_socket_without_first_audio_is_raced_by_rest_which_serves() -> None:
    async def main() -> tuple[np.ndarray, DeepgramTTS, list[Incident], int]:
        incidents: list[Incident] = []
        async with FakeDeepgram(speak=[SpeakPlan(chunks_then_stall=0)]).running() as fake:
            cfg = config(fake.url, first_byte_timeout_s=NEVER, tts_hedge_after_s=0.05)
            tts = DeepgramTTS(TTSConfig(provider="deepgram", deepgram=cfg))
            with reporting(incidents.append):
                chunks = [c async for c in tts.synthesize(TEXT)]
            posts = len(fake.of("POST /v1/speak"))
            await tts.aclose()
        audio = np.round(np.concatenate(chunks) * 32768.0).astype("<i2")
        return audio, tts, incidents, posts

    audio, tts, incidents, posts = run(main())
    assert np.array_equal(audio, speech_for(TEXT))  # the whole audio, once
    assert tts.counters["hedge"] == 1 and tts.counters["hedge_won"] == 1 and posts == 1
    assert incidents == [] and tts.counters["cleared"] == 1  # the stalled socket was cleared


def test_in_the_rest_first_time_a_stalled_rest_request_is_raced_by_the_socket() -> None:
    """After REST won a race, REST goes first for a while; a REST request that then gives no
    audio is raced by the socket as a stalled socket is by REST (not left to its read deadline:
    NEVER here), and the socket's win ends the REST-first time."""

    async def main() -> tuple[np.ndarray, DeepgramTTS, list[Incident], float]:
        incidents: list[Incident] = []
        async with FakeDeepgram(rest=[SpeakPlan(chunks_then_stall=0)]).running() as fake:
            cfg = config(fake.url, first_byte_timeout_s=NEVER, tts_hedge_after_s=0.05)
            tts = DeepgramTTS(TTSConfig(provider="deepgram", deepgram=cfg))
            tts._rest_until = asyncio.get_running_loop().time() + NEVER  # as after a REST win
            with reporting(incidents.append):
                chunks = [c async for c in tts.synthesize(TEXT)]
            assert len(fake.of("POST /v1/speak")) == 1 and len(fake.of("/v1/speak")) == 1
            rest_until = tts._rest_until
            await tts.aclose()
        audio = np.round(np.concatenate(chunks) * 32768.0).astype("<i2")
        return audio, tts, incidents, rest_until

    audio, tts, incidents, rest_until = run(main())
    assert np.array_equal(audio, speech_for(TEXT))  # the whole audio, once
    assert tts.counters["hedge"] == 1 and tts.counters["hedge_socket_won"] == 1
    assert tts.counters["hedge_won"] == 0 and rest_until == 0.0 and incidents == []
    assert len(tts.first_audio_s["socket"]) == 1 and not tts.first_audio_s["rest"]


def refused_url() -> str:
    """A loopback port nobody listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("has_fallback", [True, False])
def test_an_unreachable_recogniser_is_given_up_on_at_once_in_a_chain(has_fallback: bool) -> None:
    async def main() -> tuple[list[Incident], ProviderError]:
        stt = DeepgramSTT(STTConfig(provider="deepgram", deepgram=config(refused_url())))
        stt.has_fallback = has_fallback  # what a chain sets on every member but its last
        s = stt.stream()
        incidents: list[Incident] = []
        with reporting(incidents.append):
            await push_words(s, [1, 2])
            with pytest.raises(ProviderError) as e:
                await s.finalize()
        await s.aclose()
        return incidents, e.value

    incidents, error = run(main())
    assert error.unreachable and error.category == "connectivity"
    delays = [i.delay_s for i in incidents if i.kind == "retry"]
    assert delays == [0.0] if has_fallback else len(delays) == RETRY.max_retries


@pytest.mark.parametrize("has_fallback", [True, False])
def test_an_unreachable_voice_is_given_up_on_after_both_paths_in_a_chain(has_fallback: bool) -> None:
    async def main() -> list[Incident]:
        tts = DeepgramTTS(TTSConfig(provider="deepgram", deepgram=config(refused_url())))
        tts.has_fallback = has_fallback
        incidents: list[Incident] = []
        with reporting(incidents.append), pytest.raises(ProviderError) as e:
            _ = [c async for c in tts.synthesize(TEXT)]
        await tts.aclose()
        assert e.value.unreachable
        return incidents

    retries = [i for i in run(main()) if i.kind == "retry"]
    assert len(retries) == (1 if has_fallback else RETRY.max_retries)  # the socket, then REST once
