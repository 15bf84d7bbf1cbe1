"""The listening half of the loop, written once: frames in; speech, pauses, partial and final
transcripts out. The session, `bench wer` and transcription endpoints all use it.

Per frame (`hear`, then `boundaries`):

  audio -> resample, frames -> echo guard (the agent's voice out) -> VAD -> speech probability
        -> the recogniser (in a turn) or the pre-roll (before one)
        -> Endpointer -> speech_start / pause / resume / turn_end, at sample positions

The consumer decides what each boundary means to it, then hands it to `apply`, which does what it
means to the recogniser: speech_start opens the turn (the pre-roll first), pause and resume are
hints (`speech_paused`, `speech_resumed`), turn_end closes it; `final()` then gives its words.
A consumer with an agent may instead `skip` a speech start (half duplex) or `drop` a turn (a
cough over the agent), and calls `went_on` when the user speaks again after a decided turn before
they could be answering anything. With `rehear`, such a turn starts with the end of the last one
heard again (when the recogniser can), and its transcripts replace that turn's (`revises`). A consumer with no agent uses `listen`, which does all of it.

No clock inside: only the `fed_at` times the consumer passes in with each frame.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence

import numpy as np

from voxloop.agent.echo_guard import EchoGuard
from voxloop.agent.endpoint import Boundary, Endpointer, sounds_unfinished
from voxloop.agent.turn_model import TurnJudge
from voxloop.audio.pcm import FrameBuffer, StreamResampler
from voxloop.config import AgentConfig
from voxloop.errors import AudioFormatError, StageTimeout
from voxloop.providers.base import STT, VAD, PartialCallback, Samples, Transcript
from voxloop.providers.turn import TurnModel
from voxloop.transports.base import AudioSink

log = logging.getLogger("voxloop.listener")
MAX_RATE = 192_000


class Listener:
    """One stream of microphone audio, heard. `speaker`: the agent's voice, taken back out of the
    microphone when `config.turn.echo_cancel` is on and the speaker reports what it played.
    `on_partial` hears the recogniser's partial transcripts, only while a turn is open.
    `keywords`: domain terms this stream's recognition is steered toward (a client's keyterms).
    `rehear`: a turn the user went on into re-hears the end of the last one (`went_on`); off for a
    consumer that cannot take a final transcript back (a client that already has it).
    `position`, `onset`, `turn_start` and `in_turn` are for reading: samples heard, where the
    latest speech began, where the audio of the latest turn begins (its pre-roll included: the
    origin of its transcript's word times), whether the recogniser is hearing a turn."""

    def __init__(
        self,
        vad: VAD,
        stt: STT,
        config: AgentConfig,
        *,
        speaker: AudioSink | None = None,
        on_partial: PartialCallback | None = None,
        keywords: Sequence[str] = (),
        rehear: bool = False,
        turn_model: TurnModel | None = None,
    ) -> None:
        self.config = config
        self.rate, self.frame_samples = vad.sample_rate, vad.frame_samples
        self.echo: EchoGuard | None = None
        if config.turn.echo_cancel and speaker is not None and speaker.played_audio(0.0, 0.0) is not None:
            self.echo = EchoGuard(speaker, self.rate, self.frame_samples)
        self._on_partial = on_partial
        self._vad = vad.stream()
        self._stt = stt.stream(self._partial if on_partial is not None else None)
        if keywords:  # this listener's own domain terms (a client's), besides the recogniser's
            self._stt.keywords(keywords)
        self._endpoint = Endpointer(config.turn, config.vad, self.rate)
        # the end-of-turn model's questions at pauses (`agent.turn_model`); None: silence rules only
        self.judge = TurnJudge(turn_model, config.turn, self._endpoint, self.rate) if turn_model else None
        self._question: asyncio.Task[None] | None = None  # asked at the last frame (`listen` awaits it)
        self._frames = FrameBuffer(self.frame_samples)
        self._resampler: StreamResampler | None = None
        frame_ms = self.frame_samples * 1000 / self.rate
        keep = int((config.turn.preroll_ms + config.turn.min_speech_ms) / frame_ms) + 2
        self._preroll: deque[Samples] = deque(maxlen=keep)
        # everything heard since the last turn ended, while it can still be gone on from (`went_on`)
        self._rehear = rehear
        gap = int((config.turn.max_end_silence_ms + config.turn.min_speech_ms) / frame_ms) + keep
        self._since_end: deque[Samples] = deque(maxlen=gap)
        self._closed_at = 0  # where the recogniser's audio of the last turn ends (sample)
        self._gap: Samples | None = None  # the turn's audio from there to its pre-roll (None: not known)
        self._reheard = 0  # samples before its pre-roll the coming turn hears (the last one's end, the gap)
        self._fed: deque[tuple[int, float]] = deque(maxlen=512)  # (frame end sample, fed_at)
        self._heard: tuple[float, int, int] | None = None  # the last frame: (probability, end, length)
        self.position = 0  # samples heard
        self.in_turn = False  # the recogniser is hearing a turn
        self.onset = 0  # where the latest speech began (sample)
        self.turn_start = 0  # where the audio the recogniser hears of the latest turn begins (sample)
        self._last_end: int | None = None  # where the last decided turn's speech ended
        self._last_text = ""  # its final words, once known
        self._turns = 0  # turns decided

    # -- audio in ------------------------------------------------------------------------------------
    def frames(self, audio: Samples, rate: int) -> list[Samples]:
        """Mono float audio at `rate` (8-192 kHz, any length), as whole frames of `frame_samples`
        at the VAD's `self.rate`; what does not fill a frame waits for the next call. Audio it cannot take raises
        AudioFormatError, and nothing of it is kept."""
        if not isinstance(rate, int) or not 8000 <= rate <= MAX_RATE:
            raise AudioFormatError(f"unsupported sample rate {rate!r}", "send audio at 8000-192000 Hz")
        audio = np.asarray(audio)
        if audio.ndim != 1 or not np.issubdtype(audio.dtype, np.floating):
            raise AudioFormatError("audio must be a 1-D float array (mono)", "mix channels down first")
        if not np.all(np.isfinite(audio)):
            raise AudioFormatError("audio holds NaN or infinite samples")
        if self._resampler is None or self._resampler.src_rate != rate:
            self._resampler = StreamResampler(rate, self.rate)
        return self._frames.push(self._resampler(audio.astype(np.float32)))

    async def hear(self, frame: Samples, fed_at: float = 0.0) -> float:
        """One frame, fed at clock `fed_at` (the consumer's clock; the echo guard lines the speaker
        up with it): the agent's echo out, the frame to the recogniser in a turn or to the
        pre-roll before one. Returns its speech probability (after the echo guard: barge-in
        needs it). Then ask `boundaries()` what it means for the turn."""
        self.position += len(frame)
        self._fed.append((self.position, fed_at))
        if self.echo is not None:  # the agent's own voice out first: everything below hears the user
            frame = self.echo.process(frame, fed_at)
        prob = self._vad(frame)
        if self.echo is not None:
            prob = self.echo.user_speech(prob)
        if self.in_turn:
            await self._stt.push(frame)
            if self.judge is not None:
                self.judge.feed(frame)
        else:
            self._preroll.append(frame)
            self._since_end.append(frame)
        self._heard = (prob, self.position, len(frame))
        return prob

    def boundaries(self) -> list[Boundary]:
        """The endpointer's boundaries for the frame `hear` just took (once per frame). Hand each
        to `apply` (or `skip` a speech_start) after the consumer's own part."""
        if self._heard is None:
            return []
        (prob, end, n), self._heard = self._heard, None
        bs = self._started(self._endpoint.update(prob, end, n))
        if self.judge is not None and self.in_turn:
            self._question = self.judge.check()
        return bs

    def wait_for_answer(self, ready: Callable[[], bool]) -> None:
        """A consumer that answers turns: end a turn at its end silence only once `ready()` (its
        answer could be heard now), at the latest after `ready_wait_ms` of silence. Call
        `decide_if_due` when the answer gets ready."""
        if self.config.turn.ready_wait_ms > 0:
            self._endpoint.ready = ready

    def decide_if_due(self) -> list[Boundary]:
        """The answer got ready: the turn_end its silence has already earned, if it has (apply it
        like the others)."""
        return self._endpoint.due() if self.in_turn else []

    def end_now(self) -> list[Boundary]:
        """The user says the turn is over (push-to-talk released): the boundaries silence would
        have brought, now; none before speech began. Apply them like the others."""
        return self._started(self._endpoint.end_now())

    def _started(self, bs: list[Boundary]) -> list[Boundary]:
        for b in bs:
            if b.kind == "speech_start":
                self.onset = b.sample
        return bs

    def fed_at(self, sample: int) -> float | None:
        """The `fed_at` of the frame holding `sample` (None if it is no longer known or not heard yet)."""
        return next((t for end, t in self._fed if end >= sample), None)

    # -- boundaries ----------------------------------------------------------------------------------
    async def apply(self, b: Boundary) -> None:
        """Do what a boundary means for the recogniser: speech_start opens the turn (the pre-roll
        first), pause and resume are hints, turn_end closes it (its words: `final()`). Outside a
        turn, the other boundaries mean nothing."""
        if b.kind == "speech_start":
            self.in_turn = True
            self._gap = self._gap_audio() if self._rehear else None
            self.turn_start = self.position - sum(len(f) for f in self._preroll) - self._reheard
            if self.judge is not None:
                self.judge.reset()
            for f in self._preroll:
                await self._stt.push(f)
                if self.judge is not None:
                    self.judge.feed(f)
            self._preroll.clear()
            self._since_end.clear()
            self._reheard = 0
        elif not self.in_turn:
            return
        elif b.kind == "pause":
            self._stt.speech_paused()
        elif b.kind == "resume":
            self._stt.speech_resumed()
            if self.judge is not None:
                self.judge.resumed()
        else:
            self.in_turn = False
            if self.judge is not None:
                self.judge.reset()
            self._last_end, self._last_text, self._turns = b.sample, "", self._turns + 1
            self._closed_at, self._gap = self.position, None
            self._since_end.clear()

    def skip(self) -> None:
        """Open no turn for the speech that just started (instead of `apply`; half duplex: the
        agent is speaking): the endpointer starts over, the audio stays in the pre-roll."""
        self._endpoint.reset()
        if self.judge is not None:
            self.judge.reset()

    def hold_if_unfinished(self, text: str) -> None:
        """The words so far, at a pause (`pause_transcript`): if they sound unfinished ("and", a
        comma), this pause ends the turn only after `unfinished_silence_ms`."""
        if sounds_unfinished(text):
            self._endpoint.hold(self.config.turn.unfinished_silence_ms)

    def went_on(self) -> None:
        """The user spoke again after the last decided turn, and could not have been answering
        anything (the consumer judges that: an agent's voice they had heard makes it a reply).
        If their speech began within `max_end_silence_ms` of that turn's end, they had paused
        mid-thought: that turn's words become the recogniser's context, and their turns end after
        that pause plus a margin from now on (`adaptive_silence`). Call it before applying the
        speech start, or later in the turn."""
        if self._last_end is None:
            return
        gap_ms = (self.onset - self._last_end) * 1000 / self.rate
        if gap_ms <= self.config.turn.max_end_silence_ms and self._last_text:
            # their words go on: heard again with the last turn's end, or at least as its context
            took = 0
            if self._rehear:
                gap = self._gap if self.in_turn else self._gap_audio()
                took = self._stt.rehear(self._last_text, gap) if gap is not None else 0
            if self.in_turn:
                self.turn_start -= took
            else:
                self._reheard = took
            if not took:
                self._stt.continues(self._last_text)
        before = self._endpoint.patience_ms
        self._endpoint.went_on(gap_ms)
        if self._endpoint.patience_ms > before:
            log.info(
                "the user went on after a %.0f ms pause: turns now end after %.0f ms of silence",
                gap_ms,
                self._endpoint.patience_ms,
            )

    def _gap_audio(self) -> Samples | None:
        """Before a turn's pre-roll is pushed: the audio from the last turn's end to that pre-roll,
        or None if not all of it was kept (a long silence)."""
        if sum(len(f) for f in self._since_end) != self.position - self._closed_at:
            return None
        frames = list(self._since_end)[: len(self._since_end) - len(self._preroll)]
        return np.concatenate(frames) if frames else np.zeros(0, np.float32)

    def relax(self) -> None:
        """The user let the agent answer their turn: ease the end silence back toward the base."""
        self._endpoint.relax()

    @property
    def end_silence_ms(self) -> float:
        """The silence that ends a turn now (without an unfinished-sounding pause)."""
        return self._endpoint.patience_ms

    # -- transcripts ---------------------------------------------------------------------------------
    def _partial(self, tr: Transcript) -> None:
        if self.in_turn and self._on_partial is not None:
            self._on_partial(tr)

    async def pause_transcript(self) -> Transcript | None:
        """After a pause: the words so far, which become the final ones if the turn ends there
        (None when the recogniser cannot tell early, or the user went on meanwhile)."""
        return await self._stt.pause_transcript()

    async def final(self) -> Transcript:
        """The final transcript of the turn that ended (ask after its turn_end), within the stage
        deadline, else StageTimeout. The recogniser is then empty for the next turn."""
        turn, limit = self._turns, self.config.turn.stage_timeout_s
        try:
            tr = await asyncio.wait_for(self._stt.finalize(), limit)
        except TimeoutError:
            log.error("the recogniser gave no final transcript within %.1f s", limit)
            raise StageTimeout("recogniser", limit) from None
        if turn == self._turns:  # still the last decided turn: `went_on` continues from it
            self._last_text = tr.text.strip()
        return tr

    async def drop(self) -> int | None:
        """Forget the speech under way (it was not meant for the agent): the endpointer starts
        over and an open turn's audio is discarded. Returns where that turn's speech ended, or
        None when no turn was open."""
        end = self._endpoint.last_speech_end
        self._endpoint.reset()
        if self.judge is not None:
            self.judge.reset()
        self._reheard = 0
        if not self.in_turn:
            return None
        self.in_turn = False
        await self._stt.finalize()  # empties the recogniser's buffer
        return end

    # -- with no agent -------------------------------------------------------------------------------
    async def listen(
        self, audio: Samples, rate: int, *, end: bool = True
    ) -> AsyncIterator[Boundary | Transcript]:
        """For a consumer with no agent (`bench wer`, a transcription endpoint): hear `audio` as
        fast as it decodes, and yield each boundary and, after each turn_end, that turn's final
        transcript. `end`: the audio ends here, and so does the turn under way (pass False for a
        chunk of a stream that goes on). Speech that starts within `max_end_silence_ms` of the last
        turn's end goes on from it (`went_on`: an agent would still be answering). Partial
        transcripts go to `on_partial`."""
        frames: list[Samples | None] = [*self.frames(audio, rate), *([None] if end else [])]
        for frame in frames:
            if frame is None:
                bs = self.end_now()
            else:
                await self.hear(frame)
                await self._stt.settle()  # a long turn's pieces heard again, before the next frame
                bs = self.boundaries()
                if self._question is not None:  # faster than real time: the verdict before the next frame
                    await asyncio.gather(self._question, return_exceptions=True)
                    self._question = None
            for b in bs:
                if b.kind == "speech_start":
                    self.went_on()
                yield b
                await self.apply(b)
                if b.kind == "turn_end":
                    yield await self.final()

    async def aclose(self) -> None:
        if self.judge is not None:
            await self.judge.aclose()
        await self._stt.aclose()
