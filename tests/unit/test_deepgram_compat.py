"""The Deepgram-compatible endpoints over a real socket, with fake models, driven by Deepgram's
official Python SDK (unmodified, pointed at the server): live transcription, prerecorded,
speech, and every kind of refusal, with the server living on after each.

The fakes make the turns: FakeVAD hears a tone as speech, FakeSTT says its scripted words.
Audio goes ahead of real time within a raised `max_audio_ahead_s` (the fakes do not care).
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
import soundfile as sf
from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import make_providers, silence, tone
from fakes import FakeSTT, FakeTTS
from live_server import LiveServer, http_get, live_server
from voxloop.audio.g711 import mulaw_encode
from voxloop.audio.pcm import resample, to_int16
from voxloop.server.compat import deepgram_listen
from voxloop.server.compat.openai_audio import SpeechEncoder, decode_upload
from voxloop.server.settings import ServerSettings

# The SDK imports websockets' legacy client (deprecated since websockets 14): not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:websockets.* is deprecated:DeprecationWarning", "ignore::DeprecationWarning:websockets.legacy.*"
)
T = TypeVar("T")
FAST = ServerSettings(port=0, max_audio_ahead_s=120.0)
UTTERANCE = np.concatenate([silence(0.3), tone(1.0), silence(1.6)])  # one turn, then silence
LINEAR16: dict[str, Any] = {"encoding": "linear16", "sample_rate": 16000}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


HTTP_CLIENTS: list[httpx.AsyncClient] = []  # the SDK's connection pools, closed with the server


def client_for(srv: LiveServer, key: str = "any") -> AsyncDeepgramClient:
    env = DeepgramClientEnvironment(
        base=srv.http_url, production=srv.http_url.replace("http://", "ws://"), agent="", agent_rest=""
    )
    HTTP_CLIENTS.append(http := httpx.AsyncClient(timeout=60))
    return AsyncDeepgramClient(api_key=key, environment=env, httpx_client=http)


@asynccontextmanager
async def server(
    stt: FakeSTT | None = None, settings: ServerSettings = FAST, tts: FakeTTS | None = None
) -> AsyncIterator[LiveServer]:
    try:
        async with live_server(make_providers(stt=stt, tts=tts), settings) as srv:
            yield srv
    finally:
        while HTTP_CLIENTS:
            await HTTP_CLIENTS.pop().aclose()


@asynccontextmanager
async def listening(stt: FakeSTT, **params: Any) -> AsyncIterator[tuple[Any, Messages]]:
    """A server hearing with `stt`, and a live transcription socket to it opened with `params`
    (the Deepgram SDK's), with what the socket receives."""
    async with server(stt) as srv, client_for(srv).listen.v1.connect(**params) as sock:
        yield sock, Messages(sock)


@asynccontextmanager
async def raw_listen(query: str) -> AsyncIterator[ClientConnection]:
    """`server()`, and a plain WebSocket (no SDK) to its /v1/listen?`query`."""
    async with server() as srv, connect(f"ws://127.0.0.1:{srv.port}/v1/listen?{query}") as ws:
        yield ws


class Messages:
    """Everything a live socket receives, in order, read by a task until the socket closes."""

    def __init__(self, sock: Any) -> None:
        self.items: list[Any] = []
        self.task = asyncio.get_running_loop().create_task(self._read(sock))

    async def _read(self, sock: Any) -> None:
        async for m in sock:
            self.items.append(m)

    async def closed(self) -> list[Any]:
        await asyncio.wait_for(self.task, 20)
        return self.items

    def of(self, kind: str) -> list[Any]:
        return [m for m in self.items if getattr(m, "type", None) == kind]


async def send_pcm(sock: Any, audio: np.ndarray, chunk: int = 1600) -> None:
    for i in range(0, len(audio), chunk):
        await sock.send_media(to_int16(audio[i : i + chunk]).tobytes())


# -- live transcription ----------------------------------------------------------------------------
def test_live_interim_and_final_results_speech_started_utterance_end_and_metadata() -> None:
    async def main() -> None:
        stt = FakeSTT(["Turn on the lamp."], partial_every_s=0.3)
        params = dict(encoding="linear16", sample_rate=16000, interim_results=True, vad_events=True)
        async with listening(stt, model="nova-3", utterance_end_ms=1000, punctuate=True, **params) as (
            sock,
            got,
        ):
            await send_pcm(sock, UTTERANCE)
            await sock.send_close_stream()
            items = await got.closed()
        kinds = [m.type for m in items]
        assert kinds[0] == "SpeechStarted" and kinds[-1] == "Metadata"
        assert kinds.index("UtteranceEnd") > kinds.index("Results")
        results = got.of("Results")
        interim, final = [r for r in results if not r.is_final], [r for r in results if r.is_final]
        assert interim and all(not r.speech_final for r in interim)
        assert len(final) == 1 and final[0].speech_final and not final[0].from_finalize
        alt = final[0].channel.alternatives[0]
        assert alt.transcript == "Turn on the lamp."
        assert [w.word for w in alt.words] == ["turn", "on", "the", "lamp"]
        assert alt.words[-1].punctuated_word == "lamp."
        assert 0.2 <= alt.words[0].start < alt.words[-1].end <= 1.4  # the tone: 0.3-1.3 s
        assert final[0].start == 0.0 and 1.3 < final[0].duration < 2.5
        assert final[0].metadata.model_info.name == "nova-3"
        assert got.of("SpeechStarted")[0].timestamp == pytest.approx(0.3, abs=0.1)
        assert got.of("UtteranceEnd")[0].last_word_end == alt.words[-1].end
        meta = got.of("Metadata")[0]
        assert meta.channels == 1 and meta.duration == pytest.approx(len(UTTERANCE) / 16000, abs=0.01)

    run(main())


def test_live_finals_carry_the_recognisers_word_times_shifted_to_where_each_turn_began() -> None:
    """A recogniser that aligns its words gives their times in the turn's audio (pre-roll
    included); each final's words are those, from the start of the stream, not an estimate."""
    stt = FakeSTT(["Turn on the lamp.", "Bye now."], word_every_s=0.2)  # a word every 0.2 s from the tone
    audio = np.concatenate([silence(1.0), tone(1.0), silence(1.6), tone(0.6), silence(1.6)])

    async def main() -> list[Any]:
        async with listening(stt, model="nova-3", **LINEAR16, punctuate=True) as (sock, got):
            await send_pcm(sock, audio)
            await sock.send_close_stream()
            await got.closed()
        return [r for r in got.of("Results") if r.is_final and r.channel.alternatives[0].transcript]

    first, second = (r.channel.alternatives[0] for r in run(main()))
    assert [w.start for w in first.words] == pytest.approx([1.0, 1.2, 1.4, 1.6], abs=0.001)
    assert [w.end for w in first.words] == pytest.approx([1.1, 1.3, 1.5, 1.7], abs=0.001)
    assert [w.start for w in second.words] == pytest.approx([3.6, 3.8], abs=0.001)
    assert [w.punctuated_word for w in second.words] == ["Bye", "now."]
    assert {w.confidence for w in first.words + second.words} == {0.9} and first.confidence == 0.9


def test_live_without_punctuation_mulaw_at_8k_and_two_turns() -> None:
    audio = resample(np.concatenate([UTTERANCE, UTTERANCE]), 16000, 8000)

    async def main() -> None:
        stt = FakeSTT(["Hello, there.", "Bye now!"])
        async with listening(stt, model="nova-2", encoding="mulaw", sample_rate=8000) as (sock, got):
            for i in range(0, len(audio), 800):
                await sock.send_media(mulaw_encode(audio[i : i + 800]))
            await sock.send_close_stream()
            await got.closed()
        finals = [r for r in got.of("Results") if r.is_final]
        assert [r.channel.alternatives[0].transcript for r in finals] == ["hello there", "bye now"]
        assert not [r for r in got.of("Results") if not r.is_final]  # no interim_results asked
        assert finals[1].start == pytest.approx(finals[0].start + finals[0].duration)  # results tile
        assert all(w.punctuated_word is None for r in finals for w in r.channel.alternatives[0].words)

    run(main())


def test_live_ogg_opus_as_a_browser_sends_it_and_undecodable_audio_closes_with_data_0000() -> None:
    enc = SpeechEncoder("opus", 16000)  # Ogg Opus, as MediaRecorder or a phone gateway makes it
    ogg = b"".join(enc.push(UTTERANCE[i : i + 1600]) for i in range(0, len(UTTERANCE), 1600)) + enc.finish()

    async def main() -> None:
        async with listening(FakeSTT(["from opus"]), model="nova-3", encoding="opus") as (sock, got):
            for i in range(0, len(ogg), 1000):  # pages split anywhere
                await sock.send_media(ogg[i : i + 1000])
            await sock.send_close_stream()
            await got.closed()
        [final] = got.of("Results")
        assert final.channel.alternatives[0].transcript == "from opus" and final.speech_final
        assert got.of("Metadata")[0].duration == pytest.approx(len(UTTERANCE) / 16000, abs=0.1)
        async with raw_listen("model=nova-3&encoding=opus") as ws:
            await ws.send(to_int16(UTTERANCE[:1600]).tobytes())  # not Ogg
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1008 and ws.close_reason.startswith("DATA-0000")

    run(main())


def test_finalize_ends_the_turn_at_once_and_keepalive_keeps_the_stream() -> None:
    async def main() -> None:
        async with listening(FakeSTT(["still talking"]), model="nova-3", **LINEAR16) as (sock, got):
            await send_pcm(sock, np.concatenate([silence(0.3), tone(1.0)]))  # no silence after
            await sock.send_keep_alive()
            await sock.send_finalize()
            await sock.send_finalize()  # nothing under way: an empty final, from_finalize too
            await sock.send_close_stream()
            await got.closed()
        finals = got.of("Results")
        assert [(r.channel.alternatives[0].transcript, r.from_finalize, r.speech_final) for r in finals] == [
            ("still talking", True, False),
            ("", True, False),
        ]

    run(main())


def test_endpointing_false_never_marks_speech_final_and_keyterms_reach_the_recogniser() -> None:
    stt = FakeSTT(["one"])

    async def main() -> None:
        async with listening(
            stt,
            model="nova-3",
            **LINEAR16,
            endpointing="false",
            keyterm="Qorvex",
            keywords="Dvorak:2",
            diarize="true",
            tag="unknown-params-are-fine",
        ) as (sock, got):
            await send_pcm(sock, UTTERANCE)
            await sock.send_close_stream()
            await got.closed()
        [final] = got.of("Results")
        assert final.is_final and not final.speech_final
        assert stt.streams[0].log.count("keywords: Qorvex, Dvorak") == 1

    run(main())


def test_bad_input_gets_deepgram_errors_and_the_stream_goes_on() -> None:
    async def main() -> None:
        async with listening(FakeSTT(["after the noise"]), model="nova-3", **LINEAR16) as (sock, got):
            await sock._send("{not json")
            await sock._send(json.dumps({"type": "Dance"}))
            await sock._send(b"\x01")  # half a sample: joined with the next message
            await send_pcm(sock, UTTERANCE)
            await sock.send_close_stream()
            await sock._send(b"\x00\x00" * 160)  # after CloseStream
            await got.closed()
        errors = got.of("Error")
        assert [e.variant for e in errors[:2]] == ["SchemaError", "SchemaError"]
        assert errors[0].message == "{not json" and "Dance" in errors[1].description
        assert got.of("Results")[0].channel.alternatives[0].transcript == "after the noise"
        assert got.items[-1].type == "Metadata"

    run(main())


def test_audio_after_close_stream_is_refused_with_an_error_before_the_close() -> None:
    async def main() -> None:
        async with raw_listen("model=nova-3&encoding=linear16&sample_rate=16000") as ws:
            await ws.send(json.dumps({"type": "CloseStream"}))
            await ws.send(b"\x00\x00" * 160)
            msgs = [json.loads(m) async for m in ws]
            assert [m["type"] for m in msgs] == ["Error", "Metadata"]
            assert msgs[0]["variant"] == "AudioAfterCloseStream"
            assert ws.close_code == 1000

    run(main())


def test_a_silent_connection_is_closed_after_the_timeout_with_net_0001(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deepgram_listen, "IDLE_S", 0.3)

    async def main() -> None:
        async with raw_listen("model=nova-3&encoding=linear16&sample_rate=16000") as ws:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1011 and ws.close_reason.startswith("NET-0001")

    run(main())


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({"channels": 3}, 400, "channels=3"),
        ({"encoding": "flac"}, 400, "encoding='flac'"),
        ({"encoding": None}, 400, "encoding"),
        ({"sample_rate": 1000}, 400, "sample_rate=1000"),
        ({"language": "fr"}, 400, "English"),
        ({"model": "nova-9-imaginary"}, 404, "No such model"),
        ({"model": "tts-1"}, 404, "No such model"),
    ],
)
def test_bad_parameters_are_refused_at_the_handshake(
    params: dict[str, Any], status: int, needle: str
) -> None:
    query = {"model": "nova-3", "encoding": "linear16", "sample_rate": 16000, **params}

    async def main() -> None:
        async with server() as srv:
            with pytest.raises(ApiError) as caught:
                async with client_for(srv).listen.v1.connect(
                    **{k: v for k, v in query.items() if v is not None}
                ):
                    pass
            assert caught.value.status_code == status
            # the same refusal, read raw: Deepgram's error JSON and headers
            url = f"/v1/listen?{'&'.join(f'{k}={v}' for k, v in query.items() if v is not None)}"
            code, headers, body = await ws_refusal(srv, url)
            err = json.loads(body)
            assert (
                code == status and needle in err["err_msg"] and err["request_id"] == headers["dg-request-id"]
            )
            assert (await http_get(srv.port, "/healthz"))[0] == 200  # the server lives on

    run(main())


async def ws_refusal(
    srv: LiveServer, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    try:
        async with connect(f"ws://127.0.0.1:{srv.port}{path}", additional_headers=headers):
            raise AssertionError("the handshake was accepted")
    except InvalidStatus as e:
        r = e.response
        return r.status_code, {k.lower(): v for k, v in r.headers.raw_items()}, r.body or b""


def test_keys_token_bearer_and_the_browser_subprotocol() -> None:
    keyed = ServerSettings(port=0, api_keys=("sekret",), max_audio_ahead_s=120.0)
    path = "/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000"

    async def main() -> None:
        async with server(settings=keyed) as srv:
            with pytest.raises(ApiError) as caught:
                async with client_for(srv, "wrong").listen.v1.connect(
                    model="nova-3", encoding="linear16", sample_rate=16000
                ):
                    pass
            assert caught.value.status_code == 401
            code, _, body = await ws_refusal(srv, path)
            assert code == 401 and json.loads(body)["err_code"] == "INVALID_AUTH"
            async with client_for(srv, "sekret").listen.v1.connect(
                model="nova-3", encoding="linear16", sample_rate=16000
            ) as sock:
                await sock.send_close_stream()
                assert [m.type async for m in sock] == ["Metadata"]
            url = f"ws://127.0.0.1:{srv.port}{path}"
            async with connect(url, additional_headers={"Authorization": "Bearer sekret"}) as ws:
                await ws.send(json.dumps({"type": "CloseStream"}))
                assert [json.loads(m)["type"] async for m in ws] == ["Metadata"]
            async with connect(url, subprotocols=["token", "sekret"]) as ws:  # type: ignore[list-item]
                assert ws.subprotocol == "token"
                await ws.send(json.dumps({"type": "CloseStream"}))
                assert [json.loads(m)["type"] async for m in ws] == ["Metadata"]
            status = await rest(
                srv, "/v1/listen?model=nova-3", wav_bytes(UTTERANCE), {"Authorization": "Token nope"}
            )
            assert status[0] == 401 and json.loads(status[2])["err_code"] == "INVALID_AUTH"

    run(main())


def test_over_the_session_limit_is_429_and_several_streams_share_the_models() -> None:
    two = ServerSettings(port=0, max_sessions=2, max_audio_ahead_s=120.0)

    async def main() -> None:
        async with server(FakeSTT(["first", "second"]), settings=two) as srv:
            c = client_for(srv)
            opts = dict(model="nova-3", encoding="linear16", sample_rate=16000)
            async with c.listen.v1.connect(**opts) as a, c.listen.v1.connect(**opts) as b:
                with pytest.raises(ApiError) as caught:
                    async with c.listen.v1.connect(**opts):
                        pass
                assert caught.value.status_code == 429
                status = await rest(srv, "/v1/listen?model=nova-3", wav_bytes(UTTERANCE))
                assert status[0] == 429 and json.loads(status[2])["err_code"] == "TOO_MANY_REQUESTS"
                got_a, got_b = Messages(a), Messages(b)
                await asyncio.gather(send_pcm(a, UTTERANCE), send_pcm(b, UTTERANCE))
                await asyncio.gather(a.send_close_stream(), b.send_close_stream())
                await asyncio.gather(got_a.closed(), got_b.closed())
            texts = {r.channel.alternatives[0].transcript for g in (got_a, got_b) for r in g.of("Results")}
            assert texts == {"first", "second"}
            assert srv.state.active == 0

    run(main())


# -- prerecorded -----------------------------------------------------------------------------------
def wav_bytes(x: np.ndarray, rate: int = 16000, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    sf.write(
        buf, np.stack([x] * channels, axis=1) if channels > 1 else x, rate, format="WAV", subtype="PCM_16"
    )
    return buf.getvalue()


async def rest(
    srv: LiveServer, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    async with httpx.AsyncClient(base_url=srv.http_url, timeout=30) as http:
        r = await http.post(path, content=body, headers=headers or {})
        return r.status_code, dict(r.headers), r.content


def test_prerecorded_wav_raw_paragraphs_and_utterances() -> None:
    async def main() -> None:
        async with server(FakeSTT(["Hello there. How are you?", "raw words", "file", "from an mp3"])) as srv:
            media = client_for(srv).listen.v1.media
            answer = await media.transcribe_file(
                request=wav_bytes(UTTERANCE, channels=2),
                model="nova-3",
                smart_format=True,
                paragraphs=True,
                utterances=True,
            )
            alt = answer.results.channels[0].alternatives[0]
            assert alt.transcript == "Hello there. How are you?"
            assert [w.word for w in alt.words] == ["hello", "there", "how", "are", "you"]
            assert [s.text for s in alt.paragraphs.paragraphs[0].sentences] == [
                "Hello there.",
                "How are you?",
            ]
            assert answer.results.utterances[0].transcript == "Hello there. How are you?"
            assert answer.metadata.duration == pytest.approx(len(UTTERANCE) / 16000, abs=0.01)
            raw = await media.transcribe_file(
                request=to_int16(resample(UTTERANCE, 16000, 8000)).tobytes(),
                model="whisper-1",
                encoding="linear16",
                request_options={"additional_query_parameters": {"sample_rate": 8000}},  # not in the SDK
            )
            assert raw.results.channels[0].alternatives[0].transcript == "raw words"
            file_anyway = await media.transcribe_file(  # a WAV file says what it holds
                request=wav_bytes(resample(UTTERANCE, 16000, 8000), 8000),
                model="nova-3",
                encoding="mulaw",
                request_options={"additional_query_parameters": {"sample_rate": 16000}},
            )
            assert file_anyway.metadata.duration == pytest.approx(len(UTTERANCE) / 16000, abs=0.01)
            enc = SpeechEncoder("mp3", 16000)
            mp3 = enc.push(UTTERANCE) + enc.finish()
            from_mp3 = await media.transcribe_file(request=mp3, model="nova-3")
            assert from_mp3.results.channels[0].alternatives[0].transcript == "from an mp3"
            assert from_mp3.metadata.duration == pytest.approx(len(UTTERANCE) / 16000, abs=0.1)

    run(main())


def test_prerecorded_refusals_garbage_url_too_large_unknown_model() -> None:
    small = ServerSettings(port=0, max_body_bytes=64_000)

    async def main() -> None:
        async with server(settings=small) as srv:
            media = client_for(srv).listen.v1.media
            with pytest.raises(ApiError) as caught:
                await media.transcribe_file(request=b"this is not audio at all", model="nova-3")
            assert (
                caught.value.status_code == 400 and "corrupt or unsupported" in caught.value.body["err_msg"]
            )
            with pytest.raises(ApiError) as caught:
                await media.transcribe_file(request=wav_bytes(UTTERANCE), model="nova-3")
            assert caught.value.status_code == 413
            with pytest.raises(ApiError) as caught:
                await media.transcribe_file(request=wav_bytes(silence(0.5)), model="aura-2-thalia-en")
            assert caught.value.status_code == 404
            status = await rest(
                srv,
                "/v1/listen",
                b'{"url": "https://example.com/a.wav"}',
                {"Content-Type": "application/json"},
            )
            assert status[0] == 400 and "URL" in json.loads(status[2])["err_msg"]

    run(main())


# -- speech ----------------------------------------------------------------------------------------
def test_speak_socket_flush_clear_close() -> None:
    tts = FakeTTS(seconds_per_word=0.25)

    async def main() -> None:
        async with (
            server(tts=tts) as srv,
            client_for(srv).speak.v1.connect(
                model="aura-2-thalia-en", encoding="linear16", sample_rate=16000
            ) as sock,
        ):
            from deepgram.speak.v1.types import SpeakV1Text

            got = Messages(sock)
            await sock.send_text(SpeakV1Text(text="Hello there "))
            await sock.send_text(SpeakV1Text(text="my friend."))
            await sock.send_flush()
            await sock._send("{oops")
            await sock.send_clear()
            await sock.send_text(SpeakV1Text(text="Two words."))
            await sock.send_flush()
            await sock.send_close()
            items = await got.closed()
        kinds = [getattr(m, "type", "audio") for m in items]
        assert kinds[0] == "Metadata" and "Cleared" in kinds and "Warning" in kinds
        flushed = [m.sequence_id for m in items if getattr(m, "type", None) == "Flushed"]
        assert flushed[-1] == 1
        after_clear = items[kinds.index("Cleared") + 1 :]
        audio = b"".join(m for m in after_clear if isinstance(m, bytes))
        assert len(audio) == 2 * int(0.5 * 16000)  # "Two words.": 2 words x 0.25 s, at 16 kHz

    run(main())


def test_speak_rest_wav_and_raw_mulaw() -> None:
    async def main() -> None:
        async with server(tts=FakeTTS()) as srv:
            speak = client_for(srv).speak.v1.audio
            wav = b"".join(
                [
                    c
                    async for c in speak.generate(
                        text="one two three four",
                        model="aura-2-thalia-en",
                        encoding="linear16",
                        container="wav",
                        sample_rate=24000,
                    )
                ]
            )
            x, rate = sf.read(io.BytesIO(wav))
            assert rate == 24000 and len(x) == 24000  # 4 words x 0.25 s
            raw = b"".join(
                [
                    c
                    async for c in speak.generate(
                        text="one two", model="tts-1", encoding="mulaw", sample_rate=8000
                    )
                ]
            )
            assert len(raw) == 4000
            mp3 = b"".join(
                [
                    c
                    async for c in speak.generate(
                        text="one two three four five six", model="aura-2-thalia-en"
                    )
                ]
            )
            assert mp3[:3] == b"ID3" or mp3[0] == 0xFF  # Deepgram's default: MP3
            assert len(decode_upload(mp3, 16000)) == pytest.approx(1.5 * 16000, rel=0.1)
            with pytest.raises(ApiError) as caught:
                async for _ in speak.generate(text="hi", model="nova-3"):
                    pass
            assert caught.value.status_code == 404
            status = await rest(srv, "/v1/speak?model=aura-2-thalia-en", b"{nope")
            assert status[0] == 400 and json.loads(status[2])["err_code"] == "Bad Request"

    run(main())
