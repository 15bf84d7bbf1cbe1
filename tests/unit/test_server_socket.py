"""The voice server over a real socket, with fake models: a conversation, barge-in, stop, bad input
of every kind, and sessions that share the models but nothing else.

Audio is sent ahead of real time where that is within the server's limits (the fakes do not care),
and the client reports every sample as played on arrival unless a test is about playback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np

from conftest import LONG_REPLY, LONG_TEXT, make_providers, silence, tone
from fakes import FakeLLM, FakeSTT, FakeTTS
from live_server import AgentClient, agent_client, live_server
from voxloop.agent.timeline import TurnRecord
from voxloop.audio.pcm import resample
from voxloop.config import TurnConfig
from voxloop.providers.base import STT, PartialCallback, Samples, STTStream, Transcript
from voxloop.server.settings import ServerSettings

T = TypeVar("T")
WORD = 6000  # FakeTTS: 0.25 s of voice per word at 24 kHz
UTTERANCE = np.concatenate([silence(0.3), tone(1.0), silence(0.6)])  # one user turn (16 kHz)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


async def say(c: AgentClient, n: int = 1) -> dict[str, Any]:
    """One user turn; returns the timeline of turn `n`."""
    await c.send_audio(UTTERANCE)
    return (await c.event("turn_completed", n))["turn"]


def test_a_turn_gives_transcripts_the_voice_and_the_timeline() -> None:
    stt = FakeSTT(["turn on the lamp"], partial_every_s=0.3)

    async def main() -> None:
        async with (
            live_server(make_providers(stt=stt)) as srv,
            agent_client(srv.ws_url, auto_report=True) as c,
        ):
            started = await c.start()
            assert started["protocol"] == 1
            assert started["input_sample_rate"] == 16000 and started["output_sample_rate"] == 24000
            assert started["limits"]["max_frame_bytes"] == ServerSettings().max_frame_bytes
            turn = await say(c)

            order = [t for t in c.types() if t in ("speech_started", "speech_ended", "final_transcript")]
            assert order == ["speech_started", "speech_ended", "final_transcript"]
            assert c.of("partial_transcript")[0]["text"] == "turn on the lamp"
            final = c.of("final_transcript")[0]
            assert final == {**final, "turn_id": 1, "text": "turn on the lamp"}
            assert all(isinstance(e["t"], float) for e in c.events if "t" in e)

            # the agent's words, each with where its audio starts in the stream
            spoken = c.of("agent_speech")
            assert " ".join(s["text"] for s in spoken) == turn["agent_text"] == "Sure, happy to help."
            starts, pos = [], 0
            for s in spoken:
                starts.append(pos)
                pos += len(s["text"].split()) * WORD
            assert [s["position"] for s in spoken] == starts
            assert c.samples_received == pos == 4 * WORD  # every word of the voice, nothing else
            assert np.sqrt(np.mean(c.pcm() ** 2)) > 0.1  # FakeTTS's tone, not silence

            # the timeline: the fields of turns.jsonl, with the stage times filled in
            assert set(turn) == set(TurnRecord(turn_id=1).to_dict())
            assert turn["user_text"] == "turn on the lamp" and not turn["interrupted"]
            assert turn["v2v_ms"] is not None and turn["endpoint_ms"] is not None
            assert c.types().index("playback_finished") < c.types().index("turn_completed")

    run(main())


def test_end_turn_decides_the_turn_without_waiting_for_the_silence() -> None:
    async def main() -> None:
        async with (
            live_server(make_providers(stt=FakeSTT(["turn on the lamp"]))) as srv,
            agent_client(srv.ws_url, auto_report=True) as c,
        ):
            await c.start()
            await c.send({"type": "end_turn"})  # before any speech: nothing to end
            # 0.1 s of silence after the words: far from the 0.5 s that would end the turn, and no
            # more audio comes (push-to-talk released), so only end_turn can decide it
            await c.send_audio(np.concatenate([silence(0.3), tone(1.0), silence(0.1)]))
            await c.event("speech_started")
            await c.send({"type": "end_turn"})
            turn = (await c.event("turn_completed"))["turn"]
            assert turn["user_text"] == "turn on the lamp" and turn["agent_text"] == "Sure, happy to help."
            assert c.types().count("turn_decided") == 1
            assert not c.of("error")

    run(main())


def test_the_voice_comes_at_the_rate_the_client_asks_for() -> None:
    async def main() -> None:
        async with (
            live_server(make_providers(stt=FakeSTT(["hi"]))) as srv,
            agent_client(srv.ws_url, auto_report=True) as c,
        ):
            assert (await c.start(output_sample_rate=16000))["output_sample_rate"] == 16000
            await say(c)
            assert abs(c.samples_received - 4 * 4000) <= 4  # 4 words of 0.25 s at 16 kHz

    run(main())


def test_a_client_that_never_reports_playback_is_modelled_in_real_time() -> None:
    async def main() -> None:
        async with live_server(make_providers(stt=FakeSTT(["hi"]))) as srv, agent_client(srv.ws_url) as c:
            await c.start()
            await say(c)
            finished = c.audio_marks[c.types().index("playback_finished")]
            assert finished == 4 * WORD
            # the turn was complete only once the 1.0 s of voice could have been played
            loop = asyncio.get_running_loop()
            assert c.first_audio_at is not None and loop.time() - c.first_audio_at >= 0.95

    run(main())


def test_interrupt_cuts_the_voice_where_the_client_says_it_was() -> None:
    llm = FakeLLM(default=LONG_REPLY)

    async def main() -> None:
        async with (
            live_server(make_providers(stt=FakeSTT(["tell me"]), llm=llm)) as srv,
            agent_client(srv.ws_url) as c,
        ):
            await c.start()
            await c.send_audio(UTTERANCE)
            total = 15 * WORD
            await c.until(lambda: c.samples_received == total, "the whole reply's audio")
            # the client says it has played 3.0 s (12 words); the real-time model would say ~0
            await c.send({"type": "playback", "position": 12 * WORD})
            await c.send({"type": "interrupt"})
            stop = await c.event("audio_stop")
            assert stop["position"] == total  # skip everything received
            heard = (await c.event("interrupted"))["heard_text"]
            assert heard.split() == LONG_TEXT.split()[:12]
            turn = (await c.event("turn_completed"))["turn"]
            assert turn["interrupted"] and turn["agent_text"] == heard
            assert not c.of("playback_finished")

    run(main())


def test_speaking_over_the_agent_pauses_its_voice_then_stops_it() -> None:
    llm = FakeLLM(default=LONG_REPLY)

    async def main() -> None:
        async with (
            live_server(make_providers(stt=FakeSTT(["tell me", "stop"]), llm=llm)) as srv,
            agent_client(srv.ws_url) as c,
        ):
            await c.start()
            await c.send_audio(UTTERANCE)
            await c.event("agent_speech")
            talk_s = TurnConfig().interrupt_min_speech_ms / 1000 + 0.2  # long enough to take the turn
            await c.stream(tone(talk_s))  # the user talks over the reply, in real time
            await c.event("interrupted")
            kinds = c.types()
            order = ["audio_pause", "agent_paused", "audio_stop", "interrupted"]
            assert [kinds.index(k) for k in order] == sorted(kinds.index(k) for k in order), kinds
            # audio_stop names the position of everything sent before it: no audio after it
            i_stop = kinds.index("audio_stop")
            assert c.of("audio_stop")[0]["position"] == c.audio_marks[i_stop] == c.samples_received
            heard = c.of("interrupted")[0]["heard_text"].split()
            assert heard == LONG_TEXT.split()[: len(heard)]  # a prefix of the reply
            assert len(heard) < 15

    run(main())


def test_a_short_sound_over_the_agent_only_holds_its_voice() -> None:
    async def main() -> None:
        async with (
            live_server(make_providers(stt=FakeSTT(["hi"]))) as srv,
            agent_client(srv.ws_url) as c,
        ):
            await c.start()
            await c.send_audio(UTTERANCE)
            await c.event("agent_speech")
            await c.stream(np.concatenate([tone(0.1), silence(0.4)]))  # a cough, then quiet
            resumed = await c.event("agent_resumed")
            assert resumed["turn_id"] == 1 and resumed["reason"]
            turn = (await c.event("turn_completed"))["turn"]
            assert not turn["interrupted"] and turn["agent_text"] == "Sure, happy to help."
            kinds = c.types()
            assert kinds.index("audio_pause") < kinds.index("audio_resume") < kinds.index("playback_finished")
            assert not c.of("audio_stop") and not c.of("interrupted")

    run(main())


def test_stop_ends_the_session_and_closes_normally() -> None:
    async def main() -> None:
        async with (
            live_server(make_providers(stt=FakeSTT(["hi"]))) as srv,
            agent_client(srv.ws_url, auto_report=True) as c,
        ):
            await c.start()
            await say(c)
            await c.send({"type": "stop"})
            assert (await c.event("stopped"))["turns"] == 1
            assert await c.closed_with() == 1000
            assert srv.state.active == 0

    run(main())


def test_bad_input_of_every_kind_gets_an_error_event_and_the_session_lives_on() -> None:
    settings = ServerSettings(port=0, max_frame_bytes=4096)
    bad_then_code: list[tuple[str | bytes | dict[str, Any], str]] = [
        (b"\x00\x00" * 160, "not_started"),
        ("this is not json", "bad_json"),
        ("[1, 2, 3]", "bad_message"),
        ({"no": "type"}, "bad_message"),
        ({"type": "dance"}, "unknown_type"),
        ({"type": "start", "input_sample_rate": 1234}, "bad_message"),
        ({"type": "start", "input_sample_rate": "16000"}, "bad_message"),
        ({"type": "start", "input_sample_rate": 16000, "protocol": 2}, "unsupported_protocol"),
        ({"type": "start", "input_sample_rate": 16000, "settings": {"volume": 11}}, "bad_message"),
        ({"type": "start", "input_sample_rate": 16000, "settings": {"end_silence_ms": 5}}, "bad_message"),
        ({"type": "start", "input_sample_rate": 16000, "settings": {"interruptions": "no"}}, "bad_message"),
        ({"type": "interrupt"}, "not_started"),
        ({"type": "playback", "position": 10}, "not_started"),
    ]
    after_start: list[tuple[str | bytes | dict[str, Any], str]] = [
        ({"type": "start", "input_sample_rate": 16000}, "already_started"),
        (b"\x01\x02\x03", "bad_audio"),
        (b"", "bad_audio"),
        (b"\x00" * 4098, "frame_too_large"),
        ("x" * 5000, "frame_too_large"),
        ({"type": "playback", "position": -5}, "bad_message"),
        ({"type": "playback", "position": True}, "bad_message"),
    ]

    async def main() -> None:
        stt = FakeSTT(["still here"])
        async with (
            live_server(make_providers(stt=stt), settings) as srv,
            agent_client(srv.ws_url, auto_report=True) as c,
        ):
            n = 0
            for msg, code in bad_then_code:
                await c.send(msg)
                n += 1
                await c.until(lambda n=n: len(c.of("error")) >= n, f"error #{n} ({code})")
            await c.start()
            for msg, code in after_start:
                await c.send(msg)
                n += 1
                await c.until(lambda n=n: len(c.of("error")) >= n, f"error #{n} ({code})")
            codes = [e["code"] for e in c.of("error")]
            assert codes == [code for _, code in bad_then_code + after_start]
            assert all(not e["fatal"] and e["message"] for e in c.of("error"))
            # ...and the session still talks
            await c.send({"type": "ping"})
            await c.event("pong")
            assert (await say(c))["user_text"] == "still here"
            assert not c.closed

    run(main())


def test_messages_beyond_the_rate_limit_are_dropped_and_counted_exactly() -> None:
    settings = ServerSettings(port=0, max_frames_per_s=20)

    async def main() -> None:
        async with live_server(make_providers(), settings) as srv, agent_client(srv.ws_url) as c:
            for _ in range(60):
                await c.send({"type": "ping"})
            await c.until(lambda: len(c.of("pong")) >= 20, "the pings within the limit")
            # the connection lives on: once the bucket refills, a ping is answered again, and the
            # first message let through after the flood says how many were dropped
            pings = 60
            for _ in range(50):
                await c.send({"type": "ping"})
                pings += 1
                try:
                    await c.event("pong", len(c.of("pong")) + 1, within=0.1)
                    break
                except AssertionError:
                    continue
            else:
                raise AssertionError("no ping was answered after the burst")
            err = await c.error("rate_limited")
            assert not err["fatal"] and "control messages a second" in err["message"]
            dropped = int(err["message"].split()[1])
            assert dropped == pings - len(c.of("pong")) >= 40  # exactly the ones never answered
            assert not c.closed

    run(main())


def test_audio_may_not_run_far_ahead_of_real_time() -> None:
    settings = ServerSettings(port=0, max_audio_ahead_s=0.5)

    async def main() -> None:
        async with live_server(make_providers(), settings) as srv, agent_client(srv.ws_url) as c:
            await c.start()
            await c.send_audio(silence(1.5))  # 1.5 s at once in 0.1 s frames: 1 s too far ahead
            await c.send({"type": "ping"})  # let through: the drops are reported with it
            err = await c.error("rate_limited")
            assert err["message"].startswith("dropped 10 message(s) (1.00 s of audio)")
            assert not c.closed

    run(main())


# -- sessions share the models and nothing else ---------------------------------------------------
class _ToneStream(STTStream):
    """Hears "alpha" in a low tone and "bravo" in a high one: what a session hears depends only on
    the audio of that session."""

    def __init__(self) -> None:
        self.turn: list[Samples] = []

    async def push(self, audio: Samples) -> None:
        self.turn.append(np.asarray(audio, np.float32))

    async def finalize(self) -> Transcript:
        audio = np.concatenate(self.turn) if self.turn else np.zeros(1, np.float32)
        self.turn = []
        spectrum = np.abs(np.fft.rfft(audio))
        freq = float(np.argmax(spectrum)) * 16000 / len(audio)
        return Transcript("alpha" if freq < 600 else "bravo", True, len(audio) / 16000)


class ToneSTT(STT):
    name = "tone-stt"

    def stream(self, on_partial: PartialCallback | None = None) -> STTStream:
        return _ToneStream()


def test_concurrent_sessions_keep_their_own_words_history_and_audio_formats() -> None:
    llm = FakeLLM()
    providers = make_providers(stt=ToneSTT(), llm=llm, tts=FakeTTS())

    async def talk(url: str, freq: float, in_rate: int, out_rate: int) -> AgentClient:
        async with agent_client(url, auto_report=True) as c:
            await c.start(in_rate, output_sample_rate=out_rate)
            speech = np.concatenate([silence(0.3), tone(1.0, freq=freq), silence(0.6)])
            for n in (1, 2):
                await c.send_audio(resample(speech, 16000, in_rate), rate=in_rate)
                await c.event("turn_completed", n)
            return c

    async def main() -> None:
        async with live_server(providers, ServerSettings(port=0, max_audio_ahead_s=10.0)) as srv:
            a, b = await asyncio.gather(
                talk(srv.ws_url, 300.0, 16000, 24000), talk(srv.ws_url, 1200.0, 48000, 16000)
            )
        assert [e["text"] for e in a.of("final_transcript")] == ["alpha", "alpha"]
        assert [e["text"] for e in b.of("final_transcript")] == ["bravo", "bravo"]
        assert a.samples_received == 2 * 4 * WORD
        assert abs(b.samples_received - 2 * 4 * 4000) <= 8
        # each LLM prompt holds only its own session's history
        assert len(llm.calls) == 4
        for call in llm.calls:
            users = {m.content for m in call.messages if m.role == "user"}
            assert users in ({"alpha"}, {"bravo"}), users
        assert max(len(call.messages) for call in llm.calls) == 4  # system, user, assistant, user

    run(main())


def test_shutting_the_server_down_ends_open_sessions_cleanly() -> None:
    llm = FakeLLM(default=LONG_REPLY, delay=0.05)  # 0.9 s to generate

    async def main() -> None:
        async with live_server(make_providers(stt=FakeSTT(["tell me"]), llm=llm)) as srv:
            opened = agent_client(srv.ws_url)
            c = await opened.__aenter__()
            await c.start()
            await c.send_audio(UTTERANCE)
            await c.event("agent_speech")  # mid-reply
        try:
            assert await c.closed_with() == 1012  # "service restart"
            assert srv.state.active == 0
            assert llm.calls[0].closed_early  # the reply was stopped mid-generation, not left running
        finally:
            await opened.__aexit__(None, None, None)

    run(main())
