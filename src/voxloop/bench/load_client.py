"""One caller of `bench load`: a conversation over /v1/agent, as a well-behaved client holds it.

The microphone sends 20 ms frames at real-time pace for the whole session, silence between clips.
Each clip is one turn: 0.5 s of silence, the clip, then silence until the answer to it has been
played (the turn decided after the clip's labelled speech end has completed). The speaker plays
what arrives at real-time pace, obeys audio_pause / audio_resume / audio_stop, and reports its
playhead every 100 ms while it plays and once when it runs dry.

Each turn keeps the server's timeline (`turn_completed`) and the client's own view: the time from
sending the frame that holds the clip's last speech sample to the arrival of the answer's first
words (`agent_speech` after any filler). Failures are data: refused, closed, no answer in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxloop.audio.pcm import to_int16
from voxloop.bench.corpus import Clip

log = logging.getLogger("voxloop.bench")
RATE = 16000
FRAME = RATE // 50  # 20 ms
LEAD_S = 0.5
REPORT_S = 0.1


@dataclass(frozen=True)
class Turn:
    """One clip of one caller: what the agent and the client saw."""

    session: int
    clip: str
    record: dict[str, Any] | None  # the server's timeline of the turn that answered the clip
    client_v2v_answer_ms: float | None = None
    error: str = ""  # why no answer was measured


@dataclass
class CallResult:
    session: int
    turns: list[Turn] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # error events and the caller's own failures


class Caller:
    def __init__(
        self, url: str, index: int, clips: Sequence[tuple[Clip, float]], key: str = "", answer_s: float = 60.0
    ) -> None:
        """`clips`: each clip with its labelled speech end (seconds into it)."""
        self.url, self.index, self.clips, self.key, self.answer_s = url, index, clips, key, answer_s
        self.result = CallResult(index)
        self._ws: Any = None
        self._pending: list[np.ndarray] = []  # audio queued for the microphone
        self._sent = 0  # samples the microphone has sent
        self._sent_at: dict[int, float] = {}  # sample index -> loop time it was sent (watched ones)
        self._events: list[tuple[float, dict[str, Any]]] = []  # arrival time, event
        self._changed = asyncio.Event()
        self._rate = 24000  # the voice's rate (from `started`)
        self._received = 0  # voice samples received
        self._played = 0.0  # the modelled speaker's playhead
        self._paused = False
        self._closed = False

    # -- the conversation --------------------------------------------------------------------------
    async def run(self) -> CallResult:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException

        headers = {"Authorization": f"Bearer {self.key}"} if self.key else None
        try:
            async with connect(self.url, max_size=None, compression=None, additional_headers=headers) as ws:
                self._ws = ws
                await self._converse()
        except InvalidStatus as e:
            self._fail(
                f"refused at the handshake: HTTP {e.response.status_code} {_body_code(e.response.body)}"
            )
        except (OSError, WebSocketException, TimeoutError) as e:
            self._fail(f"{type(e).__name__}: {e}")
        return self.result

    async def _converse(self) -> None:
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self._read())
        try:
            await self._send({"type": "start", "protocol": 1, "input_sample_rate": RATE})
            started = await self._wait(lambda: self._first("started"), 30, "started")
            if started is None:
                return
            self._rate = int(started["output_sample_rate"])
            tasks = [loop.create_task(self._mic()), loop.create_task(self._speaker())]
            try:
                for clip, speech_end in self.clips:
                    if not await self._turn(clip, speech_end):
                        break
                await self._send({"type": "stop"})
                await self._wait(lambda: self._closed or None, 15, "the close after stop")
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            self.result.errors += [f"{e['code']}: {e.get('message', '')}" for _, e in self._all("error")]

    async def _turn(self, clip: Clip, speech_end: float) -> bool:
        """Say one clip and wait for its answer to be played; False if the session is over."""
        audio = clip.audio()
        start = self._sent + int(LEAD_S * RATE)
        last = start + max(0, min(len(audio), int(speech_end * RATE)) - 1)  # the last speech sample
        self._sent_at[last] = 0.0
        self._pending.append(np.zeros(int(LEAD_S * RATE), np.float32))
        self._pending.append(audio)
        if (
            await self._wait(lambda: self._sent_at[last] or None, len(audio) / RATE + 30, "the clip sent")
            is None
        ):
            return False
        t_end = self._sent_at[last]

        def answered() -> dict[str, Any] | None:  # the turn decided after the speech end, completed
            decided = [e["turn_id"] for t, e in self._events if e["type"] == "turn_decided" and t >= t_end]
            if not decided:
                return None
            done = [e for _, e in self._events if e["type"] in ("turn_completed", "turn_dropped")]
            return next((e for e in done if _turn_id(e) == decided[-1]), None)

        done = await self._wait(answered, self.answer_s, f"the answer to {clip.id}")
        if done is None:
            self.result.turns.append(Turn(self.index, clip.id, None, error="no answer"))
            return not self._closed
        if done["type"] == "turn_dropped":
            self.result.turns.append(Turn(self.index, clip.id, None, error=f"dropped: {done['reason']}"))
            return True
        record = done["turn"]
        spoken = [
            t for t, e in self._events if e["type"] == "agent_speech" and e["turn_id"] == record["turn_id"]
        ]
        answer_at = spoken[record.get("fillers", 0)] if len(spoken) > record.get("fillers", 0) else None
        client_ms = None if answer_at is None else round((answer_at - t_end) * 1000, 1)
        self.result.turns.append(Turn(self.index, clip.id, record, client_ms))
        log.info(
            "caller %d, clip %s: answered after %s ms (first audio %s ms, first token %s ms)",
            self.index,
            clip.id,
            _ms(record.get("v2v_answer_ms")),
            _ms(record.get("v2v_ms")),
            _ms(record.get("llm_ttft_ms")),
        )
        await self._wait(lambda: (self._played >= self._received) or None, 120, "the answer played")
        return True

    # -- the microphone and the speaker ------------------------------------------------------------
    async def _mic(self) -> None:
        loop = asyncio.get_running_loop()
        t0, buffer = loop.time(), np.zeros(0, np.float32)
        while True:
            due = t0 + (self._sent + FRAME) / RATE
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)  # a microphone's pace, not a wait for the server
            while len(buffer) < FRAME and self._pending:
                buffer = np.concatenate([buffer, self._pending.pop(0)])
            frame, buffer = buffer[:FRAME], buffer[FRAME:]
            if len(frame) < FRAME:
                frame = np.concatenate([frame, np.zeros(FRAME - len(frame), np.float32)])
            await self._ws.send(to_int16(frame).tobytes())
            now, self._sent = loop.time(), self._sent + FRAME
            for i in [i for i, t in self._sent_at.items() if not t and i < self._sent]:
                self._sent_at[i] = now
                self._changed.set()

    async def _speaker(self) -> None:
        loop = asyncio.get_running_loop()
        last, reported = loop.time(), -1
        while True:
            await asyncio.sleep(REPORT_S)  # the playhead moves with the clock; reported at its pace
            now = loop.time()
            if not self._paused:
                self._played = min(float(self._received), self._played + (now - last) * self._rate)
            last = now
            if int(self._played) != reported:
                reported = int(self._played)
                await self._send({"type": "playback", "position": reported})
                self._changed.set()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for msg in self._ws:
                if isinstance(msg, bytes):
                    self._received += len(msg) // 2
                    continue
                event = json.loads(msg)
                kind = event.get("type")
                if kind == "audio_pause":
                    self._paused = True
                elif kind == "audio_resume":
                    self._paused = False
                elif kind == "audio_stop":
                    self._played, self._paused = float(max(self._played, event["position"])), False
                self._events.append((loop.time(), event))
                self._changed.set()
        finally:
            self._closed = True
            self._changed.set()

    # -- helpers -----------------------------------------------------------------------------------
    async def _send(self, msg: dict[str, Any]) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):  # the reader notes the close
            await self._ws.send(json.dumps(msg))

    def _first(self, kind: str) -> dict[str, Any] | None:
        return next((e for _, e in self._events if e["type"] == kind), None)

    def _all(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, e) for t, e in self._events if e["type"] == kind]

    async def _wait(self, check: Any, within: float, what: str) -> Any:
        """`check()` once truthy (re-checked on every message and playhead move), or None after
        `within` seconds or on a close, noted as the caller's failure."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not (found := check()):
            if self._closed:
                told = any(e.get("fatal") for _, e in self._all("error"))  # the server said why
                if what != "the close after stop" and not told:
                    code = self._ws.close_code if self._ws is not None else None
                    self._fail(f"closed ({code}) while waiting for {what}")
                return None
            self._changed.clear()
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    await self._changed.wait()
            except TimeoutError:
                self._fail(f"no {what} within {within:.0f} s")
                return None
        return found

    def _fail(self, why: str) -> None:
        log.warning("caller %d: %s", self.index, why)
        self.result.errors.append(why)


def _turn_id(event: dict[str, Any]) -> int | None:
    return event["turn"]["turn_id"] if event["type"] == "turn_completed" else event.get("turn_id")


def _body_code(body: bytes | bytearray | None) -> str:
    try:
        err = json.loads(body or b"{}")["error"]
        return f"{err['code']}: {err['message']}"
    except (ValueError, KeyError, TypeError):
        return ""


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"
