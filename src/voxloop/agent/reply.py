"""One agent reply: LLM pieces -> clause/sentence chunks -> TTS -> speaker.

A reply can be started speculatively (the user has paused and the pause transcript is known) and
held behind a gate: it generates and synthesises, but nothing reaches the speaker until `commit`.
If the user goes on speaking the reply is cancelled and nobody ever hears it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Sequence

from voxloop.agent import events as ev
from voxloop.agent.chunker import SentenceChunker
from voxloop.agent.providers import Providers
from voxloop.agent.timeline import TurnRecord
from voxloop.agent.toolcall import ToolRounds
from voxloop.agent.watchdog import played_out, watched
from voxloop.audio.pcm import resample
from voxloop.config import ToolsConfig, TurnConfig
from voxloop.providers.base import Message, Samples
from voxloop.providers.recovery import Incident, reporting
from voxloop.transports.base import AudioSink

Emit = Callable[..., None]


class Reply:
    def __init__(
        self,
        providers: Providers,
        sink: AudioSink,
        rec: TurnRecord,
        user_text: str,
        turn: TurnConfig,
        emit: Emit,
        tools: ToolsConfig | None = None,
    ) -> None:
        self.providers, self.sink, self.rec, self.user_text = providers, sink, rec, user_text
        self.turn = turn
        self._emit = emit
        self._gate = asyncio.Event()
        self._base = (0, 0)  # sink (played, queued) counters at commit
        self.spoken: list[tuple[str, int, int]] = []  # (text, start, end) in sink samples of this reply
        self.generated = ""  # the LLM's text exactly as generated (keeps its KV cache reusable)
        self._voicing = False  # the voice is synthesising a request now
        self._pieces = 0  # LLM pieces so far
        self._filler_said = False  # at most one filler per reply
        self._alive = 0.0  # loop time of the providers' last retry or fallback (agent/watchdog.py)
        self._chunks: asyncio.Queue[str | None] | None = None
        self.ready = False  # it could be heard now: its first audio is synthesised, or a tool call
        # waits for `commit` (held until then, if not yet)
        self.on_ready: Callable[[], None] | None = None  # called when it gets ready
        self.tools: ToolRounds | None = None
        if providers.tools:
            self.tools = ToolRounds(
                providers.llm,
                providers.tools,
                tools or ToolsConfig(),
                turn_id=rec.turn_id,
                emit=emit,
                say=self._filler,
                touch=self._touch,
                committed=self._tools_may_act,
                records=rec.tools,
            )

    def _got_ready(self) -> None:
        if not self.ready:
            self.ready = True
            if self.on_ready is not None:
                self.on_ready()

    async def _tools_may_act(self) -> None:
        """A tool call waits for the turn to be decided (a speculative reply must not act), so
        nothing more gets ready before it: it is as ready as it can be."""
        self._got_ready()
        await self._gate.wait()

    @staticmethod
    def _clock() -> float:
        return asyncio.get_running_loop().time()

    @property
    def committed(self) -> bool:
        return self._gate.is_set()

    def commit(self) -> None:
        """Let the reply reach the speaker (at once if audio is already waiting)."""
        if not self._gate.is_set():
            self._base = (self.sink.played_samples(), self.sink.queued_samples())
            self._gate.set()

    @property
    def text(self) -> str:
        return " ".join(t for t, _, _ in self.spoken)

    async def run(self, messages: Sequence[Message]) -> None:
        """Generate, synthesise and (once committed) play the whole reply, then wait for playback."""
        with reporting(self._incident):  # the providers' retries and fallbacks, for this turn
            await self._run(messages)

    async def _run(self, messages: Sequence[Message]) -> None:
        chunks: asyncio.Queue[str | None] = asyncio.Queue()
        self._chunks = chunks
        audio: asyncio.Queue[tuple[str, Samples | None] | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._voice(chunks, audio)), loop.create_task(self._play(audio))]
        try:
            chunker = SentenceChunker(self.turn.first_clause_words, self.turn.first_words)
            self.rec.mark("llm_request", self._clock())
            async with (
                contextlib.aclosing(self._stream(messages)) as stream,
                contextlib.aclosing(
                    watched(
                        stream,
                        "language model",
                        self.turn.stage_timeout_s,
                        self.turn.filler_after_s,
                        lambda: self._filler(self.turn.filler_text),
                        alive=lambda: self._alive,
                    )
                ) as pieces,
            ):
                async for piece in pieces:
                    self.rec.mark("first_token", self._clock())
                    self._pieces += 1
                    self.generated += piece
                    for chunk in chunker.push(piece, self._hurry(chunker, chunks)):
                        chunks.put_nowait(chunk)
                    if any(t.done() for t in tasks):
                        break  # the voice or the speaker failed; its error surfaces below
            for chunk in chunker.flush():
                chunks.put_nowait(chunk)
            chunks.put_nowait(None)
            await asyncio.gather(*tasks)
            await played_out(self.sink, self.turn.playback_idle_ms, self.turn.playback_ceiling_s)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        return self.tools.stream(messages) if self.tools else self.providers.llm.stream(messages)

    @property
    def tool_messages(self) -> list[Message]:
        """The tools this reply called and their results, in order, for the history."""
        return list(self.tools.messages) if self.tools else []

    def _touch(self) -> None:
        self._alive = self._clock()  # a tool round began or ended: the watchdog counts from now

    def _filler(self, text: str) -> None:
        """Say `text` while the reply is on its way: once per reply, and only before its words."""
        if self._filler_said or self._pieces or self._chunks is None:
            return
        self._filler_said = True
        self.rec.mark("filler", self._clock())
        self.rec.fillers += 1
        self._chunks.put_nowait(text)

    def _incident(self, i: Incident) -> None:
        """A provider's failure, retry or move to the next of its chain, in this reply's turn: an
        event, a count in the turn's record, and a filler for a language model retried."""
        self._alive = self._clock()
        event = ev.incident_event(i, self.rec.turn_id)
        if event is not None:
            self._emit(event[0], **event[1])
        if i.kind == "retry":
            self.rec.retries += 1
        elif i.kind == "fallback":
            self.rec.fallbacks += 1
        if i.kind == "retry" and i.stage == "llm":
            self._filler(self.turn.retry_filler_text)

    def _hurry(self, chunker: SentenceChunker, chunks: asyncio.Queue[str | None]) -> bool:
        """The text comes slower than the voice needs it (a busy machine): the first words have
        waited `first_chunk_wait_ms` since the first token or come `slow_token_ms` or more apart,
        or the speaker is about to run dry with nothing else on the way. Then the words so far
        are said now."""
        if chunker.emitted == 0:
            first = self.rec.marks.get("first_token")
            if first is None:
                return False
            waited_ms = (self._clock() - first) * 1000
            # tokens slower than `slow_token_ms` each: the wait would only be longer
            slow = self._pieces > 1 and waited_ms / (self._pieces - 1) >= self.turn.slow_token_ms
            return slow or waited_ms >= self.turn.first_chunk_wait_ms
        if not self.committed or self._voicing or not chunks.empty():
            return False
        ahead = (self.sink.queued_samples() - self.sink.played_samples()) / self.sink.sample_rate
        return ahead * 1000 < self.turn.run_dry_ms

    async def _voice(
        self, chunks: asyncio.Queue[str | None], out: asyncio.Queue[tuple[str, Samples | None] | None]
    ) -> None:
        tts, rate = self.providers.tts, self.sink.sample_rate
        while (text := await chunks.get()) is not None:
            self._voicing = True
            self.rec.mark("tts_request", self._clock())
            async with (
                contextlib.aclosing(tts.synthesize(text)) as stream,
                contextlib.aclosing(watched(stream, "voice", self.turn.stage_timeout_s)) as voiced,
            ):
                async for samples in voiced:
                    self.rec.mark("tts_audio", self._clock())
                    out.put_nowait((text, resample(samples, tts.sample_rate, rate)))
                    self._got_ready()
            out.put_nowait((text, None))  # end of this text's audio
            self._voicing = False
        out.put_nowait(None)

    async def _play(self, audio: asyncio.Queue[tuple[str, Samples | None] | None]) -> None:
        await self._gate.wait()
        start: int | None = None
        texts, filler = 0, False
        while (item := await audio.get()) is not None:
            text, samples = item
            queued = self.sink.queued_samples() - self._base[1]
            if samples is None:
                if start is not None:
                    self.spoken.append((text, start, queued))
                    self.rec.agent_text = self.text
                start = None
                continue
            if start is None:
                start = queued
                # a filler is said before any of the model's words, so only ever as the first text
                filler, texts = texts == 0 and self._filler_said, texts + 1
                self._emit(ev.AgentSpeech, turn_id=self.rec.turn_id, text=text)
            self.sink.play(samples)
            self.rec.mark("audio_out", self._clock())
            if not filler:
                self.rec.mark("answer_out", self._clock())

    def heard_text(self) -> str:
        """The part of this reply that has actually been played."""
        if not self.committed:
            return ""
        played = self.sink.played_samples() - self._base[0]
        words: list[str] = []
        for text, start, end in self.spoken:
            if played >= end:
                words += text.split()
            elif played > start:
                parts = text.split()
                words += parts[: int(len(parts) * (played - start) / max(1, end - start))]
        return " ".join(words)
