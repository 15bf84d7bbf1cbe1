"""The Deepgram-compatible endpoints with the real models, driven by Deepgram's official Python SDK
(unmodified, pointed at a voxloop server on loopback): corpus clips streamed live at real-time
pace, three clients at once; the same recordings prerecorded; speech that, transcribed back, says
what was asked; bad input beside a stream that goes on.

Transcripts are held to the recogniser's own word error rate on the same clips: the live endpoint
to the loop's Listener run in-process (the path it shares), the prerecorded one to the offline
decode.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import io
import logging
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment
from deepgram.speak.v1.types import SpeakV1Text
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from fakes import FakeLLM
from live_server import LiveServer, live_server
from voxloop.agent.listener import Listener
from voxloop.agent.providers import Providers
from voxloop.audio.g711 import mulaw_encode
from voxloop.audio.pcm import resample, to_int16
from voxloop.bench.corpus import speech_bounds, wer
from voxloop.config import AgentConfig
from voxloop.providers.base import STT, TTS, VAD, Samples, Transcript
from voxloop.server.compat.openai_audio import SpeechEncoder, decode_upload

from .conftest import LAMP, Arun, Corpus
from .helpers import missing_words

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings(
        "ignore:websockets.* is deprecated:DeprecationWarning",
        "ignore::DeprecationWarning:websockets.legacy.*",
    ),
]
log = logging.getLogger("tests.deepgram")
LEAD_S, TAIL_S = 0.5, 2.0  # the tail: more than the longest end-of-turn silence (1.5 s)
CHUNK_MS = 20


@pytest.fixture(scope="module")
def dg_providers(vad: VAD, stt: STT, tts: TTS) -> Providers:
    return Providers(vad, stt, FakeLLM(), tts)  # these endpoints use no language model


def short_clips(corpus: Corpus, n: int) -> list[str]:
    """`n` of the shortest clips of 2.5 s or more, each from another speaker (stable order)."""
    by_length = sorted(corpus.clips, key=lambda c: (len(corpus.audio(c)), c))
    chosen: list[str] = []
    speakers: set[str] = set()
    for cid in by_length:
        who = cid.split("-")[0].split("_")[0]
        if who not in speakers and len(corpus.audio(cid)) >= 2.5 * 16000:
            chosen.append(cid)
            speakers.add(who)
        if len(chosen) == n:
            break
    return chosen


def padded(audio: Samples) -> Samples:
    return np.concatenate(
        [np.zeros(int(LEAD_S * 16000), np.float32), audio, np.zeros(int(TAIL_S * 16000), np.float32)]
    )


class Sdk:
    """The official client pointed at the live server, with its connection pool closed after."""

    def __init__(self, srv: LiveServer, key: str = "local") -> None:
        env = DeepgramClientEnvironment(
            base=srv.http_url, production=srv.http_url.replace("http://", "ws://"), agent="", agent_rest=""
        )
        self.http = httpx.AsyncClient(timeout=120)
        self.client = AsyncDeepgramClient(api_key=key, environment=env, httpx_client=self.http)

    async def aclose(self) -> None:
        await self.http.aclose()


async def stream_clip(
    sdk: Sdk, audio: Samples, *, encoding: str = "linear16", rate: int = 16000
) -> list[Any]:
    """`audio` (16 kHz) sent like a microphone, in real time, then CloseStream; every message back."""
    x = resample(audio, 16000, rate)
    step = rate * CHUNK_MS // 1000
    ogg = SpeechEncoder("opus", rate) if encoding == "opus" else None  # pages as an encoder fills them
    loop = asyncio.get_running_loop()
    messages: list[Any] = []
    async with sdk.client.listen.v1.connect(
        model="nova-3", encoding=encoding, sample_rate=rate, interim_results=True, smart_format=True
    ) as sock:

        async def read() -> None:
            async for m in sock:
                messages.append(m)

        reader = loop.create_task(read())
        t0 = loop.time()
        for i in range(0, len(x), step):
            due = t0 + (i + step) / rate
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)  # models the microphone, not a wait for the server
            chunk = x[i : i + step]
            if ogg is not None:
                if data := ogg.push(chunk) + (ogg.finish() if i + step >= len(x) else b""):
                    await sock.send_media(data)
            else:
                await sock.send_media(
                    mulaw_encode(chunk) if encoding == "mulaw" else to_int16(chunk).tobytes()
                )
        await sock.send_close_stream()
        await asyncio.wait_for(reader, 60)
    return messages


def finals_text(messages: list[Any]) -> str:
    return " ".join(
        m.channel.alternatives[0].transcript
        for m in messages
        if getattr(m, "type", None) == "Results" and m.is_final and m.channel.alternatives[0].transcript
    )


async def listener_text(providers: Providers, audio: Samples) -> str:
    """The loop's own Listener on the same audio, in-process, as fast as it decodes."""
    listener = Listener(providers.vad, providers.stt, AgentConfig())
    try:
        return " ".join(
            [x.text async for x in listener.listen(padded(audio), 16000) if isinstance(x, Transcript)]
        )
    finally:
        await listener.aclose()


def same_words(live: list[Any], other: list[Any], shift: float) -> list[tuple[str, float, float]]:
    """The words two transcripts share, matched in order: (word, its start in each), `other`'s
    moved `shift` seconds later."""
    a, b = [w.word for w in live], [w.word for w in other]
    blocks = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks()
    return [(a[i + k], live[i + k].start, other[j + k].start + shift) for i, j, n in blocks for k in range(n)]


def test_live_corpus_clips_three_clients_at_once_interim_and_final_within_the_recognisers_wer(
    arun: Arun[Any], dg_providers: Providers, corpus: Corpus
) -> None:
    ids = short_clips(corpus, 6)
    refs = [corpus.clip(c).transcript for c in ids]

    async def main() -> tuple[list[list[Any]], list[Any]]:
        async with live_server(dg_providers) as srv:
            sdk = Sdk(srv)
            try:
                out: list[list[Any]] = []
                for k in range(0, len(ids), 3):  # three streams at once share the models
                    batch = ids[k : k + 3]
                    out += await asyncio.gather(*(stream_clip(sdk, padded(corpus.audio(c))) for c in batch))
                media = sdk.client.listen.v1.media  # the same clips prerecorded: their word times
                pre = [
                    await media.transcribe_file(request=corpus.clip(c).path.read_bytes(), model="nova-3")
                    for c in ids
                ]
                return out, pre
            finally:
                await sdk.aclose()

    runs, pre = arun(main())
    hyps = [finals_text(m) for m in runs]
    own = [arun(listener_text(dg_providers, corpus.audio(c))) for c in ids]
    for cid, ref, hyp, messages, answer in zip(ids, refs, hyps, runs, pre, strict=True):
        log.info("%s\n  ref: %s\n  hyp: %s", cid, ref, hyp)
        kinds = [getattr(m, "type", None) for m in messages]
        assert kinds[-1] == "Metadata", kinds
        results = [m for m in messages if getattr(m, "type", None) == "Results"]
        assert any(not r.is_final for r in results), f"{cid}: no interim result while the person spoke"
        finals = [r for r in results if r.is_final and r.channel.alternatives[0].transcript]
        assert finals and all(r.speech_final for r in finals), f"{cid}: finals not at endpoints"
        words = [w for r in finals for w in r.channel.alternatives[0].words]
        start, end = speech_bounds(corpus.audio(cid))
        assert abs(words[0].start - (LEAD_S + start)) < 0.6 and abs(words[-1].end - (LEAD_S + end)) < 0.6
        # the recogniser's own word times (not spread over the speech): in order, inside the audio,
        # and where the prerecorded endpoint (offline decode and alignment) puts the same words
        seconds = len(padded(corpus.audio(cid))) / 16000
        starts = [w.start for w in words]
        assert starts == sorted(starts) and all(0 <= w.start <= w.end <= seconds for w in words), words
        assert all(0 < w.confidence <= 1 for w in words) and any(w.confidence < 1 for w in words)
        offline = answer.results.channels[0].alternatives[0].words
        pairs = same_words(words, offline, LEAD_S)  # the prerecorded file has no lead silence
        log.info("%s: live vs prerecorded word starts %s", cid, [(w, round(a - b, 2)) for w, a, b in pairs])
        assert len(pairs) >= 0.7 * len(words), (words, offline)
        assert all(abs(a - b) <= 0.5 for _, a, b in pairs), pairs
    endpoint_wer, listener_wer = wer(refs, hyps), wer(refs, own)
    log.info("live /v1/listen WER %.3f, the Listener in-process %.3f", endpoint_wer, listener_wer)
    assert endpoint_wer <= listener_wer + 0.05, (endpoint_wer, listener_wer)


def test_live_ogg_opus_streamed_as_an_encoder_makes_it(
    arun: Arun[Any], dg_providers: Providers, corpus: Corpus
) -> None:
    async def main() -> list[Any]:
        async with live_server(dg_providers) as srv:
            sdk = Sdk(srv)
            try:
                return await stream_clip(sdk, padded(corpus.audio(LAMP)), encoding="opus", rate=48000)
            finally:
                await sdk.aclose()

    text = finals_text(arun(main()))
    assert wer([corpus.clip(LAMP).transcript], [text]) <= 0.2, text


def test_telephone_audio_mulaw_8k_and_bad_input_beside_a_live_stream(
    arun: Arun[Any], dg_providers: Providers, corpus: Corpus
) -> None:
    clip = corpus.clip(LAMP)

    async def main() -> tuple[list[Any], int, str]:
        async with live_server(dg_providers) as srv:
            sdk = Sdk(srv)
            try:
                live = asyncio.get_running_loop().create_task(
                    stream_clip(sdk, padded(corpus.audio(LAMP)), encoding="mulaw", rate=8000)
                )
                with pytest.raises(ApiError) as caught:  # meanwhile, another client asks for 3 channels
                    async with sdk.client.listen.v1.connect(
                        model="nova-3", encoding="linear16", sample_rate=16000, channels=3
                    ):
                        pass
                async with sdk.client.listen.v1.connect(
                    model="nova-3", encoding="linear16", sample_rate=16000
                ) as bad:
                    await bad._send("{garbage")
                    await bad.send_close_stream()
                    got = [m async for m in bad]
                return await live, caught.value.status_code, got[0].variant
            finally:
                await sdk.aclose()

    messages, status, variant = arun(main())
    assert status == 400 and variant == "SchemaError"
    text = finals_text(messages)
    assert not missing_words(text, ["turn on", "lamp"]), text
    assert wer([clip.transcript], [text]) <= 0.5, text


def test_prerecorded_corpus_files_with_word_timings_utterances_and_paragraphs(
    arun: Arun[Any], dg_providers: Providers, corpus: Corpus
) -> None:
    ids = short_clips(corpus, 3)
    refs = [corpus.clip(c).transcript for c in ids]

    async def main() -> list[Any]:
        async with live_server(dg_providers) as srv:
            sdk = Sdk(srv)
            try:
                media = sdk.client.listen.v1.media
                return list(
                    await asyncio.gather(
                        *(
                            media.transcribe_file(
                                request=corpus.clip(c).path.read_bytes(),
                                model="nova-3",
                                punctuate=True,
                                utterances=True,
                                paragraphs=True,
                            )
                            for c in ids
                        )
                    )
                )
            finally:
                await sdk.aclose()

    answers = arun(main())
    hyps = [a.results.channels[0].alternatives[0].transcript for a in answers]
    offline = [arun(dg_providers.stt.transcribe(corpus.audio(c))).text for c in ids]
    for cid, answer in zip(ids, answers, strict=True):
        alt = answer.results.channels[0].alternatives[0]
        start, end = speech_bounds(corpus.audio(cid))
        starts = [w.start for w in alt.words]
        assert starts == sorted(starts) and alt.words[-1].end <= answer.metadata.duration + 0.05
        assert abs(alt.words[0].start - start) < 0.5 and abs(alt.words[-1].end - end) < 0.6, (
            cid,
            start,
            end,
            [(w.word, w.start, w.end) for w in alt.words],
        )
        assert 0.0 < alt.confidence <= 1.0
        assert " ".join(u.transcript for u in answer.results.utterances).split() == alt.transcript.split()
        assert alt.paragraphs.paragraphs
    endpoint_wer, offline_wer = wer(refs, hyps), wer(refs, offline)
    log.info("prerecorded /v1/listen WER %.3f, offline decode %.3f", endpoint_wer, offline_wer)
    assert endpoint_wer <= offline_wer + 0.05, (endpoint_wer, offline_wer)


def test_speech_socket_and_rest_say_what_was_asked(arun: Arun[Any], dg_providers: Providers) -> None:
    asked = ["Please turn on the living room lamp.", "The weather will be sunny tomorrow morning."]

    async def main() -> tuple[bytes, list[int], bytes, bytes, bytes]:
        async with live_server(dg_providers) as srv:
            sdk = Sdk(srv)
            try:
                async with sdk.client.speak.v1.connect(
                    model="aura-2-thalia-en", encoding="linear16", sample_rate=16000
                ) as sock:
                    await sock.send_text(SpeakV1Text(text=asked[0]))
                    await sock.send_flush()
                    await sock.send_close()
                    got = [m async for m in sock]
                audio = b"".join(m for m in got if isinstance(m, bytes))
                flushed = [m.sequence_id for m in got if getattr(m, "type", None) == "Flushed"]
                speak = sdk.client.speak.v1.audio
                wav = b"".join(
                    [
                        c
                        async for c in speak.generate(
                            text=asked[1], model="tts-1", encoding="linear16", container="wav"
                        )
                    ]
                )
                mulaw = b"".join(
                    [
                        c
                        async for c in speak.generate(
                            text=asked[0], model="aura-asteria-en", encoding="mulaw", sample_rate=8000
                        )
                    ]
                )
                mp3 = b"".join([c async for c in speak.generate(text=asked[1], model="aura-2-thalia-en")])
                return audio, flushed, wav, mulaw, mp3
            finally:
                await sdk.aclose()

    audio, flushed, wav, mulaw, mp3 = arun(main())
    assert flushed == [0]
    stt = dg_providers.stt
    heard_ws = arun(stt.transcribe(np.frombuffer(audio, "<i2").astype(np.float32) / 32768)).text
    x, rate = sf.read(io.BytesIO(wav), dtype="float32")
    heard_rest = arun(stt.transcribe(resample(x, rate, 16000))).text
    from voxloop.audio.g711 import mulaw_decode

    heard_mulaw = arun(stt.transcribe(resample(mulaw_decode(mulaw), 8000, 16000))).text
    heard_mp3 = arun(stt.transcribe(decode_upload(mp3, 16000))).text  # Deepgram's REST default
    log.info("spoken back: %r / %r / %r / %r", heard_ws, heard_rest, heard_mulaw, heard_mp3)
    assert wer([asked[0]], [heard_ws]) <= 0.25, heard_ws
    assert wer([asked[1]], [heard_rest]) <= 0.25, heard_rest
    assert wer([asked[0]], [heard_mulaw]) <= 0.35, heard_mulaw
    assert wer([asked[1]], [heard_mp3]) <= 0.25, heard_mp3


def test_live_rest_and_speech_at_once_never_stall_the_event_loop_and_a_silent_stream_times_out(
    arun: Arun[Any], dg_providers: Providers, corpus: Corpus
) -> None:
    """A live stream in real time while a long recording is transcribed, speech is made over REST,
    and a fourth client sends nothing: the loop's longest stall stays short
    (the decodes and the voice run in their worker threads), the live words are right, and the
    silent stream is closed after Deepgram's 10 s with NET-0001."""
    long_id = max(corpus.clips, key=lambda c: len(corpus.audio(c)))
    stall: list[float] = []

    async def probe(stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            t = loop.time()
            await asyncio.sleep(0.01)
            stall.append(loop.time() - t - 0.01)

    async def silent(srv: LiveServer) -> tuple[int | None, str, float]:
        loop = asyncio.get_running_loop()
        url = f"ws://127.0.0.1:{srv.port}/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000"
        async with connect(url) as ws:
            t0 = loop.time()
            with contextlib.suppress(ConnectionClosed):
                async for _ in ws:
                    pass
            return ws.close_code, ws.close_reason or "", loop.time() - t0

    async def main() -> tuple[list[Any], Any, bytes, tuple[int | None, str, float]]:
        async with live_server(dg_providers) as srv:
            sdk = Sdk(srv)
            stop = asyncio.Event()
            prober = asyncio.get_running_loop().create_task(probe(stop))
            try:
                speak = sdk.client.speak.v1.audio

                async def rest_speech() -> bytes:
                    return b"".join(
                        [c async for c in speak.generate(text="Good morning to you all.", model="tts-1")]
                    )

                live, recording, voice, quiet = await asyncio.gather(
                    stream_clip(sdk, padded(corpus.audio(LAMP))),
                    sdk.client.listen.v1.media.transcribe_file(
                        request=corpus.clip(long_id).path.read_bytes(), model="nova-3"
                    ),
                    rest_speech(),
                    silent(srv),
                )
                return live, recording, voice, quiet
            finally:
                stop.set()
                await prober
                await sdk.aclose()

    live, recording, voice, (code, reason, waited) = arun(main())
    log.info("longest event-loop stall %.0f ms over %d probes", 1000 * max(stall), len(stall))
    assert max(stall) < 0.2, f"the event loop stalled for {max(stall):.3f} s"
    assert not missing_words(finals_text(live), ["turn on", "lamp"]), finals_text(live)
    ref = corpus.clip(long_id).transcript
    assert wer([ref], [recording.results.channels[0].alternatives[0].transcript]) <= 0.35
    assert len(decode_upload(voice, 16000)) > 16000  # over a second of speech (MP3, Deepgram's default)
    assert code == 1011 and reason.startswith("NET-0001") and 9.5 <= waited <= 13.0, (code, reason, waited)
