"""A Twilio call (server/telephony) with fake models, on virtual time: Twilio's side is scripted
byte for byte (tests/twilio_peer.py), the server side is the real TwilioCall and VoiceSession.

Pacing is checked from the loop-clock times the frames were sent at, not by waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from conftest import LONG_REPLY, LONG_TEXT, make_providers, run_virtual
from fakes import FakeLLM, FakeSTT
from twilio_peer import SID, MemorySocket, TwilioPeer, silence_bytes, tone_bytes
from voxloop.agent import events as ev
from voxloop.agent.providers import Providers
from voxloop.config import AgentConfig, TurnConfig
from voxloop.server.settings import ServerSettings
from voxloop.server.telephony.call import TwilioCall

WORD = 2000  # FakeTTS: 0.25 s a word, at 8 kHz
LEAD_S = 0.1  # TwilioSink's default


@dataclass
class Call:
    ws: MemorySocket
    call: TwilioCall
    task: asyncio.Task[None]
    events: list[ev.Event] = field(default_factory=list)

    @property
    def peer(self) -> TwilioPeer:
        return self.ws.peer

    def of(self, kind: type[ev.Event]) -> list[ev.Event]:
        return [e for e in self.events if isinstance(e, kind)]

    async def begin(self, **custom: str) -> None:
        await self.peer.connected()
        await self.peer.start(custom)
        assert await self.peer.silence_until(lambda: self.call.session is not None or self.task.done(), 1.0)
        if self.call.session is not None:
            self.call.session.subscribe(self.events.append)

    def turns(self, n: int) -> bool:
        return len(self.of(ev.TurnCompleted)) >= n


@asynccontextmanager
async def twilio_call(
    providers: Providers | None = None, settings: ServerSettings | None = None
) -> AsyncIterator[Call]:
    providers = providers or make_providers()
    await providers.load()
    ws = MemorySocket()
    call = TwilioCall(ws, providers, AgentConfig(), settings or ServerSettings())  # type: ignore[arg-type]
    c = Call(ws, call, asyncio.get_running_loop().create_task(call.run()))
    try:
        yield c
    finally:
        if not c.task.done():
            ws.hang_up()
        await c.task
        await ws.peer.aclose()
        await providers.aclose()


def test_a_call_is_answered_in_paced_mulaw_frames_with_marks_and_the_stream_sid() -> None:
    async def main() -> None:
        async with twilio_call(make_providers(stt=FakeSTT(["turn on the lamp"]))) as c:
            await c.begin()
            await c.peer.stream(silence_bytes(0.3) + tone_bytes(1.0))
            assert await c.peer.silence_until(lambda: c.turns(1))
            got = c.peer.received
            assert {m["event"] for _, m in got} == {"media", "mark"}
            assert all(m["streamSid"] == SID for _, m in got)
            assert len(c.peer.voice()) == 4 * WORD  # "Sure, happy to help.", nothing else

            # real-time pace: each frame leaves once Twilio holds no more than LEAD_S of voice
            media = [(t, len(c.peer.voice_of(m))) for t, m in got if m["event"] == "media"]
            t0, before = media[0][0], 0
            for t, n in media:
                assert n <= 160
                assert abs(t - (t0 + max(0.0, before / 8000 - LEAD_S))) < 1e-6, (t - t0, before)
                before += n
            assert media[-1][0] - t0 >= 4 * WORD / 8000 - LEAD_S - 0.02

            # a mark after each block of voice, echoed once it played: the reply was heard in full
            marks = [m["mark"]["name"] for _, m in got if m["event"] == "mark"]
            assert len(marks) == len(set(marks)) == 4  # FakeTTS: one 0.25 s block a word
            assert got[-1][1]["event"] == "mark"
            turn = c.call.session.records[0] if c.call.session else None
            assert turn is not None and not turn.interrupted and turn.agent_text == "Sure, happy to help."
            assert len(c.peer.heard) == 4 * WORD

            await c.peer.stop()
            await c.task
            assert c.ws.closed == (1000, "")

    run_virtual(main())


def test_barge_in_clears_the_call_and_the_history_keeps_what_the_caller_heard() -> None:
    llm = FakeLLM(default=LONG_REPLY)
    stt = FakeSTT(["tell me a story", "wait stop"])

    async def main() -> None:
        async with twilio_call(make_providers(stt=stt, llm=llm)) as c:
            await c.begin()
            await c.peer.stream(silence_bytes(0.3) + tone_bytes(1.0))
            assert await c.peer.silence_until(lambda: len(c.peer.heard) >= 4 * WORD + 500)
            talk_s = TurnConfig().interrupt_min_speech_ms / 1000 + 0.3
            await c.peer.stream(tone_bytes(talk_s))
            assert await c.peer.silence_until(lambda: bool(c.of(ev.Interrupted)))

            clears = [i for i, (_, m) in enumerate(c.peer.received) if m["event"] == "clear"]
            assert len(clears) == 1  # the pause cleared the call; nothing was sent after it
            interrupted = c.of(ev.Interrupted)[0]
            heard = interrupted.heard_text  # type: ignore[attr-defined]
            said = len(c.peer.heard) / WORD  # words of voice the caller's phone played
            assert abs(len(heard.split()) - said) <= 1, (heard, said)
            assert LONG_TEXT.startswith(heard) and 4 <= len(heard.split()) < 15
            session = c.call.session
            assert session is not None
            assistant = [m.content for m in session.history.messages if m.role == "assistant"]
            assert assistant[0] == heard
            assert session.records[0].interrupted and session.records[0].agent_text == heard

    run_virtual(main())


def test_a_cough_over_the_agent_clears_then_the_rest_is_sent_again_from_where_the_caller_was() -> None:
    llm = FakeLLM(default=LONG_REPLY)
    stt = FakeSTT(["tell me a story", "uh-huh"])

    async def main() -> None:
        async with twilio_call(make_providers(stt=stt, llm=llm)) as c:
            await c.begin()
            await c.peer.stream(silence_bytes(0.3) + tone_bytes(1.0))
            assert await c.peer.silence_until(lambda: len(c.peer.heard) >= 4 * WORD + 500)
            await c.peer.stream(tone_bytes(0.3))  # short: judged by its words
            assert await c.peer.silence_until(lambda: c.turns(1))

            assert [
                type(e).__name__ for e in c.events if isinstance(e, ev.AgentPaused | ev.AgentResumed)
            ] == [
                "AgentPaused",
                "AgentResumed",
            ]
            assert len(c.peer.of("clear")) == 1
            session = c.call.session
            assert session is not None and not session.records[0].interrupted
            # the caller heard every word once: what the clear dropped was sent again
            assert abs(len(c.peer.heard) - 15 * WORD) <= 160, len(c.peer.heard)
            assert len(c.peer.voice()) > 15 * WORD  # some of it twice over the line

    run_virtual(main())


def test_malformed_messages_are_ignored_and_stop_ends_the_call() -> None:
    async def main() -> None:
        async with twilio_call(make_providers(stt=FakeSTT(["hello"]))) as c:
            peer = c.peer
            c.ws.raw(text="not json")
            c.ws.raw(bytes=b"\x00\x01")
            c.ws.raw(text='{"event":"media","media":{"payload":"//8="}}')  # no streamSid
            c.ws.raw(text="[1,2]")
            c.ws.raw(text='{"event":"teleport","streamSid":"MZ1"}')
            c.ws.raw(text="[" * 5000)
            await peer.media(silence_bytes(0.02))  # before start
            await c.begin()
            c.ws.raw(text=f'{{"event":"media","streamSid":"{SID}","media":{{"payload":"not base64!"}}}}')
            c.ws.raw(text=f'{{"event":"mark","streamSid":"{SID}","mark":{{}}}}')
            c.ws.raw(text=f'{{"event":"mark","streamSid":"{SID}","mark":{{"name":"nobody-sent-this"}}}}')
            c.ws.raw(text='{"event":"media","streamSid":"MZ-other","media":{"payload":"//8="}}')
            await peer.start()  # a second start is ignored
            await peer.dtmf("7")
            await peer.stream(silence_bytes(0.3) + tone_bytes(1.0))
            assert await peer.silence_until(lambda: c.turns(1))
            assert c.call.digits == ["7"]
            await peer.stop()
            await c.task
            assert c.ws.closed == (1000, "")

    run_virtual(main())


def test_custom_parameters_set_the_session_and_can_carry_the_api_key() -> None:
    llm = FakeLLM()

    async def main() -> None:
        settings = ServerSettings(api_keys=("k-1",))
        prompt = "You answer the phone for a bakery."
        async with twilio_call(make_providers(stt=FakeSTT(["hi"]), llm=llm), settings) as c:
            c.call.key_needed = True
            await c.begin(token="k-1", system_prompt=prompt, end_silence_ms="400", caller="+15550100")
            session = c.call.session
            assert session is not None and session.config.turn.end_silence_ms == 400
            await c.peer.stream(silence_bytes(0.3) + tone_bytes(1.0))
            assert await c.peer.silence_until(lambda: c.turns(1))
            assert llm.calls[0].messages[0].content == prompt

        async with twilio_call(make_providers(), settings) as c:
            c.call.key_needed = True
            await c.begin(token="wrong")
            await c.task
            assert c.call.session is None and c.ws.closed == (1008, "unauthorized")

    run_virtual(main())


def test_a_stream_in_another_format_is_closed_with_the_reason() -> None:
    async def main() -> None:
        async with twilio_call() as c:
            await c.peer.connected()
            await c.peer.start(encoding="audio/x-l16")
            await c.task
            assert c.ws.closed is not None and c.ws.closed[0] == 1003 and "audio/x-l16" in c.ws.closed[1]
            assert not c.peer.received

    run_virtual(main())


def test_a_drain_ends_the_call_once_the_reply_under_way_has_been_heard() -> None:
    async def main() -> None:
        async with twilio_call(make_providers(stt=FakeSTT(["hello"]))) as c:
            await c.begin()
            await c.peer.stream(silence_bytes(0.3) + tone_bytes(1.0))
            assert await c.peer.silence_until(lambda: bool(c.peer.heard))
            c.call.drain()
            assert await c.peer.silence_until(c.task.done)
            assert c.ws.closed == (1012, "the server is shutting down")
            assert len(c.peer.heard) == 4 * WORD  # the reply was finished first

    run_virtual(main())


def test_a_transfer_ends_the_stream_once_the_agent_has_said_so() -> None:
    async def main() -> None:
        async with twilio_call(make_providers(stt=FakeSTT(["let me talk to a person"]))) as c:
            await c.begin()
            await c.peer.stream(silence_bytes(0.3) + tone_bytes(1.0))
            assert await c.peer.silence_until(lambda: bool(c.peer.heard))
            session = c.call.session
            assert session is not None
            session._emit(ev.Transfer, turn_id=1, reason="asked for a person")  # as transfer_to_human does
            assert await c.peer.silence_until(c.task.done)
            assert c.ws.closed == (1000, "transfer")
            assert len(c.peer.heard) == 4 * WORD  # the agent finished saying so first

    run_virtual(main())


def test_media_lost_on_the_way_is_filled_with_silence_by_its_timestamps() -> None:
    async def main() -> None:
        async with twilio_call() as c:
            await c.begin()
            before = c.call.caller_s  # the silence fed while `begin` waited for the session
            await c.peer.stream(silence_bytes(1.0))
            c.peer.lose(10)  # 200 ms never arrive
            await c.peer.stream(silence_bytes(1.0))
            c.peer.lose(1)  # 20 ms: within the jitter allowed, not filled
            await c.peer.stream(silence_bytes(0.2))
            assert abs(c.call.caller_s - before - 2.4) < 1e-9, c.call.caller_s

    run_virtual(main())
