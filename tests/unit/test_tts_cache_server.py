"""The TTS cache in a real server (uvicorn on a loopback port, fake models), built as `voxloop
serve` builds it: a line asked for again over OpenAI's /v1/audio/speech is served from the cache
(the voice is not asked again, the audio is the same), and /metrics counts the hits and misses."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import openai

from fakes import FakeLLM, FakeSTT, FakeTTS, FakeVAD
from live_server import http_get, live_server
from voxloop.agent.providers import Providers
from voxloop.config import AgentConfig, TTSCacheConfig
from voxloop.providers.tts.cache import CachedTTS, with_cache

LINE = "Thanks for calling. How can I help you today?"


def test_a_line_asked_for_again_over_the_speech_endpoint_comes_from_the_cache(tmp_path: Path) -> None:
    voice = FakeTTS(seconds_per_word=0.2)
    cfg = AgentConfig()
    cfg.tts.cache = TTSCacheConfig(location=str(tmp_path / "tts"))
    providers = Providers(FakeVAD(), FakeSTT(), FakeLLM(), with_cache(voice, cfg))

    async def main() -> None:
        async with live_server(providers, config=cfg) as srv:
            client = openai.AsyncOpenAI(base_url=f"{srv.http_url}/v1", api_key="unused", max_retries=0)
            bodies = []
            for _ in range(3):  # a reply line: stored the second time it is said, a hit the third
                r = await client.audio.speech.create(
                    model="tts-1", voice="alloy", input=LINE, response_format="pcm"
                )
                bodies.append(np.frombuffer(r.content, "<i2"))
            await client.close()
            tts = providers.tts
            assert isinstance(tts, CachedTTS)
            # the endpoint asks the voice for one sentence at a time
            assert (tts.stats.misses, tts.stats.hits) == (4, 2)
            said = [t for t in voice.texts if t not in ("One moment.", "Give me a second.")]
            assert said == ["Thanks for calling.", "How can I help you today?"] * 2
            assert len(bodies[2]) == len(bodies[0]) and np.max(np.abs(bodies[2] - bodies[0])) <= 1
            status, _, body = await http_get(srv.port, "/metrics")
            assert status == 200 and b'voxloop_tts_cache_requests_total{result="hit"}' in body

    asyncio.run(asyncio.wait_for(main(), 60))
