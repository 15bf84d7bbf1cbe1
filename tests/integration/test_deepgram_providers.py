"""The Deepgram providers (`--stt deepgram`, `--tts deepgram`) against voxloop's own Deepgram-
compatible endpoints, served by a real voxloop server on loopback with the real local models, on
real speech from the corpus; faults put in by the fault proxy (bench/faultproxy.py) between them.

- a corpus clip streamed like a microphone through the Deepgram recogniser gives the words the
  local recogniser gives;
- the same with the socket dropped mid-turn: the audio is replayed on a new socket, no word lost;
- speech over the socket, and with the socket stalled: over REST, the whole sentence (transcribed
  back by the local recogniser).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from fakes import FakeLLM
from live_server import live_server
from voxloop.agent.providers import Providers
from voxloop.audio.pcm import resample
from voxloop.bench.faultproxy import Fault, FaultProxy
from voxloop.config import DeepgramConfig, STTConfig, TTSConfig
from voxloop.providers.base import STT, TTS, VAD, Samples
from voxloop.providers.stt.deepgram import DeepgramSTT
from voxloop.providers.tts.deepgram import DeepgramTTS

from .conftest import Arun, Corpus
from .helpers import missing_words

pytestmark = [pytest.mark.integration]
FRAME = 512  # 32 ms at 16 kHz, as the listener pushes
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


@pytest.fixture(scope="module")
def dg_providers(vad: VAD, stt: STT, tts: TTS) -> Providers:
    return Providers(vad, stt, FakeLLM(), tts)  # these endpoints use no language model


@pytest.fixture(scope="module")
def clip(corpus: Corpus) -> Iterator[tuple[str, Samples]]:
    """A clip of 4-9 s with at least 8 words (the first such, in id order), with silence around it."""
    for cid in sorted(corpus.clips):
        c = corpus.clips[cid]
        audio = corpus.audio(cid)
        if 4 * 16000 <= len(audio) <= 9 * 16000 and len(c.transcript.split()) >= 8:
            pad = np.zeros(8000, np.float32)
            yield cid, np.concatenate([pad, audio, pad, pad])
            return
    pytest.skip("no clip of 4-9 s with 8 words in the corpus")


def dg_config(url: str, **kw: Any) -> DeepgramConfig:
    # generous deadlines: the server shares 2 cores with the models (and other test runs)
    return DeepgramConfig(base_url=url, api_key="local", final_timeout_s=6.0, **kw)


async def listen(url: str, audio: Samples) -> tuple[str, DeepgramSTT]:
    """`audio` pushed like a microphone (a frame once it would have been recorded), then the final."""
    # no hedge: a second socket racing a slow first one would take the fault's socket away
    # (the hedge has its own tests in tests/unit/test_deepgram_hedge.py)
    stt = DeepgramSTT(STTConfig(provider="deepgram", deepgram=dg_config(url, stall_hedge_after_s=60.0)))
    await stt.load()
    s = stt.stream()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        for i in range(0, len(audio), FRAME):
            if (wait := t0 + (i + FRAME) / 16000 - loop.time()) > 0:
                await asyncio.sleep(wait)  # models the microphone, not a wait for the server
            await s.push(audio[i : i + FRAME])
        return (await s.finalize()).text, stt
    finally:
        await s.aclose()


def test_the_deepgram_recogniser_hears_a_clip_and_loses_no_word_when_its_socket_drops(
    arun: Arun[Any], dg_providers: Providers, clip: tuple[str, Samples]
) -> None:
    cid, audio = clip

    async def go() -> tuple[str, str, DeepgramSTT]:
        async with live_server(dg_providers) as srv, FaultProxy(("127.0.0.1", srv.port)) as proxy:
            clean, _ = await listen(proxy.url(), audio)
            # drop the next socket once ~2 s of its audio went up (64 kB of 16-bit audio)
            drop = proxy.inject(Fault("drop", "up", after_bytes=64_000, scope="next"))
            faulted, stt = await listen(proxy.url(), audio)
            assert drop.fired.is_set()
            return clean, faulted, stt

    clean, faulted, stt = arun(go())
    print(f"{cid}: clean {clean!r}\n{cid}: faulted {faulted!r}\n{dict(stt.counters)}")
    assert len(clean.split()) >= 6
    # the drop was recovered from; a busy machine may add a reconnect of its own (a slow socket
    # taken for stalled), which must lose nothing either
    assert stt.counters["reconnect"] >= 1 and stt.counters["replay"] >= 1
    assert missing_words(faulted, [clean]) == []


@pytest.mark.parametrize("hedge_s", [1.0, 60.0], ids=["hedged", "deadline"])
def test_the_deepgram_voice_speaks_over_its_socket_and_over_rest_when_the_socket_stalls(
    arun: Arun[Any], dg_providers: Providers, stt: STT, hedge_s: float
) -> None:
    """A socket that gives no audio: REST races it after `tts_hedge_after_s` (hedged), or takes
    over when the 3 s first-audio deadline closes it (deadline)."""

    async def speak(tts: DeepgramTTS) -> Samples:
        chunks = [c async for c in tts.synthesize(SENTENCE)]
        return np.concatenate(chunks)

    async def go() -> tuple[Samples, Samples, DeepgramTTS]:
        async with live_server(dg_providers) as srv, FaultProxy(("127.0.0.1", srv.port)) as proxy:
            cfg = dg_config(proxy.url(), first_byte_timeout_s=3.0, tts_hedge_after_s=hedge_s)
            tts = DeepgramTTS(TTSConfig(provider="deepgram", deepgram=cfg))
            try:
                over_socket = await speak(tts)
                await tts.aclose()  # the next request opens a new socket, which stalls
                stall = proxy.inject(Fault("stall", "down", on_response=True, scope="next"))
                over_rest = await speak(tts)
                assert stall.fired.is_set()
                return over_socket, over_rest, tts
            finally:
                proxy.release()
                await tts.aclose()

    over_socket, over_rest, tts = arun(go())
    if hedge_s < 3.0:
        assert tts.counters["hedge_won"] >= 1 and tts.counters["rest"] >= 1  # REST won the race
    else:
        assert tts.counters["stall"] == 1 and tts.counters["rest"] == 1
    for audio in (over_socket, over_rest):
        heard = arun(stt.transcribe(resample(audio, tts.sample_rate, stt.sample_rate))).text
        print(f"heard {heard!r}")
        assert len(missing_words(heard, [SENTENCE])) <= 2
    assert abs(len(over_rest) - len(over_socket)) < tts.sample_rate // 2
