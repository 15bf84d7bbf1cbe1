"""A conversation over Opus with the real models: a recorded question sent as 20 ms Opus packets at
real-time pace, the recogniser's words, and the agent's voice back as Opus, decoded and heard back
by the recogniser."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import pytest

from live_server import AgentClient, agent_client, live_server
from voxloop.agent.providers import Providers
from voxloop.audio import opus
from voxloop.audio.pcm import resample

from .conftest import LAMP, Arun, Corpus
from .helpers import missing_words, speech_dbfs, words

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not opus.available(), reason="PyAV without libopus: pip install av"),
]
log = logging.getLogger("tests.server")


async def stream_opus(c: AgentClient, audio: np.ndarray, bitrate: int = 24000) -> int:
    """The 16 kHz audio as 20 ms Opus packets, each sent once it would have been recorded; the
    bytes sent."""
    loop = asyncio.get_running_loop()
    enc = opus.OpusEncoder(16000, bitrate)
    packets = enc.encode(audio) + enc.flush()
    t0, sent = loop.time(), 0
    for i, p in enumerate(packets):
        if (wait := t0 + (i + 1) * 0.02 - loop.time()) > 0:
            await asyncio.sleep(wait)  # models the microphone, not a wait for the server
        await c.send(p)
        sent += len(p)
    return sent


def test_a_spoken_question_over_opus(arun: Arun[Any], providers: Providers, corpus: Corpus) -> None:
    clip = corpus.clip(LAMP)
    mic = np.concatenate([np.zeros(8000, np.float32), corpus.audio(LAMP), np.zeros(20 * 16000, np.float32)])

    async def main() -> None:
        async with live_server(providers) as srv, agent_client(srv.ws_url) as c:
            started = await c.start(codec="opus")
            rate = started["output_sample_rate"]
            assert started["input_codec"] == started["output_codec"] == "opus"
            c.opus_samples = rate // 50
            streaming = asyncio.get_running_loop().create_task(stream_opus(c, mic))
            try:
                turn = (await c.event("turn_completed", within=90))["turn"]
            finally:
                streaming.cancel()
                await asyncio.gather(streaming, return_exceptions=True)
            final = c.of("final_transcript")[0]["text"]
            assert not missing_words(final, [clip.transcript]), final
            assert not c.of("error"), c.of("error")

            spoken = " ".join(e["text"] for e in c.of("agent_speech"))
            assert spoken == turn["agent_text"] and len(words(spoken)) >= 2, spoken
            dec = opus.OpusDecoder()
            voice = resample(np.concatenate([dec.decode(f) for f in c.frames]), opus.DECODE_RATE, rate)
            assert speech_dbfs(voice, rate) > -35
            heard_back = (await providers.stt.transcribe(resample(voice, rate, 16000))).text
            said = set(words(spoken))
            assert len(said & set(words(heard_back))) >= len(said) / 2, (spoken, heard_back)
            voice_bytes = sum(map(len, c.frames)) / (len(c.frames) * 0.02)
            log.info("the voice over Opus: %.0f bytes/s (PCM16 at %d Hz: %d)", voice_bytes, rate, rate * 2)
            print(
                f"\nvoice over Opus: {voice_bytes:.0f} bytes/s vs PCM16 {rate * 2}; {spoken!r} -> {heard_back!r}"
            )
            assert voice_bytes < rate * 2 / 6

    arun(main())
