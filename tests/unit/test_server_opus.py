"""The socket protocol with `"codec": "opus"` over a real server socket, with fake models: Opus
packets both ways, one direction only, malformed packets answered with an error while the session
goes on, and what `start` refuses."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np
import pytest

from conftest import make_providers, silence, tone
from fakes import FakeSTT
from live_server import AgentClient, agent_client, live_server
from voxloop.audio import opus

pytestmark = pytest.mark.skipif(not opus.available(), reason="PyAV without libopus: pip install av")
T = TypeVar("T")
UTTERANCE = np.concatenate([silence(0.3), tone(1.0), silence(0.6)])  # one user turn (16 kHz)
VOICE = 4 * 6000  # FakeTTS: "Sure, happy to help." is 4 words of 0.25 s at 24 kHz


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


async def send_opus(c: AgentClient, audio: np.ndarray, rate: int = 16000) -> int:
    """The audio as 20 ms Opus packets, one per binary frame (not paced: within the burst)."""
    enc = opus.OpusEncoder(rate, 24000)
    packets = enc.encode(audio) + enc.flush()
    for p in packets:
        await c.send(p)
    return sum(map(len, packets))


def decoded_voice(c: AgentClient) -> np.ndarray:
    dec = opus.OpusDecoder()
    return np.concatenate([dec.decode(f) for f in c.frames])


def test_opus_both_ways() -> None:
    async def main() -> None:
        async with (
            live_server(make_providers(stt=FakeSTT(["turn on the lamp"]))) as srv,
            agent_client(srv.ws_url, auto_report=True) as c,
        ):
            c.opus_samples = 480  # 20 ms at 24 kHz
            started = await c.start(codec="opus")
            assert started["input_codec"] == started["output_codec"] == "opus"
            assert started["output_sample_rate"] == 24000
            sent = await send_opus(c, UTTERANCE)
            assert sent < len(UTTERANCE) * 2 / 8  # an eighth of the PCM16 bytes, or less
            turn = (await c.event("turn_completed"))["turn"]
            assert turn["user_text"] == "turn on the lamp" and turn["agent_text"] == "Sure, happy to help."
            assert not c.of("error")
            assert all(opus.packet_duration_s(f) == 0.02 for f in c.frames)
            # the whole voice, padded to whole packets at most at each text's end, positions in samples
            assert VOICE <= c.samples_received < VOICE + 4 * 480
            positions = [s["position"] for s in c.of("agent_speech")]
            assert positions[0] == 0 and positions == sorted(positions) and positions[-1] < VOICE
            voice = decoded_voice(c)
            assert len(voice) == len(c.frames) * 960 and np.sqrt(np.mean(voice**2)) > 0.1  # the tone
            assert sum(map(len, c.frames)) < c.samples_received * 2 / 8  # vs PCM16 at 24 kHz

    run(main())


def test_opus_one_way_only() -> None:
    async def main() -> None:
        async with (
            live_server(make_providers(stt=FakeSTT(["hi"]))) as srv,
            agent_client(srv.ws_url, auto_report=True) as c,
        ):
            started = await c.start(rate=16000, input_codec="opus")  # the voice stays PCM16
            assert (started["input_codec"], started["output_codec"]) == ("opus", "pcm16")
            assert started["input_sample_rate"] == 16000
            await send_opus(c, UTTERANCE)
            await c.event("turn_completed")
            assert c.samples_received == VOICE and not c.of("error")

    run(main())


def test_malformed_packets_are_errors_and_the_session_goes_on() -> None:
    async def main() -> None:
        async with (
            live_server(make_providers(stt=FakeSTT(["turn on the lamp"]))) as srv,
            agent_client(srv.ws_url, auto_report=True) as c,
        ):
            c.opus_samples = 480
            await c.start(codec="opus")
            await c.send(bytes([0xFB, 0x3F, 1, 2, 3]))  # claims 63 frames: 1.26 s
            err = await c.error("bad_audio")
            assert "malformed Opus packet" in err["message"] and "one whole Opus packet" in err["message"]
            assert err["fatal"] is False
            await c.send(bytes([0xFB, 0x82, 0xFF]))  # shaped like a packet, but not decodable
            await c.until(lambda: len(c.of("error")) == 2, "the second error")
            assert "could not be decoded" in c.of("error")[1]["message"]
            await c.send(b"PCM16 by mistake, not Opus")
            await send_opus(c, UTTERANCE)
            turn = (await c.event("turn_completed"))["turn"]
            assert turn["user_text"] == "turn on the lamp" and not c.closed

    run(main())


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"codec": "mp3"}, '\'codec\' must be "pcm16" or "opus"'),
        ({"output_codec": "flac"}, "'output_codec' must be"),
        ({"codec": "opus", "output_sample_rate": 44100}, "Opus voice is encoded at"),
    ],
)
def test_start_refuses_what_it_cannot_do(fields: dict[str, Any], says: str) -> None:
    async def main() -> None:
        async with live_server(make_providers()) as srv, agent_client(srv.ws_url) as c:
            await c.send({"type": "start", "input_sample_rate": 16000, **fields})
            err = await c.error("bad_message")
            assert says in err["message"]
            assert (await c.start())["output_codec"] == "pcm16"  # a good start still works

    run(main())


def test_a_voice_at_a_rate_opus_does_not_take_goes_out_at_the_next_one() -> None:
    async def main() -> None:
        providers = make_providers(stt=FakeSTT(["hi"]))
        providers.tts.sample_rate = 22050  # as Piper's voices
        async with live_server(providers) as srv, agent_client(srv.ws_url, auto_report=True) as c:
            c.opus_samples = 480
            assert (await c.start(codec="opus"))["output_sample_rate"] == 24000
            await send_opus(c, UTTERANCE)
            await c.event("turn_completed")
            assert not c.of("error") and c.samples_received >= 24000  # 1 s of voice, resampled

    run(main())
