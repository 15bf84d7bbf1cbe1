"""`bench wer --telephone`'s parts: the phone line, and the turns the rules decide (fake models)."""

from __future__ import annotations

import numpy as np

from conftest import run_virtual, silence, tone
from fakes import FakeSTT, FakeVAD
from voxloop.audio.g711 import mulaw_encode
from voxloop.audio.pcm import resample
from voxloop.bench.corpus import Clip
from voxloop.bench.telephone import _row, hear, phone_line
from voxloop.config import AgentConfig


def test_the_phone_line_is_8_khz_mulaw() -> None:
    speech = tone(1.0, 16000, freq=300.0)
    line = phone_line(speech)
    assert len(line) == 8000
    assert set(mulaw_encode(line)) == set(mulaw_encode(line[::-1]))  # already on mu-law's steps
    assert np.allclose(phone_line(line, 8000), line, atol=1e-6)  # a second pass changes nothing
    assert 0.15 < float(np.sqrt(np.mean(line[800:-800] ** 2))) < 0.25  # the tone survives (0.3 peak)


def test_the_rules_decide_one_turn_per_utterance_and_its_delay_is_measured() -> None:
    audio = np.concatenate([silence(0.5, 8000), tone(1.0, 8000), silence(1.0, 8000)])

    async def main() -> dict[str, object]:
        heard = await hear(FakeVAD(), FakeSTT(["hello there"]), AgentConfig(), audio, 8000)
        clip = Clip("jfk_x", None, "Hello there")  # type: ignore[arg-type]
        return _row(clip, "phone", heard, "hello there", 1.5, 0.1)

    row = run_virtual(main())
    assert row["turns"] == 1 and row["last_by_rules"] and row["early_turns"] == 0
    assert row["streaming_errors"] == 0 and row["offline_errors"] == 0
    end_silence = AgentConfig().turn.end_silence_ms
    assert isinstance(row["endpoint_ms"], int) and end_silence <= row["endpoint_ms"] < end_silence + 100


def test_the_phone_line_feeds_a_session_8_khz_mulaw_in_any_chunks() -> None:
    from voxloop.bench.telephone import PhoneLine

    class Taker:
        def __init__(self) -> None:
            self.got: list[tuple[np.ndarray, int]] = []

        async def push_audio(self, audio: np.ndarray, rate: int) -> None:
            self.got.append((audio, rate))

    taker = Taker()
    line = PhoneLine(taker)  # type: ignore[arg-type]
    speech = tone(1.0, 16000, freq=300.0)

    async def main() -> None:
        for i in range(0, len(speech), 320):
            await line.push_audio(speech[i : i + 320], 16000)

    run_virtual(main())
    assert {rate for _, rate in taker.got} == {8000}
    fed = np.concatenate([a for a, _ in taker.got])
    assert len(fed) == 8000  # nothing held back
    assert set(mulaw_encode(fed)) == set(mulaw_encode(fed[::-1]))
    # the same as the whole tone halved at once (no seams), 2 ms late
    whole = resample(speech, 16000, 8000)
    assert float(np.max(np.abs(fed[416:7600] - whole[400:7584]))) < 0.03
