"""Personal data said aloud (the real hibari voice) and written down by the real recogniser
(Whisper tiny.en) is masked in what it wrote; ordinary numbers said the same way are left.

What the recogniser writes is not what a corpus author would guess: for "four one five, five five
five, two six seven one" Whisper tiny.en wrote 415-55-2671 (a digit lost), for a card number said
in fours 4-11-11-11-11-11-11-11-11, for an email "Anne Dotley at example.com"."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from voxloop.audio.pcm import resample
from voxloop.providers.base import STT, TTS
from voxloop.redact import redact

pytestmark = pytest.mark.integration

SAID = [
    ("My number is four one five, five five five, two six seven one.", "[PHONE]"),
    ("You can call me on six four six, five five five, oh one four three.", "[PHONE]"),
    ("My card number is four one one one, one one one one, one one one one, one one one one.", "[CARD]"),
    ("My social security number is one two three, four five, six seven eight nine.", "[SSN]"),
    ("I was born on the fourth of July, nineteen ninety.", "[DOB]"),
    ("My email is ann dot lee at example dot com.", "[EMAIL]"),
]
ORDINARY = "The meeting is at four fifteen, and my order number is four eight two one three."


async def hear(tts: TTS, stt: STT, text: str) -> str:
    audio = np.concatenate([a async for a in tts.synthesize(text)])
    return (await stt.transcribe(resample(audio, tts.sample_rate, 16000))).text.strip()


@pytest.mark.parametrize(("said", "mask"), SAID)
def test_spoken_personal_data_is_masked_in_the_transcript(
    arun: Any, tts: TTS, stt: STT, said: str, mask: str
) -> None:
    heard = arun(hear(tts, stt, said))
    masked = redact(heard)
    assert mask in masked, (heard, masked)
    assert not re.search(r"\d.*\d.*\d", masked), (heard, masked)  # no digits of it are left
    assert "example" not in masked.lower()  # nor of the email's domain


def test_ordinary_numbers_said_aloud_are_left(arun: Any, tts: TTS, stt: STT) -> None:
    heard = arun(hear(tts, stt, ORDINARY))
    assert re.search(r"\d", heard), heard  # the recogniser wrote digits ...
    assert redact(heard) == heard  # ... and none of them is taken for personal data
