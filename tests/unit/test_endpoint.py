"""Endpointer: VAD probabilities -> speech_start / pause / resume / turn_end, in samples.

At 16 kHz with 512-sample (32 ms) frames and the default TurnConfig: speech starts after 5 speech
frames (160 ms), a pause is reported after 4 silent frames (128 ms), the turn ends after 16 silent
frames (512 ms; 15 are only 480 ms).
"""

from __future__ import annotations

from voxloop.agent.endpoint import Boundary, Endpointer
from voxloop.config import TurnConfig, VADConfig

F = 512


class Feed:
    def __init__(self, turn: TurnConfig | None = None, vad: VADConfig | None = None) -> None:
        self.ep = Endpointer(turn or TurnConfig(), vad or VADConfig(), 16000)
        self.frame = 0
        self.log: list[tuple[int, Boundary]] = []  # (frame index, boundary)

    def run(self, prob: float, frames: int) -> list[Boundary]:
        out: list[Boundary] = []
        for _ in range(frames):
            self.frame += 1
            got = self.ep.update(prob, self.frame * F, F)
            self.log += [(self.frame, b) for b in got]
            out += got
        return out


def test_speech_starts_after_min_speech() -> None:
    f = Feed()
    assert f.run(0.0, 3) == []
    assert f.run(0.9, 4) == []  # 128 ms of speech
    assert f.run(0.9, 1) == [Boundary("speech_start", 3 * F)]  # onset: the first speech frame
    assert f.log == [(8, Boundary("speech_start", 3 * F))]
    assert f.ep.speaking


def test_pause_resume_and_turn_end_positions() -> None:
    f = Feed()
    f.run(1.0, 10)  # frames 1-10
    assert f.run(0.0, 3) == []  # 96 ms of silence
    assert f.run(0.0, 1) == [Boundary("pause", 10 * F)]  # frame 14: 128 ms; the speech ended at frame 10
    assert f.run(0.0, 2) == []
    assert f.run(1.0, 1) == [Boundary("resume", 17 * F)]
    f.run(1.0, 3)  # speech to frame 20
    assert f.run(0.0, 15) == [Boundary("pause", 20 * F)]  # at frame 24
    assert f.run(0.0, 1) == [Boundary("turn_end", 20 * F)]  # frame 36: 16 silent frames
    assert [(i, b.kind) for i, b in f.log] == [
        (5, "speech_start"),
        (14, "pause"),
        (17, "resume"),
        (24, "pause"),
        (36, "turn_end"),
    ]
    assert not f.ep.speaking


def test_a_blip_under_min_speech_starts_nothing() -> None:
    f = Feed()
    assert f.run(1.0, 4) == []  # 128 ms < 160 ms
    assert f.run(0.0, 1) == []  # below neg_threshold: the run is reset
    assert f.run(1.0, 4) == []
    assert f.run(0.0, 40) == []
    assert f.log == [] and not f.ep.speaking


def test_hysteresis_between_thresholds() -> None:
    f = Feed()
    f.run(1.0, 3)
    f.run(0.4, 2)  # between neg_threshold (0.35) and threshold (0.5): neither speech nor a reset
    assert f.run(1.0, 2) == [Boundary("speech_start", 0)]


def test_turn_end_comes_with_pause_when_pause_is_longer() -> None:
    f = Feed(TurnConfig(pause_ms=600, end_silence_ms=500))
    f.run(1.0, 6)
    out = f.run(0.0, 19)
    assert [b.kind for b in out] == ["turn_end"]
    assert out[0].sample == 6 * F


def test_next_turn_after_turn_end() -> None:
    f = Feed()
    f.run(1.0, 6)
    f.run(0.0, 16)
    assert f.run(1.0, 5) == [Boundary("speech_start", 22 * F)]


def test_reset_forgets_speech() -> None:
    f = Feed()
    f.run(1.0, 4)
    f.ep.reset()
    assert f.run(1.0, 4) == []  # the run starts again
    assert f.run(1.0, 1) == [Boundary("speech_start", 4 * F)]


def test_custom_rate_and_frame_size() -> None:
    ep = Endpointer(TurnConfig(min_speech_ms=100, pause_ms=50, end_silence_ms=200), VADConfig(), 8000)
    out = []
    pos = 0
    for prob, n in ((1.0, 10), (0.0, 10)):  # 10 frames of 160 samples = 20 ms each at 8 kHz
        for _ in range(n):
            pos += 160
            out += ep.update(prob, pos, 160)
    assert out == [Boundary("speech_start", 0), Boundary("pause", 1600), Boundary("turn_end", 1600)]


def test_hold_extends_the_wait_for_this_pause_only() -> None:
    turn = TurnConfig(min_speech_ms=64, pause_ms=96, end_silence_ms=320, unfinished_silence_ms=640)
    ep = Endpointer(turn, VADConfig())
    n, pos, seen = 512, 0, []

    def feed(prob: float, frames: int) -> None:
        nonlocal pos
        for _ in range(frames):
            pos += n
            seen.extend((b.kind, pos) for b in ep.update(prob, pos, n))

    feed(0.9, 10)
    feed(0.0, 3)  # 96 ms: pause
    ep.hold(turn.unfinished_silence_ms)
    feed(0.0, 10)  # 416 ms in all: past end_silence_ms, short of the hold
    assert [k for k, _ in seen] == ["speech_start", "pause"]
    feed(0.0, 10)  # 736 ms: the held turn ends
    assert [k for k, _ in seen][-1] == "turn_end"
    seen.clear()
    feed(0.9, 10)
    feed(0.0, 10)  # the next turn waits the normal 320 ms again
    assert [k for k, _ in seen] == ["speech_start", "pause", "turn_end"]
    assert seen[-1][1] - seen[-2][1] == 7 * n  # 10 silent frames: turn_end at the 10th (320 ms)


def test_sounds_unfinished() -> None:
    from voxloop.agent.endpoint import sounds_unfinished

    assert not sounds_unfinished("What is the capital of France?")
    assert not sounds_unfinished('He said "yes."')
    assert not sounds_unfinished("what is the capital of france")  # no punctuation: no evidence
    assert sounds_unfinished("I went to the shop and")
    assert sounds_unfinished("I went to the shop, and.")
    assert sounds_unfinished("There's iron, they say,")
    assert sounds_unfinished("Then, however...")  # Whisper's trailing-off voice
    assert sounds_unfinished("But she said\u2026")
    assert not sounds_unfinished("Wait. ... What?")
    assert not sounds_unfinished("")


def _silent_frames_to_end(f: Feed) -> int:
    """Speak 10 frames, then count the silent frames until the turn ends."""
    f.run(1.0, 10)
    for n in range(1, 200):
        if any(b.kind == "turn_end" for b in f.run(0.0, 1)):
            return n
    raise AssertionError("the turn never ended")


def test_a_user_who_went_on_gets_a_longer_end_silence_that_eases_back() -> None:
    f = Feed()
    assert _silent_frames_to_end(f) == 16  # 512 ms
    f.ep.went_on(800.0)  # they spoke again 800 ms after that turn's end: a pause mid-thought
    assert f.ep.patience_ms == 950.0  # 800 + the 150 ms margin
    assert _silent_frames_to_end(f) == 30  # 960 ms
    f.ep.relax()  # that turn really ended: halfway back to 500
    assert f.ep.patience_ms == 725.0
    for _ in range(4):  # 612.5, 556.3, 528.1, then within 20 ms of the base: back at it
        f.ep.relax()
    assert f.ep.patience_ms == 500.0


def test_went_on_is_capped_and_can_be_switched_off() -> None:
    f = Feed()
    f.ep.went_on(1400.0)
    assert f.ep.patience_ms == 1500.0  # max_end_silence_ms
    f.ep.went_on(2500.0)  # that long a silence is a new turn, not a pause
    assert f.ep.patience_ms == 1500.0
    g = Feed(TurnConfig(adaptive_silence=False))
    g.ep.went_on(800.0)
    assert g.ep.patience_ms == 500.0
    assert _silent_frames_to_end(g) == 16


def test_end_now_gives_the_boundaries_silence_would_have_given() -> None:
    f = Feed()
    assert f.ep.end_now() == []  # no turn yet
    f.run(1.0, 10)
    assert f.ep.end_now() == [Boundary("pause", 10 * F), Boundary("turn_end", 10 * F)]
    assert not f.ep.speaking
    f.run(1.0, 10)  # frames 11-20
    f.run(0.0, 4)  # the pause is reported
    assert f.ep.end_now() == [Boundary("turn_end", 20 * F)]
    assert f.run(0.0, 30) == []  # nothing left to end


def test_with_ready_the_end_silence_waits_for_the_answer() -> None:
    """`ready` false: the end silence (16 frames) does not end the turn; the frame after it turns
    true does; `due` ends it at once, and only once the end silence is reached."""
    answer = [False]
    f = Feed()
    f.ep.ready = lambda: answer[0]
    f.run(0.9, 10)
    assert f.ep.due() == []  # speaking: nothing earned
    f.run(0.0, 16)  # 512 ms of silence
    assert [b.kind for _, b in f.log] == ["speech_start", "pause"]
    assert f.run(0.0, 3) == []  # 608 ms, still not ready
    answer[0] = True
    assert f.ep.due() == [Boundary("turn_end", 10 * F)]  # the last speech frame's end
    assert not f.ep.speaking and f.ep.due() == []


def test_with_ready_the_turn_ends_by_ready_wait_ms() -> None:
    f = Feed(TurnConfig(ready_wait_ms=800))
    f.ep.ready = lambda: False
    f.run(0.9, 10)
    f.run(0.0, 24)  # 768 ms
    assert [b.kind for _, b in f.log] == ["speech_start", "pause"]
    assert f.run(0.0, 1) == [Boundary("turn_end", 10 * F)]  # 800 ms


def test_ready_before_the_end_silence_changes_nothing() -> None:
    f = Feed()
    f.ep.ready = lambda: True
    f.run(0.9, 10)
    assert f.ep.due() == []
    f.run(0.0, 16)
    assert (26, Boundary("turn_end", 10 * F)) in f.log
