"""End-of-turn decisions from VAD probabilities. Pure: positions are sample counts, no clocks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from voxloop.config import TurnConfig, VADConfig

# Words after which a speaker who pauses has almost always more to say.
_CONTINUATIONS = frozenset(
    "and but or so because if when while although though the a an to of in on at for with from by "
    "that which who whose my your his her their our its is are was were be i'm i'd i'll um uh like "
    "than then as into about".split()
)

Kind = Literal["speech_start", "pause", "resume", "turn_end"]


@dataclass(frozen=True)
class Boundary:
    kind: Kind
    sample: int  # speech_start: onset; pause/turn_end: end of the last speech frame; resume: now


class Endpointer:
    """Speech starts after `min_speech_ms` of speech frames; the recogniser hears of a pause after
    `pause_ms` of silence; the turn ends after `patience_ms` of silence (`end_silence_ms`, or more
    for a user who has gone on talking after a decided turn: `went_on`), or after the longer wait
    set with `hold` for this pause (the words so far sound unfinished). With `ready` set (a
    consumer that answers turns), that silence ends the turn only once `ready()` (its answer could
    be heard now), or at the latest after `ready_wait_ms` of silence; `due` ends it the moment the
    answer gets ready."""

    def __init__(self, turn: TurnConfig, vad: VADConfig, rate: int = 16000) -> None:
        self.turn, self.vad, self.rate = turn, vad, rate
        self.patience_ms = float(turn.end_silence_ms)
        self._end_ms: float = self.patience_ms  # the silence that ends the turn under way
        self.ready: Callable[[], bool] | None = None
        self.reset()

    def went_on(self, gap_ms: float) -> None:
        """The user spoke again `gap_ms` after the end of a turn that was decided (and answered):
        they had paused mid-thought. Wait that long, and a margin, at the end of their turns from
        now on (at most `max_end_silence_ms`)."""
        t = self.turn
        if t.adaptive_silence and 0 <= gap_ms <= t.max_end_silence_ms:
            wait = min(float(t.max_end_silence_ms), gap_ms + t.patience_margin_ms)
            self.patience_ms = max(self.patience_ms, wait)
            self._end_ms = max(self._end_ms, self.patience_ms)  # the turn under way too

    def relax(self) -> None:
        """A turn ended and the user let the agent answer: ease the patience halfway back."""
        base = float(self.turn.end_silence_ms)
        self.patience_ms = max(base, (self.patience_ms + base) / 2)
        if self.patience_ms - base < 20:
            self.patience_ms = base

    def reset(self) -> None:
        self.speaking = False
        self._onset = -1
        self._run = 0  # samples of speech before the turn starts
        self._silence = 0
        self._paused = False
        self._end_ms = self.patience_ms
        self.last_speech_end = 0

    def _decided(self, silence_ms: float) -> bool:
        if silence_ms < self._end_ms:
            return False
        return self.ready is None or silence_ms >= self.turn.ready_wait_ms or self.ready()

    def due(self) -> list[Boundary]:
        """The answer just got ready (`ready`): the turn_end that the silence so far has earned,
        now rather than at the next frame; nothing if it has not (or no turn is paused)."""
        if not (self.speaking and self._paused and self._ms(self._silence) >= self._end_ms):
            return []
        return [self._end_turn()]

    def _end_turn(self) -> Boundary:
        self.speaking, self._run, self._silence, self._paused = False, 0, 0, False
        self._end_ms = self.patience_ms
        return Boundary("turn_end", self.last_speech_end)

    def hold(self, end_silence_ms: float) -> None:
        """Wait this long (instead of `end_silence_ms`) before ending the turn at this pause."""
        if self.speaking and self._paused:
            self._end_ms = max(self._end_ms, end_silence_ms)

    def hurry(self, end_silence_ms: float) -> None:
        """The turn sounds complete (the end-of-turn model): end it at this pause after this much
        silence (plus what adaptive silence has added for this user), unless a longer wait was set
        with `hold`; a frame already past it ends it."""
        if self.speaking and self._paused and self._end_ms <= self.patience_ms:
            added = self.patience_ms - self.turn.end_silence_ms
            self._end_ms = min(self._end_ms, end_silence_ms + added)

    @property
    def paused_ms(self) -> float:
        """The silence so far at a pause in a turn (0 when speaking or outside a turn)."""
        return self._ms(self._silence) if self.speaking and self._paused else 0.0

    def end_now(self) -> list[Boundary]:
        """The user says the turn is over (push-to-talk released): the boundaries that silence
        would have brought, now. Nothing when no turn has started."""
        if not self.speaking:
            self._run = 0
            return []
        out = [] if self._paused else [Boundary("pause", self.last_speech_end)]
        out.append(self._end_turn())
        return out

    def _ms(self, samples: int) -> float:
        return samples * 1000.0 / self.rate

    def update(self, prob: float, frame_end: int, frame_len: int) -> list[Boundary]:
        out: list[Boundary] = []
        speech = prob >= self.vad.threshold
        if not self.speaking:
            if speech:
                if self._run == 0:
                    self._onset = frame_end - frame_len
                self._run += frame_len
                self.last_speech_end = frame_end
                if self._ms(self._run) >= self.turn.min_speech_ms:
                    self.speaking, self._silence, self._paused = True, 0, False
                    self._end_ms = self.patience_ms
                    out.append(Boundary("speech_start", self._onset))
            elif prob < self.vad.neg_threshold:
                self._run = 0
            return out
        if speech:
            self.last_speech_end = frame_end
            self._silence = 0
            if self._paused:
                self._paused = False
                self._end_ms = self.patience_ms
                out.append(Boundary("resume", frame_end))
            return out
        self._silence += frame_len
        if not self._paused and self._ms(self._silence) >= self.turn.pause_ms:
            self._paused = True
            out.append(Boundary("pause", self.last_speech_end))
        if self._decided(self._ms(self._silence)):
            out.append(self._end_turn())
        return out


def sounds_unfinished(text: str) -> bool:
    """Whether a transcript reads like a speaker pausing mid-thought: it ends on a comma, a dash,
    an ellipsis or a word that asks for more ("... and", "the"). No punctuation at all is no evidence."""
    t = text.strip().rstrip("\"')]")
    if not t:
        return False
    if t[-1] in ",;:-\u2014\u2013" or t.endswith(("...", "\u2026")):
        return True  # Whisper writes a trailing-off voice as "..."
    words = t.rstrip(".?!").split()
    return bool(words) and words[-1].lower().strip(",;:") in _CONTINUATIONS
