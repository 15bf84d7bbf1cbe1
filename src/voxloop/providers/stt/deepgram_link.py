"""The socket under a Deepgram recognition stream, and the audio it still owes the server.

`Link` keeps every sample pushed from the last one a final result covered (`confirmed`) to the
last one pushed, sends it in order, sends `Finalize` once the turn's audio is out, and `KeepAlive`
when nothing else went out for `keepalive_s`. One task owns the socket (`_run`): it connects
(with retries), sends, and on any failure (the socket dropped, a send blocked, `recycle`) closes
it and connects again, the new socket's audio starting at `confirmed` (the replay). A second task
per socket reads its messages and hands `Results` to the stream with the sample that socket's
audio began at, so their times can be placed in the stream.

Stall detection while the user speaks: Deepgram answers speech with results about every second.
`stall_timeout_s` (1.2 s) of speech sent since the last message, and as long without any message,
means the socket is stalled: it is dropped and the audio replayed on a new one, without waiting
for the turn's end. Only speech counts: audio sent while the user pauses (`quiet`: the stream's
pause hint) is not added (a pause holds the count, it does not reset it), KeepAlive periods carry
no audio, and once Finalize is out its own deadline rules. After `retry.max_retries` stalls with no message between them, stall
detection rests until a message comes (a server that answers only at Finalize still works).

Before that deadline, at `stall_hedge_after_s` (0.6 s) of speech unanswered, the socket is hedged
(deepgram_race.py, deepgram_hedge.py): a second socket replays the unconfirmed audio while the
first is kept, and the first to give a `Results` serves; the deadline acts when neither answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from voxloop.config import DeepgramConfig
from voxloop.errors import ProviderError
from voxloop.providers.deepgram_net import (
    PROVIDER,
    Endpoint,
    as_error,
    close_quietly,
    open_socket,
    send,
    with_retries,
)
from voxloop.providers.recovery import Incident, report
from voxloop.providers.stt.deepgram_race import Race
from voxloop.providers.stt.deepgram_wire import (
    CLOSE_STREAM,
    FINALIZE,
    KEEPALIVE,
    Other,
    Results,
    listen_params,
    parse,
)

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

log = logging.getLogger("voxloop.stt.deepgram")
CHUNK_S = 0.25  # at most this much audio a message (a replay goes out in few, large messages)
OnResults = Callable[[Results, int], None]


class Link:
    def __init__(
        self,
        endpoint: Endpoint,
        cfg: DeepgramConfig,
        rate: int,
        counters: Counter[str],
        on_results: OnResults,
    ) -> None:
        self.endpoint, self.cfg, self.rate, self.counters = endpoint, cfg, rate, counters
        self._on_results = on_results
        self.terms: list[str] = []  # keyterms, from the next connection on
        self._audio = bytearray()  # int16 samples [confirmed, pushed)
        self.confirmed = 0  # samples covered by final results (or given up on)
        self.pushed = 0
        self._sent = 0  # samples sent on the current socket (from `_origin`)
        self._origin = 0  # the sample the current socket's audio begins at
        self._finalize_at: int | None = None  # send Finalize once the audio up to here is out
        self.finalize_sent_at: float | None = None  # loop time it went out on the current socket
        self.error: ProviderError | None = None  # the link gave up (until `end_turn`)
        self.socket: ClientConnection | None = None
        self.changed = asyncio.Event()  # results, errors, Finalize sent: for the stream's waits
        self._wake = asyncio.Event()  # work for the owner task
        self._owner: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[ProviderError] | None = None
        self._drop: ProviderError | None = None  # `recycle`: the owner must drop the socket
        self._closing = False
        self._last_sent = 0.0
        self._connections = 0
        self.has_fallback = False  # a chain's next member can serve: do not retry an unreachable server
        self.quiet = False  # the user paused: audio sent now does not wait for an answer
        self._heard_at = 0.0  # loop time of the current socket's last message (or its opening)
        self._unanswered = 0  # samples of speech sent since then
        self._stalls = 0  # stalls detected since the last message
        self.race = Race(self, int(CHUNK_S * rate))  # hedging this socket (deepgram_race.py)

    # -- for the stream ----------------------------------------------------------------------------
    def append(self, pcm: bytes) -> None:
        self._audio += pcm
        self.pushed += len(pcm) // 2
        over = self.pushed - self.confirmed - int(self.cfg.max_replay_s * self.rate)
        if over > 0:  # a server away for longer than the buffer: the oldest audio goes
            self.counters["replay_overflow"] += 1
            self._forget(self.confirmed + over)
        self._start()

    def confirm(self, end: int) -> None:
        """A final result covers the audio up to sample `end` (of what was sent)."""
        self._forget(min(end, self._sent))

    def request_finalize(self, mark: int) -> None:
        self._finalize_at, self.finalize_sent_at = mark, None
        self._start()

    def end_turn(self, mark: int) -> None:
        """The turn up to `mark` is over, whatever came of it: its audio is not sent again, and the
        next turn gets a fresh retry budget."""
        self._forget(mark)
        self._finalize_at, self.finalize_sent_at, self.error = None, None, None
        self.quiet, self._unanswered = False, 0
        self._wake.set()

    def recycle(self, reason: str) -> None:
        """Drop the socket (it is stalled) and connect again, replaying what is not confirmed."""
        if self.socket is not None:
            self._drop = ProviderError(f"Deepgram stt: {reason}", category="timeout", provider=PROVIDER)
            self._wake.set()

    @property
    def finalize_mark(self) -> int | None:
        return self._finalize_at

    def audio_at(self, start: int, n: int) -> bytes:
        """`n` samples from sample `start` (which must not be confirmed yet)."""
        i = (start - self.confirmed) * 2
        return bytes(self._audio[i : i + 2 * n])

    async def shutdown(self) -> None:
        self._closing = True
        await self.race.stop()
        owner, reader, ws = self._owner, self._reader, self.socket
        for task in (owner, reader):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if ws is not None:
            with contextlib.suppress(ProviderError):
                await send(ws, CLOSE_STREAM, 1.0, "stt", self.endpoint.key)
        await close_quietly(ws)
        self.socket = None

    # -- the buffer ----------------------------------------------------------------------------------
    def _forget(self, upto: int) -> None:
        upto = min(upto, self.pushed)
        if upto > self.confirmed:
            del self._audio[: (upto - self.confirmed) * 2]
            self.confirmed = upto

    def _has_work(self) -> bool:
        return self._sent < self.pushed or (self._finalize_at is not None and self.finalize_sent_at is None)

    # -- the owner task ------------------------------------------------------------------------------
    def _start(self) -> None:
        if self._owner is None and not self._closing:
            self._owner = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()
        self.race.wake()

    async def _run(self) -> None:
        try:
            while not self._closing:
                self._wake.clear()
                if (ws := self.socket) is not None:
                    try:
                        await self._pump(ws)
                    except ProviderError as e:
                        if self.socket is ws and not self.race.promote(e):
                            await self._dropped(e)
                    await self.race.settle()
                elif self.error is None and self._has_work():
                    try:
                        await with_retries(
                            self._connect, self.cfg, "stt", self.counters, has_fallback=self.has_fallback
                        )
                    except ProviderError as e:
                        self.error = e
                        self.changed.set()
                else:
                    await self._wake.wait()
        except Exception as e:  # a bug must not leave the stream waiting: it fails the turn
            log.exception("the Deepgram link failed")
            self.error = as_error("stt", e, self.endpoint.key, "the stream")
            self.changed.set()

    async def _connect(self) -> None:
        url = self.endpoint.ws_url("/v1/listen", listen_params(self.cfg, self.rate, self.terms))
        ws = await open_socket(url, self.endpoint, self.cfg, "stt")
        self._origin = self._sent = self.confirmed
        if self._connections and self.pushed > self.confirmed:
            self.counters["replay"] += 1
            self.counters["replayed_ms"] += (self.pushed - self.confirmed) * 1000 // self.rate
        self._connections += 1
        self.socket, self._drop, self.finalize_sent_at = ws, None, None
        self._last_sent = asyncio.get_running_loop().time()
        self._heard_at, self._unanswered = self._last_sent, 0
        self._reader = asyncio.get_running_loop().create_task(self.read(ws, self._origin))
        self.changed.set()

    async def _pump(self, ws: ClientConnection) -> None:
        """Send what is due, in order, until the socket fails (ProviderError) or the link closes."""
        loop = asyncio.get_running_loop()
        key, timeout = self.endpoint.key, self.cfg.send_timeout_s
        while not self._closing and self.socket is ws:
            self._wake.clear()
            if self._drop is not None:
                raise self._drop
            if self._reader is not None and self._reader.done():
                raise self._reader.result()
            if self._sent < self.confirmed:
                raise ProviderError(
                    "Deepgram stt: unsent audio overflowed the replay buffer", provider=PROVIDER
                )
            limit = self.pushed
            if self._finalize_at is not None and self.finalize_sent_at is None:
                limit = min(limit, max(self._finalize_at, self._sent))
            self._check_stall(loop.time())
            self.race.check(loop.time())
            if self._sent < limit:
                n = min(limit - self._sent, int(CHUNK_S * self.rate))
                await send(ws, self.audio_at(self._sent, n), timeout, "stt", key)
                if self.socket is not ws:
                    return  # a hedge took over meanwhile: it owns the count now
                self._sent += n
                self._last_sent = loop.time()
                if not self.quiet and self.finalize_sent_at is None:
                    self._unanswered += n
            elif self._finalize_at is not None and self.finalize_sent_at is None:
                await send(ws, FINALIZE, timeout, "stt", key)
                if self.socket is not ws:
                    return
                self.finalize_sent_at = loop.time()
                self.changed.set()
            elif (idle := self._last_sent + self.cfg.keepalive_s - loop.time()) <= 0:
                await send(ws, KEEPALIVE, timeout, "stt", key)
                self.counters["keepalive"] += 1
                self._last_sent = loop.time()
            else:
                with contextlib.suppress(TimeoutError):
                    due = min(idle, self._stall_in(loop.time()), self.race.due_in(loop.time()))
                    await asyncio.wait_for(self._wake.wait(), due)

    def _stall_in(self, now: float) -> float:
        """Seconds until the socket counts as stalled (inf: the clock is not running)."""
        limit = self.cfg.stall_timeout_s
        if self.quiet or self.finalize_sent_at is not None or limit <= 0:
            return float("inf")
        if self._unanswered < limit * self.rate or self._stalls >= self.cfg.retry.max_retries:
            return float("inf")  # (each push wakes the pump: the count is checked again then)
        return max(0.0, self._heard_at + limit - now)

    def _check_stall(self, now: float) -> None:
        if self._stall_in(now) > 0:
            return
        self._stalls += 1
        self.counters["stall"] += 1
        self.counters["stall_speech"] += 1
        raise ProviderError(
            f"Deepgram stt: no message for {self.cfg.stall_timeout_s:g} s while speech was sent"
            " (the socket is stalled)",
            category="timeout",
            provider=PROVIDER,
        )

    async def _dropped(self, e: ProviderError) -> None:
        await self.race.give_up()  # a hedge not connected yet, or failed, cannot take over
        ws, reader = self.socket, self._reader
        self.socket, self._reader, self._drop = None, None, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await close_quietly(ws)
        self._sent, self.finalize_sent_at = self.confirmed, None
        if self._closing:
            return
        owed = (self.pushed - self.confirmed) / self.rate
        if not e.retryable:
            self.error = e
            self.counters["gave_up"] += 1
            report(Incident("error", "stt", PROVIDER, e.category, e.message))
            e.reported = True
        else:
            self.counters["reconnect"] += 1
            message = f"{e.message}; reconnecting ({owed:.2f} s of audio to send again)"
            report(Incident("retry", "stt", PROVIDER, e.category, message, attempt=1))
        self.changed.set()

    # -- the reader task -----------------------------------------------------------------------------
    async def read(self, ws: ClientConnection, origin: int) -> ProviderError:
        """Hands each message of the current socket (or of the winner of a race: `_race`) on until
        the socket closes; returns why it closed."""
        try:
            async for message in ws:
                m = None if isinstance(message, bytes) else parse(message)
                if isinstance(m, Results) and not self.race.may_hand(ws):
                    continue  # a socket that lost a race, or was replaced
                if ws is not self.socket:
                    continue
                self._heard_at, self._unanswered, self._stalls = asyncio.get_running_loop().time(), 0, 0
                if isinstance(m, Results):
                    self._on_results(m, origin)
                elif m is not None:
                    self._on_other(m)
            reason = as_error("stt", ConnectionResetError("the server closed the stream"), "", "the stream")
        except Exception as e:
            reason = as_error("stt", e, self.endpoint.key, "the stream")
        finally:
            self._wake.set()
            self.changed.set()
            self.race.wake()
        return reason

    def _on_other(self, m: Other) -> None:
        if m.type in ("Error", "invalid"):
            log.warning("Deepgram stt: the server says %s", str(m.body)[:300])
        else:
            self.counters[f"msg_{m.type}"] += 1
