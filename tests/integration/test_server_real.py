"""The voice server with the real models, over a real socket: a recorded question streamed at
real-time pace like a microphone, the transcript, the agent's voice and the turn's timeline back."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import numpy as np
import pytest

from live_server import agent_client, live_server
from voxloop.agent.providers import Providers
from voxloop.agent.timeline import TurnRecord
from voxloop.audio.pcm import resample

from .conftest import LAMP, Arun, Corpus
from .helpers import missing_words, speech_dbfs, words

pytestmark = pytest.mark.integration
log = logging.getLogger("tests.server")
LEAD_S = 0.5


def test_a_spoken_question_over_the_socket_gets_words_voice_and_timeline(
    arun: Arun[Any], providers: Providers, corpus: Corpus
) -> None:
    clip = corpus.clip(LAMP)
    audio = corpus.audio(LAMP)
    _, speech_end = corpus.speech(LAMP)
    mic = np.concatenate([np.zeros(int(LEAD_S * 16000), np.float32), audio, np.zeros(20 * 16000, np.float32)])

    async def main() -> dict[str, Any]:
        async with live_server(providers) as srv, agent_client(srv.ws_url) as c:
            started = await c.start()
            rate = started["output_sample_rate"]
            streaming = asyncio.get_running_loop().create_task(c.stream(mic))
            try:
                turn = (await c.event("turn_completed", within=90))["turn"]
            finally:
                streaming.cancel()
                await asyncio.gather(streaming, return_exceptions=True)

            final = c.of("final_transcript")[0]["text"]
            assert not missing_words(final, [clip.transcript]), final
            assert c.of("partial_transcript"), "no partial transcript while the user spoke"
            assert turn["user_text"] == final

            # the timeline: every field of turns.jsonl, every stage measured
            assert set(turn) == set(TurnRecord(turn_id=1).to_dict())
            missing = [k for k, v in turn.items() if v is None]
            assert not missing, f"stages without a time: {missing}: {turn}"
            assert turn["v2v_ms"] >= turn["endpoint_ms"] > 0 and not turn["interrupted"]

            # the voice: what the agent said, audibly
            spoken = " ".join(e["text"] for e in c.of("agent_speech"))
            assert spoken == turn["agent_text"] and len(words(spoken)) >= 2, spoken
            voice = c.pcm()
            assert len(voice) / rate >= 0.5 and speech_dbfs(voice, rate) > -35
            heard_back = (await providers.stt.transcribe(resample(voice, rate, 16000))).text
            said = set(words(spoken))
            assert len(said & set(words(heard_back))) >= len(said) / 2, (spoken, heard_back)

            # voice to voice as the client saw it: the frame holding the last word sent -> first audio
            assert c.stream_t0 is not None and c.first_audio_at is not None
            end_frame = math.ceil((LEAD_S + speech_end) * 16000 / 320) * 320
            client_v2v = (c.first_audio_at - (c.stream_t0 + end_frame / 16000)) * 1000
            log.info("v2v through the socket: server %.0f ms, client %.0f ms", turn["v2v_ms"], client_v2v)
            print(
                f"\nv2v through the socket: server {turn['v2v_ms']:.0f} ms, client {client_v2v:.0f} ms; {turn}"
            )
            assert client_v2v > 0
            return turn

    arun(main())
