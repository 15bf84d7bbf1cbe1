"""The wire protocol's pieces on their own: parsing client messages, naming session events, the
speaker model behind barge-in, and the rate limits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_virtual
from voxloop.agent import events as ev
from voxloop.config import AgentConfig
from voxloop.server import protocol as p
from voxloop.server.limits import MIN_FRAME_S, RateLimiter
from voxloop.server.settings import ServerSettings
from voxloop.server.sink import SocketSink

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


# -- client messages -------------------------------------------------------------------------------
def test_a_start_message_is_read_with_its_settings_applied_to_a_copy() -> None:
    msg = p.parse(
        json.dumps(
            {
                "type": "start",
                "protocol": 1,
                "input_sample_rate": 48000,
                "output_sample_rate": 16000,
                "settings": {"system_prompt": "Be terse.", "end_silence_ms": 800, "interruptions": False},
                "client": "ignored: unknown fields are",
            }
        )
    )
    assert isinstance(msg, p.Start)
    assert (msg.input_sample_rate, msg.output_sample_rate) == (48000, 16000)
    base = AgentConfig()
    cfg = msg.settings.apply(base)
    assert cfg.llm.system_prompt == "Be terse." and cfg.turn.end_silence_ms == 800
    assert cfg.turn.interruptions is False
    assert base.turn.end_silence_ms == 500 and base.turn.interruptions  # the server's own is untouched
    assert p.effective_settings(cfg)["end_silence_ms"] == 800


def test_the_other_client_messages() -> None:
    assert p.parse('{"type": "stop"}') == p.Stop()
    assert p.parse('{"type": "interrupt"}') == p.Interrupt()
    assert p.parse('{"type": "ping"}') == p.Ping()
    assert p.parse('{"type": "end_turn"}') == p.EndTurn()
    assert p.parse('{"type": "playback", "position": 4800}') == p.Playback(4800)
    start = p.parse('{"type": "start", "input_sample_rate": 16000}')
    assert isinstance(start, p.Start) and start.output_sample_rate is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{", "bad_json"),
        ('"start"', "bad_message"),
        ('{"type": 3}', "bad_message"),
        ('{"type": "hello"}', "unknown_type"),
        ('{"type": "start"}', "bad_message"),
        ('{"type": "start", "input_sample_rate": 7999}', "bad_message"),
        ('{"type": "start", "input_sample_rate": 16000.5}', "bad_message"),
        ('{"type": "start", "input_sample_rate": 16000, "output_sample_rate": 96000}', "bad_message"),
        ('{"type": "start", "input_sample_rate": 16000, "protocol": "1"}', "unsupported_protocol"),
        ('{"type": "start", "input_sample_rate": 16000, "settings": []}', "bad_message"),
        ('{"type": "start", "input_sample_rate": 16000, "settings": {"system_prompt": ""}}', "bad_message"),
        ('{"type": "playback"}', "bad_message"),
    ],
)
def test_malformed_messages_are_named_by_code(text: str, code: str) -> None:
    with pytest.raises(p.ProtocolError) as e:
        p.parse(text)
    assert e.value.code == code and e.value.message


# -- server events ---------------------------------------------------------------------------------
def _event_kinds() -> set[type[ev.Event]]:
    found: set[type[ev.Event]] = set()
    todo = [ev.Event]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return found


def test_every_session_event_has_a_wire_name_and_the_document_describes_it() -> None:
    assert set(p.WIRE_TYPES) == _event_kinds(), "a new event kind: name it in protocol.WIRE_TYPES"
    doc = DOC.read_text()
    for name in [
        *p.WIRE_TYPES.values(),
        "started",
        "audio_pause",
        "audio_resume",
        "audio_stop",
        "stopped",
        "pong",
    ]:
        assert f"`{name}`" in doc, f"docs/protocol.md does not describe {name}"
    codes = [v for k, v in vars(p).items() if k.isupper() and isinstance(v, str) and k not in ("VERSION",)]
    for code in codes:
        assert f"`{code}`" in doc, f"docs/protocol.md does not describe the error code {code}"


def test_events_on_the_wire() -> None:
    done = p.event_message(ev.TurnCompleted(t=1.5, record={"turn_id": 2, "v2v_ms": 900.0}))
    assert done == {"type": "turn_completed", "t": 1.5, "turn": {"turn_id": 2, "v2v_ms": 900.0}}
    err = p.event_message(ev.ErrorOccurred(t=0.1, code="turn_failed", message="boom", stage="reply"))
    assert err == {
        "type": "error",
        "t": 0.1,
        "code": "turn_failed",
        "message": "boom",
        "stage": "reply",
        "provider": "",
        "category": "",
        "turn_id": None,
        "fatal": False,
    }
    assert p.error_message("bad_json", "no")["fatal"] is False


# -- the speaker model -----------------------------------------------------------------------------
def _sink() -> tuple[SocketSink, list[bytes | dict[str, object]]]:
    sent: list[bytes | dict[str, object]] = []
    return SocketSink(1000, sent.append, grace_s=0.5), sent


def test_without_reports_the_client_is_modelled_as_playing_in_real_time() -> None:
    async def main() -> None:
        sink, sent = _sink()
        sink.play(np.full(1000, 0.5, np.float32))  # 1 s at 1 kHz
        assert [len(b) for b in sent if isinstance(b, bytes)] == [200] * 10  # 100 ms PCM16 frames
        assert sink.played_samples() == 0 and sink.queued_samples() == 1000
        await asyncio.sleep(0.4)
        assert sink.played_samples() == 400
        sink.stop()  # barge-in: 600 samples dropped
        assert sent[-1] == {"type": "audio_stop", "position": 1000}
        assert sink.played_samples() == 400
        await asyncio.sleep(1.0)
        assert sink.played_samples() == 400  # nothing plays after a stop
        sink.play(np.zeros(500, np.float32))
        await sink.drained()
        assert sink.played_samples() == 900 and sink.queued_samples() == 1500

    run_virtual(main())


def test_reports_from_the_client_are_what_counts() -> None:
    async def main() -> None:
        sink, sent = _sink()
        sink.play(np.zeros(1000, np.float32))
        await asyncio.sleep(0.9)
        sink.report(250)  # the client started late: it has played only 250 so far
        assert sink.played_samples() == 250
        sink.report(5000)  # never beyond what was sent
        assert sink.played_samples() == 1000
        sink.report(10)  # nor backwards
        assert sink.played_samples() == 1000

    run_virtual(main())


def test_drained_waits_for_the_clients_confirmation_within_a_grace_period() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sink, _ = _sink()
        sink.report(0)
        sink.play(np.zeros(1000, np.float32))
        t0 = loop.time()
        loop.call_later(1.2, sink.report, 1000)  # confirmed 0.2 s after the modelled end
        await sink.drained()
        assert loop.time() - t0 == pytest.approx(1.2)

        sink.play(np.zeros(1000, np.float32))
        t1 = loop.time()
        await sink.drained()  # never confirmed: give up half a second after the modelled end
        assert loop.time() - t1 == pytest.approx(1.5)

    run_virtual(main())


def test_a_cut_is_always_confirmed_and_a_stop_only_when_something_was_sent() -> None:
    async def main() -> None:
        sink, sent = _sink()
        sink.stop()
        assert sent == []
        sink.cut()
        assert sent == [{"type": "audio_stop", "position": 0}]
        sink.play(np.zeros(300, np.float32))
        sink.stop()
        sink.stop()
        assert [m for m in sent if isinstance(m, dict)][-1] == {"type": "audio_stop", "position": 300}
        assert len([m for m in sent if isinstance(m, dict)]) == 2

    run_virtual(main())


def test_pause_holds_the_playhead_and_resume_plays_on() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sink, sent = _sink()
        t0 = loop.time()
        sink.play(np.zeros(1000, np.float32))
        await asyncio.sleep(0.3)
        sink.pause()  # user sound over the agent
        assert sent[-1] == {"type": "audio_pause"}
        await asyncio.sleep(1.0)
        assert sink.played_samples() == 300 and sink.busy()
        sink.resume()
        assert sent[-1] == {"type": "audio_resume"}
        await sink.drained()
        assert sink.played_samples() == 1000 and not sink.busy()
        assert loop.time() - t0 == pytest.approx(2.0)  # 1 s of audio and 1 s held

    run_virtual(main())


def test_after_a_stop_drained_waits_to_be_cancelled_rather_than_finish_as_if_heard() -> None:
    async def main() -> None:
        sink, _ = _sink()
        sink.report(0)
        sink.play(np.zeros(1000, np.float32))
        waiting = asyncio.get_running_loop().create_task(sink.drained())
        await asyncio.sleep(0.1)
        sink.report(500)  # wakes it ...
        sink.stop()  # ... and a barge-in lands before it runs
        await asyncio.sleep(5.0)
        assert not waiting.done()
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        assert waiting.cancelled()

    run_virtual(main())


# -- rate limits -----------------------------------------------------------------------------------
def test_control_messages_a_second_with_a_one_second_burst() -> None:
    lim = RateLimiter(messages_per_s=10, audio_burst_s=1.0)
    assert all(lim.control(100.0) for _ in range(10))
    assert not lim.control(100.0)
    assert lim.control(100.1)  # one message's worth refilled
    assert not lim.control(100.1)
    assert lim.dropped.frames == 2


def test_audio_is_budgeted_by_its_length_with_a_burst_and_credit_capped() -> None:
    lim = RateLimiter(messages_per_s=100, audio_burst_s=1.0)
    assert lim.audio(1.0, 0.0)  # 1 s at once: exactly the burst
    assert not lim.audio(0.02, 0.0)
    assert lim.audio(0.5, 0.5)
    # silence from the client for 10 s does not earn 10 s of burst
    assert lim.audio(1.0, 11.5)
    assert not lim.audio(0.5, 11.5)
    # every frame costs at least MIN_FRAME_S: a flood of one-sample frames is not free
    lim = RateLimiter(messages_per_s=100, audio_burst_s=1.0)
    tiny = [lim.audio(1 / 16000, 0.0) for _ in range(1000)]
    assert sum(tiny) == int(1.0 / MIN_FRAME_S)


def _real_time_client(lim: RateLimiter, frame_s: float, until_s: float, stall: tuple[float, float]) -> int:
    """10 ms frames recorded in real time and a playback report every 100 ms, sent as they are
    made except during `stall` (from, to), whose backlog arrives at once when it ends.
    Returns how many messages the limiter refused."""
    refused, t, n = 0, 0.0, 0
    while t < until_s:
        n += 1
        t = n * frame_s
        sent = stall[1] if stall[0] <= t < stall[1] else t
        refused += not lim.audio(frame_s, sent)
        if n % round(0.1 / frame_s) == 0:
            refused += not lim.control(sent)
    return refused


def test_a_well_behaved_client_loses_nothing_even_after_a_network_stall() -> None:
    # the probe: 10 ms frames + a playback report every 100 ms (110 messages a second) lost
    # ~10 frames a second, and a 3 s stall's backlog lost ~1 s of speech
    settings = ServerSettings()
    lim = RateLimiter(settings.max_frames_per_s, settings.max_audio_ahead_s)
    assert _real_time_client(lim, 0.01, 30.0, stall=(12.0, 15.0)) == 0
    assert lim.report(31.0, passed=True, final=True) is None


def test_rate_limit_reports_carry_the_true_count_once_the_episode_ends() -> None:
    lim = RateLimiter(messages_per_s=1, audio_burst_s=1.0)
    assert lim.control(5.0)
    for k in range(50):  # a flood within one second: nothing said yet, all counted
        assert not lim.control(5.0 + k * 0.01)
        assert lim.report(5.0 + k * 0.01, passed=False) is None
    assert not lim.audio(2.0, 5.5)  # 2 s of audio over a 1 s burst
    assert lim.control(6.0)
    assert lim.report(6.0, passed=True) == "dropped 51 message(s) (2.00 s of audio)"
    assert lim.report(6.0, passed=True) is None
    # a flood that goes on is reported once a second, each report with its own count
    said, passed = [], 0
    for k in range(300):
        t = 10.0 + k * 0.01
        passed += lim.control(t)
        said.append(lim.report(t, passed=False))
    counts = [int(s.split()[1]) for s in said if s]
    assert len(counts) == 2 and all(c >= 98 for c in counts)
    assert lim.report(13.0, passed=True, final=True) == f"dropped {300 - passed - sum(counts)} message(s)"
