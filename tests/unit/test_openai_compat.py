"""The OpenAI-compatible endpoints with fake models, over a real socket, driven by the official
`openai` client (unmodified, its base URL pointed at the server): shapes, formats, errors, limits."""

from __future__ import annotations

import asyncio
import io
import json
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pytest
import soundfile as sf

from conftest import make_providers, tone
from fakes import FakeLLM, FakeSTT, FakeTTS
from live_server import LiveServer, agent_client, live_server
from voxloop.agent.providers import Providers
from voxloop.providers.base import BatchOptions, Message, Samples, Transcript
from voxloop.server.compat.names import MODEL_NAMES, kind_of
from voxloop.server.compat.openai_chat import StopFilter
from voxloop.server.compat.openai_transcribe import srt, vtt
from voxloop.server.settings import ServerSettings

openai = pytest.importorskip("openai")
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


@asynccontextmanager
async def serving(providers: Providers, settings: ServerSettings | None = None) -> AsyncIterator[Served]:
    """A live server and a maker of official clients pointed at it (all closed on the way out)."""
    async with live_server(providers, settings) as srv:
        served = Served(srv)
        try:
            yield served
        finally:
            for c in served.clients:
                await c.close()


@dataclass
class Served:
    srv: LiveServer
    clients: list[Any] = field(default_factory=list)

    @property
    def state(self) -> Any:
        return self.srv.state

    def client(self, key: str = "unused", **kw: Any) -> Any:
        c = openai.AsyncOpenAI(base_url=f"{self.srv.http_url}/v1", api_key=key, max_retries=0, **kw)
        self.clients.append(c)
        return c


def wav_bytes(audio: np.ndarray, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@dataclass
class ClosingLLM(FakeLLM):
    """Tells (through `closed`) when a generation was closed before its end."""

    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        return self._watched(super().stream(messages))

    async def _watched(self, pieces: AsyncGenerator[str, None]) -> AsyncGenerator[str, None]:
        try:
            async for p in pieces:
                yield p
        finally:
            await pieces.aclose()
            if self.calls[-1].closed_early:
                self.closed.set()


# -- the name table ---------------------------------------------------------------------------------
def test_the_name_table_maps_service_names_and_local_names_to_kinds() -> None:
    from voxloop.config import AgentConfig

    cfg = AgentConfig()
    assert kind_of("whisper-1", cfg) == kind_of("nova-3", cfg) == "stt"
    assert kind_of("tts-1", cfg) == kind_of("aura-2-thalia-en", cfg) == "tts"
    assert kind_of("gpt-4o-mini", cfg) == kind_of(cfg.llm.model, cfg) == "llm"
    assert kind_of("dall-e-3", cfg) is None
    assert set(MODEL_NAMES.values()) == {"stt", "tts", "llm"}


def test_models_are_listed_and_unknown_ones_are_not_found() -> None:
    async def main() -> None:
        async with serving(make_providers()) as srv:
            c = srv.client()
            ids = [m.id async for m in c.models.list()]
            assert {"whisper-1", "tts-1", "gpt-4o-mini", "qwen2.5-1.5b"} <= set(ids)
            assert (await c.models.retrieve("gpt-4o-mini")).owned_by == "voxloop"
            with pytest.raises(openai.NotFoundError) as e:
                await c.models.retrieve("dall-e-3")
            assert e.value.code == "model_not_found"

    run(main())


# -- transcription ----------------------------------------------------------------------------------
def test_transcriptions_in_every_response_format() -> None:
    text = "Turn on the living room lamp."
    stt = FakeSTT(finals=[text] * 5)
    audio = wav_bytes(tone(2.0))

    async def main() -> None:
        async with serving(make_providers(stt=stt)) as srv:
            c = srv.client()
            tr = c.audio.transcriptions
            got = await tr.create(model="whisper-1", file=("a.wav", audio))
            assert got.text == text
            assert (
                await tr.create(model="whisper-1", file=("a.wav", audio), response_format="text")
            ) == text + "\n"
            v = await tr.create(
                model="gpt-4o-mini-transcribe",
                file=("a.wav", audio),
                response_format="verbose_json",
                timestamp_granularities=["word", "segment"],
            )
            assert v.text == text and v.duration == pytest.approx(2.0, abs=0.01) and v.language == "english"
            assert v.segments and v.segments[0].end == pytest.approx(2.0, abs=0.01)
            assert v.words == []  # the fake recogniser gives no timings
            s = await tr.create(model="whisper-1", file=("a.wav", audio), response_format="srt")
            assert s.startswith("1\n00:00:00,000 --> 00:00:02,000\n" + text)
            w = await tr.create(model="whisper-1", file=("a.wav", audio), response_format="vtt")
            assert w.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n" + text)

    run(main())


class RecordingSTT(FakeSTT):
    """Keeps the options each whole-recording transcription was asked with."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.options: list[BatchOptions] = []

    async def transcribe_batch(self, audio: Samples, options: BatchOptions) -> Transcript:
        self.options.append(options)
        return Transcript(self.text, True, len(audio) / self.sample_rate)


def test_prompt_temperature_and_timings_reach_the_recogniser() -> None:
    stt = RecordingSTT("Qorvex ships today.")
    audio = wav_bytes(tone(1.0))

    async def main() -> None:
        async with serving(make_providers(stt=stt)) as srv:
            tr = srv.client().audio.transcriptions
            got = await tr.create(
                model="whisper-1", file=("a.wav", audio), prompt="Qorvex, Dvořák", temperature=0.4
            )
            assert got.text == "Qorvex ships today."
            await tr.create(model="whisper-1", file=("a.wav", audio), response_format="srt")

    run(main())
    assert stt.options == [
        BatchOptions(context="Qorvex, Dvořák", timings=False, temperature=0.4),
        BatchOptions(context="", timings=True, temperature=0.0),
    ]


def test_srt_and_vtt_number_and_time_each_segment() -> None:
    from voxloop.providers.base import Segment, Transcript

    t = Transcript(
        "One. Two.", True, 3725.5, segments=(Segment("One.", 0.0, 1.25), Segment("Two.", 3723.0, 3725.5))
    )
    assert srt(t) == "1\n00:00:00,000 --> 00:00:01,250\nOne.\n\n2\n01:02:03,000 --> 01:02:05,500\nTwo.\n\n"
    assert (
        vtt(t) == "WEBVTT\n\n00:00:00.000 --> 00:00:01.250\nOne.\n\n01:02:03.000 --> 01:02:05.500\nTwo.\n\n"
    )


def test_bad_transcription_requests_get_openai_errors_and_the_server_lives_on() -> None:
    stt = FakeSTT(finals=["fine"])
    audio = wav_bytes(tone(0.5))

    async def main() -> None:
        async with serving(make_providers(stt=stt)) as srv:
            c = srv.client()
            tr = c.audio.transcriptions
            with pytest.raises(openai.NotFoundError):
                await tr.create(model="whisper-9", file=("a.wav", audio))
            with pytest.raises(openai.BadRequestError) as e:
                await tr.create(model="whisper-1", file=("a.wav", b"not audio at all"))
            assert e.value.param == "file"
            with pytest.raises(openai.BadRequestError) as e:
                await tr.create(model="whisper-1", file=("a.wav", audio), response_format="diarized_json")
            assert e.value.param == "response_format"
            with pytest.raises(openai.BadRequestError) as e:
                await tr.create(model="whisper-1", file=("a.wav", audio), language="fr")
            assert e.value.param == "language"
            with pytest.raises(openai.BadRequestError):
                await tr.create(model="whisper-1", file=("a.wav", audio), temperature=3)
            assert (await tr.create(model="whisper-1", file=("a.wav", audio))).text == "fine"
            assert srv.state.active == 0

    run(main())


# -- speech -----------------------------------------------------------------------------------------
def test_speech_as_pcm_wav_and_mp3_is_the_voices_audio_at_24_khz() -> None:
    tts = FakeTTS(seconds_per_word=0.25)
    text = "one two three four"  # 1.0 s of the fake voice

    async def main() -> None:
        async with serving(make_providers(tts=tts)) as srv:
            c = srv.client()
            sp = c.audio.speech
            pcm = (await sp.create(model="tts-1", voice="alloy", input=text, response_format="pcm")).content
            x = np.frombuffer(pcm, "<i2")
            assert abs(len(x) - 24000) < 240 and np.abs(x).max() > 5000
            wav = (
                await sp.create(model="gpt-4o-mini-tts", voice="nova", input=text, response_format="wav")
            ).content
            assert wav[:4] == b"RIFF" and wav[8:16] == b"WAVEfmt "
            channels, rate = struct.unpack("<HI", wav[22:28])
            assert (channels, rate) == (1, 24000) and wav[36:40] == b"data"
            assert abs(len(wav[44:]) // 2 - 24000) < 240
            mp3 = (await sp.create(model="tts-1-hd", voice="echo", input=text)).content  # default mp3
            decoded, mp3_rate = sf.read(io.BytesIO(mp3), dtype="float32")
            assert mp3_rate == 24000 and abs(len(decoded) - 24000) < 2400
            for fmt in ("opus", "aac", "flac"):
                body = (
                    await sp.create(model="tts-1", voice="alloy", input=text, response_format=fmt)
                ).content
                seconds = _seconds_of(bytes(body))
                assert seconds == pytest.approx(1.0, abs=0.1), fmt

    run(main())


def _seconds_of(data: bytes) -> float:
    av = pytest.importorskip("av")
    with av.open(io.BytesIO(data)) as container:
        rate = container.streams.audio[0].rate
        return sum(frame.samples for frame in container.decode(audio=0)) / rate


def test_speech_streams_while_it_is_synthesized() -> None:
    tts = FakeTTS(seconds_per_word=0.25, chunk_s=0.25, delay=0.0)

    async def main() -> None:
        async with serving(make_providers(tts=tts)) as srv:
            c = srv.client()
            text = " ".join(["word"] * 40)  # 10 s of audio in 40 chunks
            async with c.audio.speech.with_streaming_response.create(
                model="tts-1", voice="alloy", input=text, response_format="pcm"
            ) as r:
                parts = [p async for p in r.iter_bytes()]
            assert sum(map(len, parts)) // 2 == pytest.approx(240000, abs=2400)
            assert len(parts) > 1

    run(main())


def test_speech_is_spoken_a_sentence_at_a_time_so_others_get_the_voice_in_between() -> None:
    tts = FakeTTS(seconds_per_word=0.25)
    text = "First one here. Then **the** second! And a third?"

    async def main() -> bytes:
        async with serving(make_providers(tts=tts)) as srv:
            r = await srv.client().audio.speech.create(
                model="tts-1", voice="alloy", input=text, response_format="pcm"
            )
            return bytes(r.content)

    pcm = run(main())
    assert tts.texts == ["First one here.", "Then the second!", "And a third?"]
    assert len(pcm) // 2 == pytest.approx(9 * 0.25 * 24000, abs=3 * 24)


def test_bad_speech_requests_get_openai_errors() -> None:
    async def main() -> None:
        async with serving(make_providers()) as srv:
            sp = srv.client().audio.speech
            with pytest.raises(openai.NotFoundError):
                await sp.create(model="tts-9", voice="alloy", input="hi")
            for kw in (
                {"voice": "nobody"},
                {"speed": 9.0},
                {"input": ""},
                {"response_format": "ogg"},
                {"input": "x" * 4097},
            ):
                args: dict[str, Any] = {"model": "tts-1", "voice": "alloy", "input": "hi", **kw}
                with pytest.raises(openai.BadRequestError) as e:
                    await sp.create(**args)
                assert e.value.param == next(iter(kw)), kw
            with pytest.raises(openai.BadRequestError) as e:  # the fake voice has one pace
                await sp.create(model="tts-1", voice="alloy", input="hi", speed=1.5)
            assert e.value.param == "speed"

    run(main())


# -- chat -------------------------------------------------------------------------------------------
def test_chat_completion_whole_and_streamed_with_usage() -> None:
    llm = FakeLLM(default=("Hello", " there", ".", " How", " are", " you", "?"))

    async def main() -> None:
        async with serving(make_providers(llm=llm)) as srv:
            c = srv.client()
            msgs = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
            r = await c.chat.completions.create(model="gpt-4o-mini", messages=msgs)
            assert r.object == "chat.completion" and r.model == "gpt-4o-mini"
            assert r.choices[0].message.content == "Hello there. How are you?"
            assert r.choices[0].finish_reason == "stop" and r.usage.completion_tokens == 7
            assert [(m.role, m.content) for m in llm.calls[-1].messages] == [
                ("system", "Be brief."),
                ("user", "Hi"),
            ]

            stream = await c.chat.completions.create(
                model="qwen2.5-1.5b", messages=msgs, stream=True, stream_options={"include_usage": True}
            )
            chunks = [ch async for ch in stream]
            assert all(ch.object == "chat.completion.chunk" for ch in chunks)
            assert chunks[0].choices[0].delta.role == "assistant"
            text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
            assert text == "Hello there. How are you?"
            finishes = [
                ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason
            ]
            assert finishes == ["stop"]
            assert not chunks[-1].choices and chunks[-1].usage.completion_tokens == 7

    run(main())


def test_chat_honours_stop_and_max_tokens() -> None:
    llm = FakeLLM(default=("One", ",", " two", ",", " three", ".", " Four", "."))

    async def main() -> None:
        async with serving(make_providers(llm=llm)) as srv:
            c = srv.client()
            msgs = [{"role": "user", "content": "Count."}]
            r = await c.chat.completions.create(model="gpt-4o-mini", messages=msgs, stop=[" thr", "zz"])
            assert r.choices[0].message.content == "One, two," and r.choices[0].finish_reason == "stop"
            assert llm.calls[-1].closed_early  # generation stopped at the stop sequence
            r = await c.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=3)
            assert r.choices[0].message.content == "One, two" and r.choices[0].finish_reason == "length"
            stream = await c.chat.completions.create(
                model="gpt-4o-mini", messages=msgs, max_completion_tokens=2, stream=True
            )
            chunks = [ch async for ch in stream]
            assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "One,"
            assert chunks[-1].choices[0].finish_reason == "length"

    run(main())


def test_stop_sequences_split_across_pieces_are_found() -> None:
    f = StopFilter(("END",))
    out = f.push("abc E") + f.push("N") + f.push("D more")
    assert out == "abc " and f.stopped
    g = StopFilter(())
    assert g.push("a") + g.push("b") + g.flush() == "ab"


def test_a_client_that_leaves_mid_stream_stops_the_generation_and_frees_its_slot() -> None:
    llm = ClosingLLM(default=tuple(f" w{i}" for i in range(200)), delay=0.05)

    async def main() -> None:
        async with serving(make_providers(llm=llm)) as srv:
            c = srv.client()
            stream = await c.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Talk."}], stream=True
            )
            got = 0
            async for ch in stream:
                got += len(ch.choices[0].delta.content or "")
                if got > 6:
                    break
            await stream.close()
            await asyncio.wait_for(llm.closed.wait(), 10)
            assert llm.calls[-1].sent < 100
            assert await _eventually(lambda: srv.state.active == 0)

    run(main())


def test_a_client_that_gives_up_on_a_whole_reply_stops_the_generation_too() -> None:
    llm = ClosingLLM(default=tuple(f" w{i}" for i in range(200)), delay=0.05)

    async def main() -> None:
        async with serving(make_providers(llm=llm)) as srv:
            impatient = srv.client(timeout=0.5)  # the client closes its connection after 0.5 s
            with pytest.raises(openai.APITimeoutError):
                await impatient.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "Talk."}]
                )
            await asyncio.wait_for(llm.closed.wait(), 10)
            assert llm.calls[-1].sent < 100
            assert await _eventually(lambda: srv.state.active == 0)

    run(main())


async def _eventually(check: Any, within: float = 5.0) -> bool:
    """Re-check on every turn of the loop (no fixed sleep) until true or the time is up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    # a yield to the loop each time round, not a timed wait (nothing signals a freed slot)
    while not check() and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0)
    return bool(check())


def test_bad_chat_requests_get_openai_errors() -> None:
    async def main() -> None:
        async with serving(make_providers()) as srv:
            c = srv.client()
            ok = [{"role": "user", "content": "Hi"}]
            with pytest.raises(openai.NotFoundError):
                await c.chat.completions.create(model="gpt-9", messages=ok)
            for kw, param in (
                ({"messages": []}, "messages"),
                ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
                ({"temperature": 5}, "temperature"),
                ({"max_tokens": 0}, "max_tokens"),
                ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
                ({"n": 2}, "n"),
            ):
                args: dict[str, Any] = {"model": "gpt-4o-mini", "messages": ok, **kw}
                with pytest.raises(openai.BadRequestError) as e:
                    await c.chat.completions.create(**args)
                assert e.value.param == param
                assert e.value.type == "invalid_request_error"
            r = await c.chat.completions.create(model="gpt-4o-mini", messages=ok)
            assert r.choices[0].message.content

    run(main())


# -- keys and limits --------------------------------------------------------------------------------
def test_keys_bearer_and_token_and_openai_401s() -> None:
    settings = ServerSettings(port=0, api_keys=("k-one",))

    async def main() -> None:
        async with serving(make_providers(), settings) as srv:
            with pytest.raises(openai.AuthenticationError) as e:
                await srv.client("wrong").models.list()
            assert e.value.code == "invalid_api_key" and e.value.status_code == 401
            assert [m.id async for m in srv.client("k-one").models.list()]
            token = srv.client("x", default_headers={"Authorization": "Token k-one"})
            assert (
                await token.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
                )
            ).id
            raw = await _post(srv.srv.port, "/v1/chat/completions", b"{}", {})
            assert raw[0] == 401 and set(json.loads(raw[1])["error"]) == {"message", "type", "param", "code"}

    run(main())


def test_an_oversized_body_is_refused_with_413() -> None:
    settings = ServerSettings(port=0, max_body_bytes=64 * 1024)

    async def main() -> None:
        async with serving(make_providers(), settings) as srv:
            c = srv.client()
            with pytest.raises(openai.APIStatusError) as e:
                await c.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav_bytes(tone(5.0))))
            assert e.value.status_code == 413 and e.value.code == "request_too_large"
            with pytest.raises(openai.APIStatusError) as e:
                await c.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "x" * 70000}]
                )
            assert e.value.status_code == 413
            assert srv.state.active == 0

    run(main())


def test_requests_beyond_the_session_limit_get_429_and_then_succeed() -> None:
    settings = ServerSettings(port=0, max_sessions=1)

    async def main() -> None:
        async with serving(make_providers(), settings) as srv:
            c = srv.client()
            msgs = [{"role": "user", "content": "Hi"}]
            async with agent_client(srv.srv.ws_url) as session:
                await session.start()
                with pytest.raises(openai.RateLimitError) as e:
                    await c.chat.completions.create(model="gpt-4o-mini", messages=msgs)
                assert (
                    e.value.code == "rate_limit_exceeded" and e.value.response.headers["retry-after"] == "1"
                )
            assert await _eventually(lambda: srv.state.active == 0)
            assert (await c.chat.completions.create(model="gpt-4o-mini", messages=msgs)).choices

    run(main())


async def _post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"{head}Connection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = raw.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_the_body_limit_is_a_serve_option_checked_before_anything_loads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from voxloop.cli import main

    assert main(["-q", "serve", "--max-body-bytes", "100"]) == 2
    assert "--max-body-bytes" in capsys.readouterr().err


@dataclass
class GatedLLM(FakeLLM):
    """Loads only once `gate` is set."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def load(self) -> None:
        await self.gate.wait()


def test_while_the_models_load_requests_get_503_and_then_an_answer() -> None:
    llm = GatedLLM()

    async def main() -> None:
        async with live_server(make_providers(llm=llm), wait_ready=False) as srv:
            c = openai.AsyncOpenAI(base_url=f"{srv.http_url}/v1", api_key="x", max_retries=0)
            try:
                msgs = [{"role": "user", "content": "Hi"}]
                with pytest.raises(openai.InternalServerError) as e:
                    await c.chat.completions.create(model="gpt-4o-mini", messages=msgs)
                assert e.value.status_code == 503 and "loading" in e.value.message
                assert [m.id async for m in c.models.list()]  # the list needs no model
                llm.gate.set()
                await asyncio.wait_for(srv.state.ready.wait(), 10)
                assert (await c.chat.completions.create(model="gpt-4o-mini", messages=msgs)).choices
            finally:
                await c.close()

    run(main())
