"""The recogniser's hedge against the scripted Deepgram on loopback (tests/deepgram_peer.py): a
socket that answers nothing to the user's speech is raced by a second one replaying the audio not
yet confirmed; the first to answer serves. The deadlines a test does not exercise are set past
the hang guard, so each test finishes only through its mechanism; waits are on what the fake or
the provider saw, and nothing is timed."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from conftest import run_guarded
from deepgram_peer import FakeDeepgram, ListenPlan, push_words
from voxloop.config import DeepgramConfig, RetryConfig, STTConfig
from voxloop.providers.recovery import Incident, reporting
from voxloop.providers.stt.deepgram import DeepgramSTT

NEVER = 120.0  # past the guard
RETRY = RetryConfig(max_retries=3, backoff_s=0.01, backoff_max_s=0.05)
LISTEN = "/v1/listen"


run = partial(run_guarded, hang_s=60.0)  # only against a hang


def stt_for(url: str, **dg: Any) -> DeepgramSTT:
    cfg = DeepgramConfig(base_url=url, api_key="k", retry=RETRY, final_timeout_s=NEVER, **dg)
    return DeepgramSTT(STTConfig(provider="deepgram", deepgram=cfg))


def words(n: int) -> str:
    return " ".join(f"w{k}" for k in range(1, n + 1))


def test_a_silent_socket_is_hedged_and_the_second_socket_serves_losing_no_word() -> None:
    async def main() -> tuple[str, DeepgramSTT, list[Incident], FakeDeepgram]:
        incidents: list[Incident] = []
        async with FakeDeepgram(listen=[ListenPlan(mute_after_words=3)]).running() as fake:
            stt = stt_for(fake.url, stall_timeout_s=NEVER, stall_hedge_after_s=0.1)
            s = stt.stream()
            with reporting(incidents.append):
                await push_words(s, list(range(1, 7)))  # the user speaks on; no Finalize yet
                await fake.until(lambda: len(fake.of(LISTEN)) == 2, "a second socket mid-speech")
                await push_words(s, [7, 8])
                text = (await s.finalize()).text
                await fake.until(lambda: fake.of(LISTEN)[0].closed, "the first socket closed")
            await s.aclose()
        return text, stt, incidents, fake

    text, stt, incidents, fake = run(main())
    assert text == words(8)  # the replay placed by its own socket: no word lost, none doubled
    assert fake.of(LISTEN)[1].words == words(8).split()  # the second socket heard it all, once
    assert stt.counters["hedge"] == 1 and stt.counters["hedge_won"] == 1
    assert stt.counters["stall"] == 0 and stt.counters["reconnect"] == 0
    assert incidents == []  # a hedge is not a failure: no retry, no error


def test_a_slow_but_alive_socket_that_answers_first_serves_and_the_hedge_is_closed() -> None:
    async def main() -> tuple[str, DeepgramSTT, list[Incident], bool]:
        incidents: list[Incident] = []
        slow = asyncio.Event()
        plans = [ListenPlan(hold=slow), ListenPlan(mute_after_words=0)]
        async with FakeDeepgram(listen=plans).running() as fake:
            stt = stt_for(fake.url, stall_timeout_s=NEVER, stall_hedge_after_s=0.1)
            s = stt.stream()
            with reporting(incidents.append):
                await push_words(s, list(range(1, 5)))
                await fake.until(lambda: len(fake.of(LISTEN)) == 2, "the hedge")
                slow.set()  # the first socket answers now: before the hedge, which never does
                await fake.until(lambda: fake.of(LISTEN)[1].closed, "the hedge closed")
                await push_words(s, [5, 6])
                text = (await s.finalize()).text
            first_open = len(fake.of(LISTEN)) == 2 and not fake.of(LISTEN)[0].closed
            await s.aclose()
        return text, stt, incidents, first_open

    text, stt, incidents, first_open = run(main())
    assert text == words(6) and first_open  # the first socket served on
    assert stt.counters["hedge"] == 1 and stt.counters["hedge_lost"] == 1 and stt.counters["hedge_won"] == 0
    assert stt.counters["stall"] == 0 and stt.counters["reconnect"] == 0  # no false stall
    assert incidents == []


def test_when_both_sockets_are_silent_the_stall_deadline_still_recovers() -> None:
    async def main() -> tuple[str, DeepgramSTT, list[Incident], FakeDeepgram]:
        incidents: list[Incident] = []
        plans = [ListenPlan(mute_after_words=3), ListenPlan(mute_after_words=0)]
        async with FakeDeepgram(listen=plans).running() as fake:
            stt = stt_for(fake.url, stall_timeout_s=0.3, stall_hedge_after_s=0.1)
            s = stt.stream()
            with reporting(incidents.append):
                await push_words(s, list(range(1, 7)))
                await fake.until(lambda: len(fake.of(LISTEN)) == 3, "a third socket")
                await push_words(s, [7, 8])
                text = (await s.finalize()).text
            await s.aclose()
        return text, stt, incidents, fake

    text, stt, incidents, fake = run(main())
    assert text == words(8)
    assert stt.counters["hedge"] == 1 and stt.counters["hedge_won"] == 0
    # the first socket's deadline handed over to the hedge; the hedge's own deadline replaced it
    assert stt.counters["hedge_took_over"] == 1 and stt.counters["stall_speech"] == 2
    assert sum(i.kind == "retry" for i in incidents) == 2


def test_a_socket_silent_after_finalize_is_hedged_and_the_second_sockets_final_serves() -> None:
    """A stall at the turn's end: the socket heard the turn (its interims came) and never answers
    Finalize. Only the hedge after Finalize can end the turn (the deadline is past the guard)."""

    async def main() -> tuple[str, DeepgramSTT, list[Incident], FakeDeepgram]:
        incidents: list[Incident] = []
        async with FakeDeepgram(listen=[ListenPlan(answer_finalize=False)]).running() as fake:
            stt = stt_for(fake.url, stall_timeout_s=NEVER, stall_hedge_after_s=0, final_hedge_after_s=0.1)
            s = stt.stream()
            with reporting(incidents.append):
                await push_words(s, list(range(1, 7)))
                text = (await s.finalize()).text
                await fake.until(lambda: fake.of(LISTEN)[0].closed, "the first socket closed")
            await s.aclose()
        return text, stt, incidents, fake

    text, stt, incidents, fake = run(main())
    assert text == words(6)  # the second socket's final: every word, none doubled
    assert fake.of(LISTEN)[1].words == words(6).split()  # it heard the turn again, once
    assert fake.of(LISTEN)[1].types()[0] == "Finalize"  # and was asked for its own final
    assert stt.counters["hedge_final"] == 1 and stt.counters["hedge_won"] == 1
    assert stt.counters["interim_fallback"] == 0  # a final, not the last interim
    assert stt.counters["stall"] == 0 and stt.counters["reconnect"] == 0
    assert incidents == []


def test_a_slow_final_that_comes_before_the_hedges_serves_and_the_hedge_is_closed() -> None:
    async def main() -> tuple[str, DeepgramSTT, list[Incident], bool]:
        incidents: list[Incident] = []
        slow = asyncio.Event()
        plans = [ListenPlan(hold=slow), ListenPlan(mute_after_words=0)]  # the hedge never answers
        async with FakeDeepgram(listen=plans).running() as fake:
            stt = stt_for(fake.url, stall_timeout_s=NEVER, stall_hedge_after_s=0, final_hedge_after_s=0.1)
            s = stt.stream()
            with reporting(incidents.append):
                await push_words(s, [1, 2, 3])
                final = asyncio.get_running_loop().create_task(s.finalize())
                await fake.until(lambda: len(fake.of(LISTEN)) == 2, "the hedge after Finalize")
                slow.set()  # the first socket answers now: its results, then its final
                text = (await final).text
                await fake.until(lambda: fake.of(LISTEN)[1].closed, "the hedge closed")
            first_open = not fake.of(LISTEN)[0].closed
            await s.aclose()
        return text, stt, incidents, first_open

    text, stt, incidents, first_open = run(main())
    assert text == words(3) and first_open  # the first socket served on
    assert stt.counters["hedge_final"] == 1 and stt.counters["hedge_lost"] == 1
    assert stt.counters["hedge_won"] == 0 and stt.counters["stall"] == 0 and stt.counters["reconnect"] == 0
    assert incidents == []


def test_a_final_given_up_on_because_the_user_went_on_keeps_the_turns_words_for_the_next() -> None:
    """The listener cancels `finalize` when the user goes on before the reply began: the turn goes
    on. Here neither socket could answer before the cancel (the first never answers Finalize, the
    hedge is held), so no final held the first words yet: they must join the next final, not be
    dropped with the cancelled one (the hedge's late final for them is the turn's, not a late one)."""

    async def main() -> tuple[str, DeepgramSTT, FakeDeepgram]:
        go = asyncio.Event()
        plans = [ListenPlan(answer_finalize=False), ListenPlan(hold=go)]
        async with FakeDeepgram(listen=plans).running() as fake:
            stt = stt_for(fake.url, stall_timeout_s=NEVER, stall_hedge_after_s=0, final_hedge_after_s=0.1)
            s = stt.stream()
            await push_words(s, [1, 2, 3])
            first = asyncio.get_running_loop().create_task(s.finalize())
            await fake.until(lambda: len(fake.of(LISTEN)) == 2, "the hedge after Finalize")
            first.cancel()  # the user went on
            await asyncio.gather(first, return_exceptions=True)
            go.set()  # the hedge answers now, and wins
            await fake.until(lambda: fake.of(LISTEN)[0].closed, "the first socket closed")
            await push_words(s, [4, 5, 6])
            text = (await s.finalize()).text
            await s.aclose()
        return text, stt, fake

    text, stt, fake = run(main())
    assert text == words(6)  # the cancelled turn's words joined the next final, none doubled
    assert fake.of(LISTEN)[1].words == words(6).split()  # the hedge heard the whole turn, once
    assert stt.counters["hedge_won"] >= 1 and stt.counters["interim_fallback"] == 0
