"""Deepgram Aura-2 speech over its WebSocket (`--tts deepgram`), its REST endpoint the fallback.

Each `synthesize(text)` takes a socket (an idle one, or a new one), sends `Speak` and `Flush`,
and yields the binary linear16 audio until `Flushed`. Closing the generator early (barge-in, a
cancelled reply) sends `Clear`; a task of the provider's waits for `Cleared` and puts the socket
back for the next request (or closes it). Sockets are never shared by two requests at once, so
one provider serves any number of sessions.

Recovery (each shown by a test in tests/unit/test_deepgram_tts.py):
- deadlines on the connection (`connect_timeout_s`), each send (`send_timeout_s`), the first
  audio after Flush and every gap after it (`first_byte_timeout_s`: a TTS stalled past 3 s);
- a socket that fails, stalls or is refused is closed and the text is spoken over
  `POST /v1/speak` instead; further failures alternate the two paths, at most `retry.max_retries`
  more tries with jittered back-off, or the server's Retry-After on 429;
- a retry resumes where the audio stopped: the samples already yielded are skipped from the
  new audio (the same text, voice and rate give the same audio);
- after a socket failure, requests go over REST first for `REST_FIRST_S`;
- hedging: no first audio within `tts_hedge_after_s` (0.5 s) of the request, the same text goes
  over REST as well and the first to give audio serves (`providers/hedge.py`); the socket that
  lost is cleared, or closed when it does not answer the Clear within `first_byte_timeout_s`.
  A REST win counts as a socket failure for `REST_FIRST_S`; in that time REST goes first and the
  socket races it the same way (a socket win ends the REST-first time: a REST request stalled
  then cost 3.2 s, its read deadline and a retry). The threshold is chosen above the
  healthy socket's first audio (`first_audio_s` keeps each path's latest; `bench faults` prints
  their p50/p95/p99): at 1 s a stalled socket cost 1.02-1.09 s of every stall, and the whole
  second when a reply given up to a barge-in left the stall to the next one (2.1 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections import Counter, deque
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from voxloop.config import TTSConfig
from voxloop.errors import ProviderError
from voxloop.providers.base import TTS, Samples
from voxloop.providers.deepgram_net import (
    PROVIDER,
    DeepgramClient,
    as_error,
    close_quietly,
    open_socket,
    send,
)
from voxloop.providers.hedge import hedged
from voxloop.providers.recovery import Incident, backoff, report
from voxloop.providers.tts.deepgram_rest import Pcm, message_kind, rest_client, rest_params, rest_speech

if TYPE_CHECKING:
    import httpx
    from websockets.asyncio.client import ClientConnection

log = logging.getLogger("voxloop.tts.deepgram")
FLUSH, CLEAR = json.dumps({"type": "Flush"}), json.dumps({"type": "Clear"})
REST_FIRST_S = 10.0  # after a socket failure, speak over REST first for this long
MAX_IDLE_SOCKETS = 4
POOL_IDLE_S = 30.0  # an idle socket older than this is closed rather than reused
FIRST_AUDIO_KEPT = 1000


class DeepgramTTS(DeepgramClient, TTS):
    name = "deepgram"

    def __init__(self, config: TTSConfig | None = None) -> None:
        self.config = config or TTSConfig()
        self.dg = self.config.deepgram
        self.sample_rate = self.dg.tts_sample_rate
        # what recovery did, for benchmarks and tests: connect, retry, retry_<category>, rest,
        # stall, cleared, gave_up, hedge, hedge_won (REST won a race), hedge_socket_won (the
        # socket won one in the REST-first time)
        self.counters: Counter[str] = Counter()
        # seconds from a request to its first audio, per path ("socket", "rest"), the latest
        # FIRST_AUDIO_KEPT: what `tts_hedge_after_s` is chosen from (bench faults prints them)
        self.first_audio_s: dict[str, deque[float]] = {
            p: deque(maxlen=FIRST_AUDIO_KEPT) for p in ("socket", "rest")
        }
        self._idle: list[tuple[ClientConnection, float]] = []  # (socket, loop time it went idle)
        self._tasks: set[asyncio.Task[None]] = set()  # Clear-and-drain tasks, owned here
        self._clearing: set[ClientConnection] = set()  # their sockets (aborted on aclose)
        self._http: httpx.AsyncClient | None = None
        self._rest_until = 0.0

    async def load(self) -> None:
        """Checks the URL and the key; connects nothing (sockets open on the first request)."""
        _ = self.endpoint

    async def aclose(self) -> None:
        for ws in list(self._clearing):  # a cancel can be lost in a send that just completed:
            ws.transport.abort()  # the socket's end ends the task's wait whatever happens to it
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        idle, self._idle = self._idle, []
        for ws, _ in idle:
            await close_quietly(ws)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- one request, with its retries -------------------------------------------------------------
    async def synthesize(self, text: str) -> AsyncGenerator[Samples, None]:
        if not text.strip():
            return
        loop = asyncio.get_running_loop()
        yielded, tries = 0, 0
        use_rest = loop.time() < self._rest_until
        while True:
            source = self._hedged_speech(text, rest_first=use_rest)
            skip = yielded  # a retry resumes where the audio stopped
            try:
                async with contextlib.aclosing(source) as chunks:
                    async for chunk in chunks:
                        if skip >= len(chunk):
                            skip -= len(chunk)
                            continue
                        out, skip = chunk[skip:], 0
                        yielded += len(out)
                        yield out
                return
            except ProviderError as e:
                tries += 1
                delay = backoff(tries, self.dg.retry, e.retry_after) if e.retryable else None
                if delay is not None and not use_rest and e.retry_after is None and tries == 1:
                    delay = 0.0  # the other path at once: the failure may be the socket's alone
                if e.unreachable and self.has_fallback and tries > 1:
                    delay = None  # neither path reaches the server: the chain's next member speaks
                if delay is None or tries > self.dg.retry.max_retries:
                    self.counters["gave_up"] += 1
                    report(Incident("error", "tts", PROVIDER, e.category, e.message))
                    e.reported = True
                    raise
                if not use_rest:
                    self._rest_until = loop.time() + REST_FIRST_S
                self.counters["retry"] += 1
                self.counters[f"retry_{e.category}"] += 1
                path = "the socket" if use_rest else "REST"
                message = (
                    f"{e.message}; speaking over {path} ({yielded / self.sample_rate:.2f} s already out)"
                )
                report(Incident("retry", "tts", PROVIDER, e.category, message, attempt=tries, delay_s=delay))
                use_rest = not use_rest
                await asyncio.sleep(delay)  # the back-off itself

    def _hedged_speech(self, text: str, rest_first: bool = False) -> AsyncGenerator[Samples, None]:
        """Over the socket (REST when `rest_first`), raced by the other path after
        `tts_hedge_after_s` without audio: a REST request stalled in the REST-first time is no
        more left to its read deadline than a stalled socket is."""
        paths = [self._socket_speech, self._rest_speech]
        first, other = paths[::-1] if rest_first else paths
        if self.dg.tts_hedge_after_s <= 0:
            return first(text)
        return hedged(
            first(text),
            lambda: other(text),
            self.dg.tts_hedge_after_s,
            lambda: self._hedging(rest_first),
            lambda i: self._hedge_won(i, rest_first),
        )

    def _hedging(self, rest_first: bool) -> None:
        self.counters["hedge"] += 1
        first, other = ("REST", "the socket") if rest_first else ("the socket", "REST")
        log.info(
            "Deepgram tts: no audio within %g s over %s; %s races it", self.dg.tts_hedge_after_s, first, other
        )

    def _hedge_won(self, i: int, rest_first: bool) -> None:
        if i != 1:
            return
        if rest_first:  # the socket answered where REST did not: it serves first again
            self.counters["hedge_socket_won"] += 1
            self._rest_until = 0.0
        else:
            self.counters["hedge_won"] += 1
            self._rest_until = asyncio.get_running_loop().time() + REST_FIRST_S

    # -- over the socket ---------------------------------------------------------------------------
    async def _socket_speech(self, text: str) -> AsyncGenerator[Samples, None]:
        began = asyncio.get_running_loop().time()
        ws = await self._checkout()
        key, dg = self.endpoint.key, self.dg
        outcome = "cancelled"  # unless it finishes or fails
        try:
            await send(ws, json.dumps({"type": "Speak", "text": text}), dg.send_timeout_s, "tts", key)
            await send(ws, FLUSH, dg.send_timeout_s, "tts", key)
            pcm = Pcm()
            while True:
                message = await self._receive(ws, "the audio after Flush")
                if isinstance(message, bytes):
                    if len(samples := pcm(message)):
                        if began:
                            self._first_audio("socket", began)
                            began = 0.0
                        yield samples
                    continue
                kind, body = message_kind(message)
                if kind == "Flushed":
                    break
                if kind == "Warning":
                    log.warning("Deepgram tts: %s (%s)", body.get("description"), body.get("code"))
            outcome = "done"
        except ProviderError:
            outcome = "failed"
            raise
        finally:
            self._release(ws, outcome)

    async def _receive(self, ws: ClientConnection, what: str) -> str | bytes:
        try:
            return await asyncio.wait_for(ws.recv(), self.dg.first_byte_timeout_s)
        except TimeoutError:
            self.counters["stall"] += 1
            raise ProviderError(
                f"Deepgram tts: no audio for {self.dg.first_byte_timeout_s:g} s ({what}): the voice is stalled",
                category="timeout",
                provider=PROVIDER,
            ) from None
        except Exception as e:
            raise as_error("tts", e, self.endpoint.key, what) from None

    async def _checkout(self) -> ClientConnection:
        from websockets.protocol import State

        now = asyncio.get_running_loop().time()
        while self._idle:
            ws, since = self._idle.pop()
            if ws.state is State.OPEN and now - since < POOL_IDLE_S:
                return ws
            self._spawn(close_quietly(ws))
        params = [
            ("model", self.dg.tts_model),
            ("encoding", "linear16"),
            ("sample_rate", str(self.sample_rate)),
        ]
        self.counters["connect"] += 1
        return await open_socket(self.endpoint.ws_url("/v1/speak", params), self.endpoint, self.dg, "tts")

    def _release(self, ws: ClientConnection, outcome: str) -> None:
        if outcome == "done":
            self._pool(ws)
        elif outcome == "cancelled":
            self._spawn(self._clear(ws))
        else:
            self._spawn(close_quietly(ws))

    def _pool(self, ws: ClientConnection) -> None:
        if len(self._idle) < MAX_IDLE_SOCKETS:
            self._idle.append((ws, asyncio.get_running_loop().time()))
        else:
            self._spawn(close_quietly(ws))

    async def _clear(self, ws: ClientConnection) -> None:
        """A request given up mid-way: `Clear`, then everything up to `Cleared` is dropped and the
        socket goes back to the pool (closed if the server does not confirm in time)."""
        self.counters["cleared"] += 1
        self._clearing.add(ws)
        try:
            await send(ws, CLEAR, self.dg.send_timeout_s, "tts", self.endpoint.key)
            while True:
                message = await self._receive(ws, "Cleared")
                if isinstance(message, str) and message_kind(message)[0] == "Cleared":
                    break
        except ProviderError as e:
            log.info("Deepgram tts: a cleared socket is closed: %s", e.message)
            await close_quietly(ws)
            return
        finally:
            self._clearing.discard(ws)
        self._pool(ws)

    def _first_audio(self, path: str, began: float) -> None:
        self.first_audio_s[path].append(asyncio.get_running_loop().time() - began)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- over REST ---------------------------------------------------------------------------------
    async def _rest_speech(self, text: str) -> AsyncGenerator[Samples, None]:
        self.counters["rest"] += 1
        if self._http is None:
            self._http = rest_client(self.dg)
        url = self.endpoint.http_url("/v1/speak", rest_params(self.dg.tts_model, self.sample_rate))
        on_first = functools.partial(self._first_audio, "rest", asyncio.get_running_loop().time())
        async for samples in rest_speech(self._http, url, self.endpoint, text, on_first):
            yield samples
