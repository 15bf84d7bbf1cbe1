"""Smart Turn v3.2 on real speech from the corpus: its direction (a finished sentence scores higher
than the same speech cut mid-word) and one turn decided through the Listener with Silero."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from voxloop.agent.listener import Listener
from voxloop.config import AgentConfig, TurnConfig
from voxloop.providers.base import STT, VAD, PartialCallback, Samples, STTStream, Transcript
from voxloop.providers.turn.smart_turn import SmartTurn

from .conftest import LAMP, Arun, Corpus, load_or_skip

pytestmark = pytest.mark.integration

RATE = 16000
# read sentences, 5-15 s, several readers (both parts of the split)
CLIPS = [
    "1089-134686-0000",
    "1221-135766-0002",
    "1995-1837-0001",
    "1688-142285-0001",
    "2609-156975-0007",
    "2033-164914-0001",
    "jfk_inaugural_1961",
    LAMP,
]


@pytest.fixture(scope="session")
def smart_turn(arun: Arun[Any]) -> Iterator[SmartTurn]:
    model = load_or_skip(arun, SmartTurn())
    yield model
    arun(model.aclose())


def mid_word(audio: Samples, start: float, end: float) -> int:
    """A cut inside a word: the loudest 32 ms between 40% and 60% of the speech."""
    a, b = int((start + 0.4 * (end - start)) * RATE), int((start + 0.6 * (end - start)) * RATE)
    energy = [float(np.mean(audio[i : i + 512] ** 2)) for i in range(a, b, 512)]
    return a + 512 * int(np.argmax(energy)) + 256


def test_a_finished_sentence_scores_higher_than_one_cut_mid_word(
    arun: Arun[Any], smart_turn: SmartTurn, corpus: Corpus
) -> None:
    ends, mids = [], []
    for clip_id in CLIPS:
        audio = corpus.audio(clip_id)
        start, end = corpus.speech(clip_id)
        ends.append(arun(smart_turn.complete(audio[: int((end + 0.2) * RATE)])))
        mids.append(arun(smart_turn.complete(audio[: mid_word(audio, start, end)])))
    assert all(0.0 <= p <= 1.0 for p in ends + mids)
    # a direction, not an accuracy: read speech pauses at phrase ends, and the model hears those
    assert np.mean(ends) > np.mean(mids) + 0.2, (ends, mids)
    assert sum(p >= 0.5 for p in ends) > sum(p >= 0.5 for p in mids), (ends, mids)


class _Deaf(STTStream):
    async def push(self, audio: Samples) -> None:
        return None

    async def finalize(self) -> Transcript:
        return Transcript("", True)


class Deaf(STT):
    name = "deaf"

    def stream(self, on_partial: PartialCallback | None = None) -> STTStream:
        return _Deaf()


def test_the_lamp_command_is_decided_before_the_base_silence(
    arun: Arun[Any], vad: VAD, smart_turn: SmartTurn, corpus: Corpus
) -> None:
    """ "Turn on the living room lamp." through Silero and the Listener: without the model the
    turn ends after 500 ms of silence; with it, at the first frame after it is asked (~224 ms)."""
    audio = np.concatenate([corpus.audio(LAMP), np.zeros(2 * RATE, np.float32)])

    async def silence_at_decision(model: SmartTurn | None) -> list[float]:
        # ends complete turns early; asked however busy the machine running the tests is
        cfg = AgentConfig(turn=TurnConfig(model_threshold=0.5, model_busy_cores=None))
        ear = Listener(vad, Deaf(), cfg, turn_model=model)
        out = []
        async for item in ear.listen(audio, RATE):
            if getattr(item, "kind", None) == "turn_end":
                out.append((ear.position - item.sample) * 1000 / RATE)  # type: ignore[union-attr]
        await ear.aclose()
        return out

    (without,) = arun(silence_at_decision(None))
    (with_model,) = arun(silence_at_decision(smart_turn))
    assert without >= 500
    assert with_model < 300
