"""Long turns built from a corpus: one speaker's clips joined into 20-40 s turns.

People do not stop after one sentence. A turn of three sentences read with short pauses is where a
recogniser that decodes one window, or stops at its first sentence end, loses words. Each long
turn joins consecutive clips of one speaker (in id order), each trimmed to its speech (offline
Silero label, 50 ms kept either side), with 0.15-0.45 s between them filled with the clips' own
room tone. Every second turn has one join with a longer pause of 0.6-1.0 s, a speaker stopping to
think mid-turn (longer than the loop's 500 ms end silence: the loop may decide the turn there).
Deterministic for a seed: the same corpus gives the same turns.

Ids are `<speaker>-long-NN`, so `bench.split` puts a long turn in its speaker's part.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from voxloop.bench.corpus import Clip, speech_bounds
from voxloop.bench.split import speaker
from voxloop.providers.base import Samples

RATE = 16000
MIN_S, MAX_S = 20.0, 40.0
GAP_S = (0.15, 0.45)
PAUSE_S = (0.6, 1.0)
KEEP_S = 0.05  # kept around each clip's labelled speech


@dataclass(frozen=True, eq=False)
class LongTurn(Clip):
    samples: Samples = field(default_factory=lambda: np.zeros(0, np.float32))
    parts: tuple[str, ...] = ()  # the clips joined, in order
    gaps_s: tuple[float, ...] = ()  # the silence between them

    def audio(self) -> Samples:
        return self.samples


def _trimmed(clip: Clip) -> tuple[Samples, Samples, Samples]:
    """(room tone before, speech, room tone after) of a clip."""
    audio = clip.audio()
    s, e = speech_bounds(audio)
    a = max(0, int((s - KEEP_S) * RATE))
    b = min(len(audio), int((e + KEEP_S) * RATE))
    return audio[:a], audio[a:b], audio[b:]


def _tone(after: Samples, before: Samples, seconds: float) -> Samples:
    """`seconds` of the room tone around a join: the end of one clip, the start of the next."""
    n = int(seconds * RATE)
    tone = np.concatenate([after, before])
    if not len(tone):
        return np.zeros(n, np.float32)
    return np.resize(tone, n).astype(np.float32)  # repeated when the clips had less than that


def build_long_turns(clips: Sequence[Clip], seed: int = 0) -> list[LongTurn]:
    groups: dict[str, list[Clip]] = {}
    for c in sorted(clips, key=lambda c: c.id):
        groups.setdefault(speaker(c.id), []).append(c)
    turns: list[LongTurn] = []
    for who, group in groups.items():
        rng = random.Random(f"{seed}-{who}")
        pieces = [(c, _trimmed(c)) for c in group]
        i = 0
        while i < len(pieces):
            target = rng.uniform(MIN_S, MAX_S)
            with_pause = len(turns) % 2 == 1
            chosen = [pieces[i]]
            dur = len(pieces[i][1][1]) / RATE
            i += 1
            while i < len(pieces) and dur < target:
                nxt = len(pieces[i][1][1]) / RATE + GAP_S[1]
                if dur + nxt > MAX_S - (PAUSE_S[1] - GAP_S[1]):  # room for the longer pause
                    break
                chosen.append(pieces[i])
                dur += nxt
                i += 1
            if dur < MIN_S or len(chosen) < 2:
                continue
            pause_at = rng.randrange(1, len(chosen)) if with_pause else -1
            audio: list[Samples] = [chosen[0][1][1]]
            gaps: list[float] = []
            for k in range(1, len(chosen)):
                lo, hi = PAUSE_S if k == pause_at else GAP_S
                gap = round(rng.uniform(lo, hi), 3)
                gaps.append(gap)
                audio += [_tone(chosen[k - 1][1][2], chosen[k][1][0], gap), chosen[k][1][1]]
            first = chosen[0][0]
            turns.append(
                LongTurn(
                    id=f"{who}-long-{len([t for t in turns if speaker(t.id) == who]) + 1:02d}",
                    path=first.path,
                    transcript=" ".join(c.transcript for c, _ in chosen),
                    samples=np.concatenate(audio).astype(np.float32),
                    parts=tuple(c.id for c, _ in chosen),
                    gaps_s=tuple(gaps),
                )
            )
    return turns
