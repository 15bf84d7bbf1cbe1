"""A scripted Deepgram on loopback, for the Deepgram providers' tests.

It speaks Deepgram's wire protocol: `WS /v1/listen` (binary linear16 in; `Results` with
`is_final`, `speech_final`, `from_finalize`, `start`, `duration`, words; `Metadata` after
`CloseStream`; KeepAlive and Finalize taken), `WS /v1/speak` (`Speak`, `Flush` -> binary audio
and `Flushed`, `Clear` -> `Cleared`, `Close`; `Metadata` first) and `POST /v1/speak` (raw
linear16), with Deepgram's error JSON on refused handshakes and requests. Each connection or
request takes the next plan of its script (then the default plan).

What it "recognises" is a code the tests write as audio (`words_audio`): word k is WORD samples
of the constant value 1000*k, then GAP samples of silence. A word is heard once its silence
follows (or at Finalize), so a test can tell a lost word from a doubled one exactly. What it
speaks is a ramp (`speech_for`), so a test can tell a resumed voice from a repeated one.

`silent_server` is a raw TCP peer that never answers the handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from voxloop.providers.base import STTStream

RATE = 16000
WORD, GAP = 3200, 1600  # 0.2 s of a word, 0.1 s of silence after it
SPEAK_CHUNK = 2400


def words_audio(ks: list[int]) -> np.ndarray:
    """Float audio (16 kHz) the fake hears as the words w<k>, in order."""
    parts = []
    for k in ks:
        parts += [np.full(WORD, 1000 * k / 32768, np.float32), np.zeros(GAP, np.float32)]
    return np.concatenate(parts)


async def push_words(stream: STTStream, ks: list[int], frame: int = 512) -> None:
    """The words w<k> (`words_audio`) into a recogniser's stream, as a microphone's frames."""
    audio = words_audio(ks)
    for i in range(0, len(audio), frame):
        await stream.push(audio[i : i + frame])


def speech_for(text: str, rate: int = 24000) -> np.ndarray:
    """The int16 audio the fake speaks for `text`: a ramp, 10 ms a character."""
    n = len(text) * rate // 100
    return (np.arange(n) % 20000).astype("<i2")


@dataclass
class ListenPlan:
    refuse: int = 0  # refuse the handshake with this status
    retry_after: str = ""
    drop_after_words: int | None = None  # close the socket (1011) once it heard this many words
    final_every: int | None = None  # an endpointing final (speech_final) every this many words
    answer_finalize: bool = True  # False: Finalize is taken and never answered (a stall)
    deaf: bool = False  # accept, then never read again (the client's sends soon block)
    mute_after_words: int | None = None  # once it heard this many words: reads on, answers nothing
    hold: asyncio.Event | None = None  # slow but alive: its first answer (and so its reading) waits for this


@dataclass
class SpeakPlan:
    refuse: int = 0
    retry_after: str = ""
    chunks_then_stall: int | None = None  # after a Flush: this many chunks, then nothing
    chunks_then_drop: int | None = None  # after a Flush: this many chunks, then close 1011


@dataclass
class Seen:
    """One connection or request as the fake saw it."""

    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    texts: list[dict[str, Any]] = field(default_factory=list)
    samples: int = 0
    words: list[str] = field(default_factory=list)  # listen: every word heard
    closed: bool = False  # the connection ended

    def types(self) -> list[str]:
        return [t.get("type", "") for t in self.texts]


class FakeDeepgram:
    def __init__(
        self,
        listen: list[ListenPlan] | None = None,
        speak: list[SpeakPlan] | None = None,
        rest: list[SpeakPlan] | None = None,
    ) -> None:
        self.plans = {"listen": list(listen or []), "speak": list(speak or []), "rest": list(rest or [])}
        self.seen: list[Seen] = []
        self.changed = asyncio.Event()
        self.port = 0
        self._stop = asyncio.Event()  # ends every stall

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def of(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def _plan(self, kind: str, default: Any) -> Any:
        return self.plans[kind].pop(0) if self.plans[kind] else default

    def _note(self, seen: Seen) -> Seen:
        self.seen.append(seen)
        self.changed.set()
        return seen

    async def until(self, check: Any, what: str, within: float = 10.0) -> None:
        """Wait until `check()` holds (re-checked whenever the fake sees something)."""
        async with asyncio.timeout(within):
            while not check():
                self.changed.clear()
                await self.changed.wait()

    # -- refusals ------------------------------------------------------------------------------------
    @staticmethod
    def _refusal(status: int, retry_after: str) -> Response:
        headers = {"dg-error": "scripted", "dg-request-id": "fake"}
        if retry_after:
            headers["Retry-After"] = retry_after
        body = {"err_code": "SCRIPTED", "err_msg": f"scripted refusal {status}", "request_id": "fake"}
        return JSONResponse(body, status_code=status, headers=headers)

    # -- WS /v1/listen -------------------------------------------------------------------------------
    async def listen(self, ws: WebSocket) -> None:
        plan: ListenPlan = self._plan("listen", ListenPlan())
        seen = self._note(Seen("/v1/listen", list(ws.query_params.multi_items()), dict(ws.headers)))
        if plan.refuse:
            await ws.send_denial_response(self._refusal(plan.refuse, plan.retry_after))
            return
        await ws.accept()
        if plan.deaf:
            await self._stop.wait()
            return
        try:
            await self._listen(ws, plan, seen)
        finally:
            seen.closed = True
            self.changed.set()

    async def _listen(self, ws: WebSocket, plan: ListenPlan, seen: Seen) -> None:
        async def reply(text: str) -> None:
            if plan.hold is not None:
                await plan.hold.wait()
            await ws.send_text(text)

        buf = bytearray()  # the audio received on this socket, int16
        cursor = 0  # where the next result starts (sample)
        scan = 0  # complete words before this sample are in `pending` (or were finalized)
        pending: list[tuple[str, int, int]] = []  # complete words since the cursor
        last_interim = ""
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                n = len(buf) // 2
                if msg.get("bytes") is not None:
                    buf += msg["bytes"]
                    n = seen.samples = len(buf) // 2
                    new = _words(np.frombuffer(buf, "<i2"), scan, complete=True)
                    pending += new
                    seen.words += [w for w, _, _ in new]
                    scan = _resume_at(np.frombuffer(buf, "<i2"), new[-1][2] if new else scan)
                    self.changed.set()
                    if plan.drop_after_words is not None and len(seen.words) >= plan.drop_after_words:
                        await ws.close(1011, "scripted drop")
                        return
                    if plan.mute_after_words is not None and len(seen.words) >= plan.mute_after_words:
                        continue  # a stalled server: the audio goes in, nothing comes out
                    if plan.final_every and len(pending) >= plan.final_every:
                        chunk, pending = pending[: plan.final_every], pending[plan.final_every :]
                        end = chunk[-1][2] + GAP // 2
                        await reply(_results(chunk, cursor, end, final=True, speech_final=True))
                        cursor, last_interim = end, ""
                    elif pending and (text := " ".join(w for w, _, _ in pending)) != last_interim:
                        await reply(_results(pending, cursor, n, final=False))
                        last_interim = text
                    continue
                body = json.loads(msg.get("text") or "{}")
                seen.texts.append(body)
                self.changed.set()
                kind = body.get("type")
                muted = plan.mute_after_words is not None and len(seen.words) >= plan.mute_after_words
                answer = plan.answer_finalize and not muted
                if kind in ("Finalize", "CloseStream") and (answer or kind == "CloseStream"):
                    words = pending + _words(np.frombuffer(buf, "<i2"), scan, complete=False)
                    flush = kind == "Finalize"
                    await reply(_results(words, cursor, n, final=True, from_finalize=flush))
                    cursor, scan, pending, last_interim = n, n, [], ""
                if kind == "CloseStream":
                    meta = {"type": "Metadata", "request_id": "fake", "duration": n / RATE}
                    await ws.send_text(json.dumps({**meta, "channels": 1, "sha256": "", "created": ""}))
                    await ws.close(1000)
                    return
        except WebSocketDisconnect:
            return

    # -- WS /v1/speak and POST /v1/speak -----------------------------------------------------------
    async def speak(self, ws: WebSocket) -> None:
        plan: SpeakPlan = self._plan("speak", SpeakPlan())
        seen = self._note(Seen("/v1/speak", list(ws.query_params.multi_items()), dict(ws.headers)))
        if plan.refuse:
            await ws.send_denial_response(self._refusal(plan.refuse, plan.retry_after))
            return
        await ws.accept()
        await ws.send_text(json.dumps({"type": "Metadata", "request_id": "fake", "model_name": "aura-2"}))
        rate = int(ws.query_params.get("sample_rate", "24000"))
        text, flushes = "", 0
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                body = json.loads(msg.get("text") or "{}")
                seen.texts.append(body)
                self.changed.set()
                kind = body.get("type")
                if kind == "Speak":
                    text += body.get("text", "")
                elif kind == "Flush":
                    pcm = speech_for(text, rate)
                    for i, start in enumerate(range(0, len(pcm), SPEAK_CHUNK)):
                        if plan.chunks_then_stall is not None and i >= plan.chunks_then_stall:
                            await self._stop.wait()
                            return
                        if plan.chunks_then_drop is not None and i >= plan.chunks_then_drop:
                            await ws.close(1011, "scripted drop")
                            return
                        await ws.send_bytes(pcm[start : start + SPEAK_CHUNK].tobytes())
                    await ws.send_text(json.dumps({"type": "Flushed", "sequence_id": flushes}))
                    text, flushes = "", flushes + 1
                elif kind == "Clear":
                    text = ""
                    await ws.send_text(json.dumps({"type": "Cleared", "sequence_id": flushes}))
                elif kind == "Close":
                    await ws.close(1000)
                    return
        except WebSocketDisconnect:
            return

    async def speak_rest(self, request: Request) -> Response:
        plan: SpeakPlan = self._plan("rest", SpeakPlan())
        body = json.loads(await request.body())
        seen = self._note(
            Seen("POST /v1/speak", list(request.query_params.multi_items()), dict(request.headers))
        )
        seen.texts.append(body)
        if plan.refuse:
            return self._refusal(plan.refuse, plan.retry_after)
        if plan.chunks_then_stall is not None:
            await self._stop.wait()
        rate = int(request.query_params.get("sample_rate", "24000"))
        return Response(speech_for(body["text"], rate).tobytes(), media_type=f"audio/l16;rate={rate}")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                WebSocketRoute("/v1/listen", self.listen),
                WebSocketRoute("/v1/speak", self.speak),
                Route("/v1/speak", self.speak_rest, methods=["POST"]),
            ]
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeDeepgram]:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # a deaf plan blocks sends soon
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), ws="websockets-sansio", log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        try:  # the socket listens already: clients may connect at once
            yield self
        finally:
            self._stop.set()
            server.should_exit = True
            await asyncio.wait_for(task, 10)
            sock.close()


def _words(audio: np.ndarray, start: int, *, complete: bool) -> list[tuple[str, int, int]]:
    """The coded words in audio[start:]: (w<k>, start, end) samples; `complete`: only those
    whose silence has begun."""
    x = audio[start:].astype(np.int32)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], x, [0]])) != 0)  # where the value changes
    out: list[tuple[str, int, int]] = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if x[a] == 0 or (complete and b == len(x)):
            continue
        out.append((f"w{round(int(x[a]) / 1000)}", start + int(a), start + int(b)))
    return out


def _resume_at(audio: np.ndarray, after: int) -> int:
    """Where the next scan for complete words starts: the start of a word still being received
    (nonzero samples up to the end), else the end."""
    x = audio[after:]
    zeros = np.flatnonzero(x == 0)
    if not len(x) or x[-1] == 0:
        return len(audio)
    last_zero = zeros[-1] if len(zeros) else -1
    return after + int(last_zero) + 1


def _results(
    words: list[tuple[str, int, int]],
    start: int,
    end: int,
    *,
    final: bool,
    speech_final: bool = False,
    from_finalize: bool = False,
) -> str:
    transcript = " ".join(w for w, _, _ in words)
    body: dict[str, Any] = {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": round((end - start) / RATE, 4),
        "start": round(start / RATE, 4),
        "is_final": final,
        "speech_final": speech_final,
        "channel": {
            "alternatives": [
                {
                    "transcript": transcript,
                    "confidence": 0.99 if words else 0.0,
                    "words": [
                        {
                            "word": w,
                            "start": a / RATE,
                            "end": b / RATE,
                            "confidence": 0.99,
                            "punctuated_word": w,
                        }
                        for w, a, b in words
                    ],
                }
            ]
        },
        "metadata": {
            "request_id": "fake",
            "model_info": {"name": "nova-3", "version": "fake", "arch": "fake"},
        },
    }
    if final:
        body["from_finalize"] = from_finalize
    return json.dumps(body)


# -- raw TCP peers --------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """Accepts TCP connections and never answers (a handshake that hangs). Yields its base URL."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()
