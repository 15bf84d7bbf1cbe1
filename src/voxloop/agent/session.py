"""One conversation: the user's turns, the agent's replies, barge-in and history, a timeline per turn.

The Listener hears the microphone (echo guard, VAD, endpointer, recogniser); the session decides
what it hears means for the conversation:
  speech_start --> a user turn opens (a reply not yet heard is dropped: the user went on)
  partials ------> LLM prefill of the words so far
  pause ---------> the recogniser decodes at once; a speculative Reply starts, held behind its gate
  resume --------> the speculative Reply is dropped
  turn_end ------> final transcript; the held Reply is committed if it answered the same words,
                   else a new one starts
User sound while the agent speaks pauses its voice at once (BargeIn); a second of speech, or a
shorter burst with real words, interrupts it: the reply is cancelled and history keeps only
what was heard. A cough, a click or an "uh-huh" resumes the voice where it paused. With
`interruptions` off (half duplex) the microphone is ignored while the agent answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from voxloop.agent import events as ev
from voxloop.agent.bargein import BargeIn, is_echo, takes_turn
from voxloop.agent.endpoint import Boundary
from voxloop.agent.history import History
from voxloop.agent.listener import Listener
from voxloop.agent.providers import Providers
from voxloop.agent.reply import Reply
from voxloop.agent.timeline import TurnRecord
from voxloop.agent.toolcall import for_prefill, tool_prompt
from voxloop.config import AgentConfig
from voxloop.errors import StageTimeout, classify
from voxloop.providers.base import Samples, Transcript
from voxloop.providers.recovery import Incident, reporting
from voxloop.redact.logs import redact_logging
from voxloop.redact.wiring import llm_scrub, redacted_event
from voxloop.transports.base import AudioSink

log = logging.getLogger("voxloop.session")
Subscriber = Callable[[ev.Event], None]
REACTION_S = 0.3  # speech that begins sooner after the agent's voice cannot be a reply to it


_TURN_LOG = (
    ev.SpeechStarted,
    ev.SpeechEnded,
    ev.TurnDecided,
    ev.FinalTranscript,
    ev.AgentPaused,
    ev.AgentResumed,
    ev.Interrupted,
    ev.PlaybackFinished,
    ev.TurnDropped,
    ev.ErrorOccurred,
    ev.ProviderRetry,
    ev.ProviderFallback,
    ev.ToolStarted,
    ev.ToolFinished,
    ev.Transfer,
)


class VoiceSession:
    def __init__(self, providers: Providers, sink: AudioSink, config: AgentConfig | None = None) -> None:
        self.providers = providers
        self.sink = sink
        self.config = config or AgentConfig()
        self.history = History(
            tool_prompt(self.config, providers), self.config.llm.history_turns, llm_scrub(self.config)
        )
        if self.config.privacy.redact_logs:
            redact_logging()  # the session's lines name the user's words
        self.records: list[TurnRecord] = []
        self._subscribers: list[Subscriber] = []
        self._ear = Listener(
            providers.vad,
            providers.stt,
            self.config,
            speaker=sink,
            on_partial=self._on_partial,
            rehear=True,
            turn_model=providers.turn,
        )
        self.rate = self._ear.rate
        self._next_id = 1
        self._answer: asyncio.Task[None] | None = None  # the committed reply's task
        self._reply: Reply | None = None
        self._spec: tuple[Reply, asyncio.Task[None]] | None = None  # a held, speculative reply
        self._prefill: asyncio.Task[None] | None = None
        self._pending: TurnRecord | None = None  # the record a pause opened, until resume or turn end
        self._spec_start: asyncio.Task[None] | None = None
        self._decide: asyncio.Task[None] | None = None  # deciding a turn the moment its answer got ready
        self._closing = False
        if self.config.turn.speculate:
            self._ear.wait_for_answer(self._answer_ready)
        self._t0: float | None = None
        self._answer_rec: TurnRecord | None = None
        self._barge = BargeIn(self.config.turn, self.config.vad, self._ear.frame_samples * 1000 / self.rate)
        self._open: dict[int, TurnRecord] = {}  # records of turns not completed yet, by turn id
        self._loose: list[dict[str, object]] = []  # logged events waiting for their turn's record
        self._judge: asyncio.Task[None] | None = None  # judging a short burst over the agent
        self._loose_counts = {"retries": 0, "fallbacks": 0}  # the recogniser's, before a record

    # -- events ----------------------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def _clock(self) -> float:
        return asyncio.get_running_loop().time()

    def _emit(self, event_type: type[ev.Event], **fields: object) -> None:
        now = self._clock()
        event = event_type(t=round(now - (self._t0 if self._t0 is not None else now), 4), **fields)
        event = redacted_event(event) if self.config.privacy.redact_logs else event
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:  # a broken listener must not break the conversation
                log.exception("event listener failed on %s", event.type)
        self._log_event(event)

    def _log_event(self, event: ev.Event) -> None:
        """Keep the turn-taking events in their turn's record (and so in turns.jsonl)."""
        if not isinstance(event, _TURN_LOG):
            return
        entry = {k: v for k, v in event.to_dict().items() if k != "turn_id"}
        turn_id = getattr(event, "turn_id", None)
        if turn_id is None:
            self._loose.append(entry)  # the user's speech, before its turn has a record
            return
        rec = self._open.get(turn_id)
        if rec is None and self._pending is not None and self._pending.turn_id == turn_id:
            rec = self._pending  # a held reply's provider trouble, before its turn is decided
        if rec is not None:
            rec.events.append(entry)
        elif self._answer_rec is not None and self.answering:
            # a sound over the agent that never became a turn: it belongs to the agent's turn
            self._answer_rec.events += [*self._loose, entry]
            self._loose = []

    @property
    def answering(self) -> bool:
        return self._answer is not None and not self._answer.done()

    @property
    def idle(self) -> bool:
        """No user turn open and no reply under way."""
        return not self._ear.in_turn and not self.answering and self._spec is None

    # -- audio in --------------------------------------------------------------------------------
    async def push_audio(self, audio: Samples, rate: int) -> None:
        """Feed microphone audio (mono float32 at `rate`). Call at the pace the audio arrives."""
        frames = self._ear.frames(audio, rate)  # AudioFormatError for audio it cannot take
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        with reporting(self._on_incident):  # the recogniser's trouble (a reply has its own)
            for frame in frames:
                await self._on_frame(frame, now)

    async def end_turn(self) -> None:
        """The user says their turn is over (push-to-talk released): decide it now instead of
        waiting for the end silence. Does nothing when they have not started a turn."""
        with reporting(self._on_incident):
            for b in self._ear.end_now():
                await self._on_boundary(b)

    def _on_incident(self, i: Incident) -> None:
        """The recogniser's failures, retries and fallbacks: events, counted in the turn they
        happen in (the one being heard, else the one being answered, else the next one)."""
        rec = self._pending or (self._answer_rec if self.answering else None)
        event = ev.incident_event(i, rec.turn_id if rec is not None else None)
        if event is not None:
            self._emit(event[0], **event[1])
        if i.kind in ("retry", "fallback"):
            key = "retries" if i.kind == "retry" else "fallbacks"
            if rec is not None:
                setattr(rec, key, getattr(rec, key) + 1)
            else:
                self._loose_counts[key] += 1

    async def _on_frame(self, frame: Samples, fed_at: float) -> None:
        prob = await self._ear.hear(frame, fed_at)  # user speech (the agent's echo out), to the recogniser
        if self._speaking_reply() is not None:
            action = self._barge.update(prob)
            if action is not None:
                await self._on_barge(action)
        elif self._judge is None:
            self._barge.reset()
        for b in self._ear.boundaries():
            await self._on_boundary(b)

    async def _on_boundary(self, b: Boundary) -> None:
        if b.kind == "turn_end" and self._judge is not None:
            await asyncio.gather(self._judge, return_exceptions=True)  # the burst's verdict first
        if b.kind == "speech_start":
            if self.answering and not self.config.turn.interruptions:
                self._ear.skip()  # half duplex: the microphone is ignored while the agent speaks
                return
            if self.answering and not self._barge.ducked:
                self._note_went_on()
                await self.interrupt()  # the reply has not reached the speaker yet
            self._emit(ev.SpeechStarted, audio_s=round(b.sample / self.rate, 3))
        elif not self._ear.in_turn:
            return
        await self._ear.apply(b)  # the recogniser: the turn opens (pre-roll first), hints, it closes
        if b.kind == "pause":
            self._pending = self._new_record(b.sample)
            self._pending.mark("pause", self._clock())
            if self.config.turn.speculate:
                if self._spec_start is not None and not self._spec_start.done():
                    self._spec_start.cancel()  # an earlier pause's: its words are out of date
                self._spec_start = asyncio.get_running_loop().create_task(self._speculate(self._pending))
        elif b.kind == "resume":
            self._pending = None
            await self._drop_speculation()
        elif b.kind == "turn_end":
            rec = self._pending or self._new_record(b.sample)
            self._pending = None
            rec.mark("decided", self._clock())
            self._emit(ev.SpeechEnded, audio_s=rec.speech_end_s)
            rec.events[:0], self._loose = self._loose, []
            rec.retries += self._loose_counts["retries"]
            rec.fallbacks += self._loose_counts["fallbacks"]
            self._loose_counts = {"retries": 0, "fallbacks": 0}
            self._open[rec.turn_id] = rec
            self._next_id += 1
            self._emit(ev.TurnDecided, turn_id=rec.turn_id)
            self._answer_rec = rec
            self._answer = asyncio.get_running_loop().create_task(self._answer_turn(rec))

    def _new_record(self, speech_end: int) -> TurnRecord:
        rec = TurnRecord(turn_id=self._next_id, speech_end_s=round(speech_end / self.rate, 3))
        rec.mark("speech_end", self._fed_time(speech_end))
        return rec

    def _fed_time(self, sample: int) -> float:
        t = self._ear.fed_at(sample)
        return self._clock() if t is None else t

    def _on_partial(self, tr: Transcript) -> None:  # the listener passes on a turn's partials only
        self._emit(ev.PartialTranscript, text=tr.text)
        if self._barge.ducked:  # words over the agent's paused voice: theirs, or a listener's noise?
            reply = self._speaking_reply()
            if reply is not None and self._judge is None and takes_turn(tr.text, reply.generated):
                self._judge = asyncio.get_running_loop().create_task(self._take_turn(reply, tr.text))
            return
        if self.config.turn.prefill_partials and (self._prefill is None or self._prefill.done()):
            messages = for_prefill(self.providers, self.history.prompt_with(tr.text, tr.revises))
            self._prefill = asyncio.get_running_loop().create_task(self.providers.llm.prefill(messages))

    # -- replies ---------------------------------------------------------------------------------
    async def _speculate(self, rec: TurnRecord) -> None:
        """At a pause: answer the pause transcript now, held until the turn is decided."""
        try:
            tr = await self._ear.pause_transcript()
        except BaseException:
            self._on_answer_ready()  # nothing will be ready: the silence alone decides
            raise
        rec.mark("pause_text", self._clock())
        if tr is None or not tr.text.strip() or self._pending is not rec:
            self._on_answer_ready()  # nothing to wait for
            return  # nothing to say, or the user went on / the turn was decided meanwhile
        self._ear.hold_if_unfinished(tr.text)
        reply = self._make_reply(rec, tr.text.strip())
        reply.on_ready = self._on_answer_ready
        prompt = self.history.prompt_with(reply.user_text, tr.revises)
        task = asyncio.get_running_loop().create_task(reply.run(prompt))
        task.add_done_callback(lambda _: self._on_answer_ready())  # ended without audio: failed
        self._spec = (reply, task)

    def _answer_ready(self) -> bool:
        """Whether the turn paused now could be answered at once if it were decided: its held
        reply has audio, or there is nothing to wait for (no words at the pause, a reply that
        failed). Not while the pause transcript is still on its way."""
        if self._spec_start is not None and not self._spec_start.done():
            return False
        spec = self._spec
        return spec is None or spec[0].ready or spec[1].done()

    def _on_answer_ready(self) -> None:
        if self._closing:
            return
        if self._decide is None or self._decide.done():
            self._decide = asyncio.get_running_loop().create_task(self._decide_if_due())

    async def _decide_if_due(self) -> None:
        """The held reply got its first audio: if the silence has already earned the turn's end,
        decide it now, not at the next frame."""
        with reporting(self._on_incident):
            for b in self._ear.decide_if_due():
                await self._on_boundary(b)

    async def _drop_speculation(self) -> None:
        spec, self._spec = self._spec, None
        if spec is not None:
            spec[1].cancel()
            await asyncio.gather(spec[1], return_exceptions=True)

    def _make_reply(self, rec: TurnRecord, text: str) -> Reply:
        return Reply(self.providers, self.sink, rec, text, self.config.turn, self._emit, self.config.tools)

    async def _answer_turn(self, rec: TurnRecord) -> None:
        self._reply = None
        try:
            final = await self._ear.final()
            rec.mark("final", self._clock())
            rec.user_text, rec.revises = final.text.strip(), final.revises
            revises = bool(rec.revises)
            self._emit(ev.FinalTranscript, turn_id=rec.turn_id, text=rec.user_text, revises=revises)
            spec, self._spec = self._spec, None
            if spec is not None and spec[0].user_text == rec.user_text:
                reply, task = spec  # the held reply answered exactly these words: let it speak
            else:
                if spec is not None:  # it answered other words: drop it and its timings
                    spec[1].cancel()
                    await asyncio.gather(spec[1], return_exceptions=True)
                    rec.forget("llm_request", "first_token", "tts_request", "tts_audio", "audio_out")
                if not rec.user_text:
                    log.info(
                        "turn %d: speech was heard but no words were recognised; not answering", rec.turn_id
                    )
                    self._emit(ev.TurnDropped, turn_id=rec.turn_id, reason="no words recognised")
                    self._open.pop(rec.turn_id, None)
                    return
                reply = self._make_reply(rec, rec.user_text)
                task = asyncio.get_running_loop().create_task(
                    reply.run(self.history.prompt_with(rec.user_text, rec.revises))
                )
            self._reply = reply
            self.history.add_user(rec.user_text, rec.revises)
            reply.commit()
            try:
                await task
            finally:
                if not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            self._emit(ev.PlaybackFinished, turn_id=rec.turn_id)
            # Heard in full: keep the text as generated, which the LLM's KV cache already holds.
            self.history.add_tools(reply.tool_messages)
            self.history.add_assistant(reply.generated.strip() or reply.text)
            self._complete(rec)
        except asyncio.CancelledError:
            await self._drop_speculation()  # a held reply nobody will commit
            raise
        except StageTimeout as e:
            self._emit(
                ev.ErrorOccurred,
                code="stage_timeout",
                message=e.message,
                stage=e.stage,
                category=e.category,
                turn_id=rec.turn_id,
            )
            self._complete(rec)
        except Exception as e:
            log.exception("turn %d failed", rec.turn_id)
            self._emit(
                ev.ErrorOccurred,
                code="turn_failed",
                message=str(e),
                stage="reply",
                provider=str(getattr(e, "provider", "")),
                category=classify(e),
                turn_id=rec.turn_id,
            )
            self._complete(rec)

    # -- barge-in ----------------------------------------------------------------------------------
    def _speaking_reply(self) -> Reply | None:
        """The committed reply that user sound may interrupt, if any."""
        if not self.config.turn.interruptions or not self.answering:
            return None
        return self._reply if self._reply is not None and self._reply.committed else None

    async def _on_barge(self, action: str) -> None:
        reply = self._speaking_reply()
        if reply is None:
            return
        if action == "duck":
            self.sink.pause()
            reply.rec.mark("barge_in", self._clock())
            self._emit(ev.AgentPaused, turn_id=reply.rec.turn_id)
        elif action == "interrupt":
            self._note_went_on()
            await self.interrupt()
        elif self._judge is None:
            self._judge = asyncio.get_running_loop().create_task(self._judge_burst(reply))

    async def _judge_burst(self, reply: Reply) -> None:
        """A short burst over the agent has ended: its words decide (none, or "uh-huh": go on)."""
        try:
            text = ""
            if self._ear.in_turn:  # long enough to open a user turn: the recogniser heard it
                tr = await self._ear.pause_transcript()
                text = tr.text.strip() if tr is not None else ""
            if self._reply is not reply or not self.answering or not self._barge.ducked:
                return  # decided meanwhile (the user went on and interrupted)
            if takes_turn(text, reply.generated):
                await self._take_turn(reply, text)
                return
            if not text:
                reason = "no words"
            else:
                reason = f"own echo: {text}" if is_echo(text, reply.generated) else f"backchannel: {text}"
            log.info("turn %d: user sound over the agent (%s); going on", reply.rec.turn_id, reason)
            await self._drop_user_turn(reason)
            self._barge.reset()
            self.sink.resume()
            self._emit(ev.AgentResumed, turn_id=reply.rec.turn_id, reason=reason)
        finally:
            self._judge = None

    async def _take_turn(self, reply: Reply, text: str) -> None:
        try:
            if self._reply is reply and self.answering:
                log.info("turn %d: %r over the agent takes the turn", reply.rec.turn_id, text)
                self._note_went_on()
                await self.interrupt()
        finally:
            self._judge = None

    async def _drop_user_turn(self, reason: str) -> None:
        """Forget the sound that opened a user turn: it was not meant for the agent."""
        if self._spec_start is not None and not self._spec_start.done():
            self._spec_start.cancel()
        self._pending = None
        speech_end = await self._ear.drop()  # None: no turn was open
        await self._drop_speculation()
        if speech_end is not None:
            self._emit(ev.SpeechEnded, audio_s=round(speech_end / self.rate, 3))
            self._emit(ev.TurnDropped, turn_id=self._next_id, reason=reason)

    def _note_went_on(self) -> None:
        """The user takes the turn back while the agent answers. If they began before they could
        have been answering the agent's voice (before it, or within a reaction time of its start),
        they had only paused mid-thought (`Listener.went_on`)."""
        rec = self._answer_rec
        voice = rec.marks.get("audio_out") if rec is not None else None
        if voice is not None and self._fed_time(self._ear.onset) > voice + REACTION_S:
            return  # they heard the agent and answered it: a barge-in, not a pause
        self._ear.went_on()

    # -- interruption and shutdown -----------------------------------------------------------------
    async def interrupt(self) -> None:
        """Stop the agent now: silence the speaker, cancel the reply, keep what was heard."""
        task, reply = self._answer, self._reply
        if task is None or task.done():
            return
        heard = reply.heard_text() if reply is not None else ""
        self.sink.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if reply is None:  # the user went on before the reply began: their words join the next turn
            await self._drop_speculation()
            if self._answer_rec is not None:
                self._emit(
                    ev.TurnDropped,
                    turn_id=self._answer_rec.turn_id,
                    reason="the user went on speaking before the reply began",
                )
                self._open.pop(self._answer_rec.turn_id, None)
            return
        rec = reply.rec
        rec.interrupted = True
        rec.agent_text = heard
        self.history.add_tools(reply.tool_messages)
        self.history.add_assistant(heard)
        log.info("turn %d interrupted by the user; they heard %r", rec.turn_id, heard)
        self._emit(ev.Interrupted, turn_id=rec.turn_id, heard_text=heard)
        self._complete(rec)

    def _complete(self, rec: TurnRecord) -> None:
        self._open.pop(rec.turn_id, None)
        if not rec.interrupted:
            self._ear.relax()  # the user let the agent answer: their turn had really ended
        rec.finish()
        self.records.append(rec)
        log.info(rec.log_line())
        self._emit(ev.TurnCompleted, record=rec.to_dict())

    async def wait_idle(self) -> None:
        while self._answer is not None and not self._answer.done():
            await asyncio.gather(self._answer, return_exceptions=True)

    @property
    def current_turn(self) -> TurnRecord | None:
        """The turn being answered right now, if any."""
        return self._answer_rec if self.answering else None

    async def aclose(self) -> None:
        """Stop: a reply under way is cut off and recorded like an interruption."""
        self._closing = True
        if self.answering:
            await self.interrupt()
        await self._drop_speculation()
        for task in (self._answer, self._prefill, self._spec_start, self._judge, self._decide):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._ear.aclose()
