"""Barge-in while the agent speaks: duck at once, then decide whether the user really took the turn.

Pure, like the Endpointer: it sees one VAD probability per frame and answers with an action.

  speaking ──(VAD >= `barge_in_threshold` for `barge_in_onset_ms`, or >= `barge_in_soft_threshold`
            for `barge_in_soft_ms`)──> "duck": the speaker pauses, keeping the rest (one 32 ms
            frame at 0.4, or two in a row at 0.15: soft onsets hover below the 0.5 speech
            threshold for 100-250 ms, and a needless pause costs little: the voice resumes)
  ducked ───(a partial transcript with words of the user's own: the session)──> interrupt
  ducked ───(speech adds up to `interrupt_min_speech_ms`)──> "interrupt": the reply is cancelled
  ducked ───(then `judge_silence_ms` of silence)──> "judge": a short burst ended; its transcript
            decides (`takes_turn`): no words, a cough, "uh-huh" or the agent's own words coming
            back (echo) -> resume; anything else -> interrupt
  ducked ───(no speech at all after the onset run: a click)──> the same "judge", with no words

The rule, in words: one frame of likely speech, or two of possible speech, pauses the agent (well
inside 150 ms of the onset);
once paused there is no hurry, so the words decide: the user's own words interrupt as soon as the
recogniser has them, a second of speech interrupts whatever it is, and anything else resumes.
"""

from __future__ import annotations

import re
from typing import Literal

from voxloop.config import TurnConfig, VADConfig

Action = Literal["duck", "interrupt", "judge"]

# What a listener says to show they are still listening, not to take the turn.
BACKCHANNELS = frozenset(
    "uh-huh uh huh mm-hmm mhm mm hmm hm um uh ah oh okay ok yeah yep yes right sure alright "
    "i see got it cool nice wow".split()
)
_NOISE = re.compile(r"^[\s\W]*$|^\s*[\(\[\*].*[\)\]\*]\s*$")  # nothing, or "(coughs)", "[noise]"
_HUM = re.compile(r"^[mhn]*m[mhn]*$")  # "hmm", "mhm", and a hummed "mm-hmm" heard as "nmm", "mmm"


def is_backchannel(text: str) -> bool:
    """No words (a cough, a click, Whisper's "(coughing)"), or only listener noises ("uh-huh",
    "yeah, okay"): the agent should go on. Anything else ("stop", "wait") takes the turn."""
    if _NOISE.match(text):
        return True
    words = [w for w in re.split(r"[^\w'-]+", text.lower()) if w]
    return all(w in BACKCHANNELS or _HUM.match(w) for w in words)


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^\w']+", text.lower()) if w]


def is_echo(text: str, agent_text: str) -> bool:
    """Whether the words heard are the agent's own voice leaking back into the microphone: at
    least two words, and all of them, or a run of three, said in that order by the agent. (Shared
    common words are not enough: a reader going on with "and a grain of..." is not an echo.)"""
    heard, said = _words(text), _words(agent_text)
    if len(heard) < 2:
        return False
    runs = {
        tuple(said[i : i + n]) for n in (min(3, len(heard)), len(heard)) for i in range(len(said) - n + 1)
    }
    k = min(3, len(heard))
    return tuple(heard) in runs or any(tuple(heard[i : i + k]) in runs for i in range(len(heard) - k + 1))


def takes_turn(text: str, agent_text: str) -> bool:
    """Words over the agent that are the user's own and more than a listener's noise."""
    return not is_backchannel(text) and not is_echo(text, agent_text)


class BargeIn:
    def __init__(self, turn: TurnConfig, vad: VADConfig, frame_ms: float) -> None:
        self.turn, self.vad, self.frame_ms = turn, vad, frame_ms
        self.reset()

    def reset(self) -> None:
        self.ducked = False
        self._run = 0.0  # likely speech before the duck
        self._soft = 0.0  # possible speech before the duck
        self.speech_ms = 0.0  # speech since the duck began (onset run included)
        self._silence = 0.0
        self._judged = False
        self._interrupted = False  # said once; quiet until reset

    def update(self, prob: float) -> Action | None:
        speech = prob >= self.vad.threshold
        if self._interrupted:
            return None
        if not self.ducked:
            t = self.turn
            self._soft = self._soft + self.frame_ms if prob >= t.barge_in_soft_threshold else 0.0
            if prob >= t.barge_in_threshold:
                self._run += self.frame_ms
            elif prob < self.vad.neg_threshold:
                self._run = 0.0
            if self._run >= t.barge_in_onset_ms or self._soft >= t.barge_in_soft_ms:
                self.ducked, self.speech_ms, self._silence, self._judged = True, self._run, 0.0, False
                return "duck"
            return None
        if speech:
            self.speech_ms += self.frame_ms
            self._silence = 0.0
            self._judged = False
            if self.speech_ms >= self.turn.interrupt_min_speech_ms:
                self._interrupted = True
                return "interrupt"
            return None
        self._silence += self.frame_ms
        if not self._judged and self._silence >= self.turn.judge_silence_ms:
            self._judged = True
            return "judge"
        return None
