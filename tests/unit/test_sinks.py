"""The speaker side: pause and resume on the virtual speaker, and the echo reference it reports."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from conftest import run_virtual
from voxloop.transports.base import window
from voxloop.transports.timeline import TimelineSink

RATE = 1000  # one sample per millisecond keeps the arithmetic readable


def test_window_places_blocks_and_leaves_gaps_silent() -> None:
    blocks = [(0.010, np.full(5, 2.0, np.float32)), (0.000, np.full(5, 1.0, np.float32))]  # newest first
    out = window(blocks, -0.002, 0.020, RATE)
    assert out.tolist() == [0, 0] + [1] * 5 + [0] * 5 + [2] * 5 + [0] * 5


def test_paused_audio_is_held_and_played_after_resume() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sink = TimelineSink(RATE)
        t0 = loop.time()
        sink.play(np.ones(100, np.float32))  # 100 ms
        await asyncio.sleep(0.040)
        sink.pause()
        assert sink.paused and sink.busy()
        sink.play(np.full(50, 2.0, np.float32))  # queued while paused: held too
        await asyncio.sleep(0.5)
        assert sink.played_samples() == 40  # nothing plays while paused
        sink.resume()
        await sink.drained()
        assert loop.time() - t0 == pytest.approx(0.040 + 0.5 + 0.060 + 0.050)
        assert sink.played_samples() == 150 and sink.queued_samples() == 150
        heard = sink.played_audio(t0, loop.time())
        assert heard[:40].tolist() == [1.0] * 40 and not heard[40:540].any()
        assert heard[540:600].tolist() == [1.0] * 60 and heard[600:650].tolist() == [2.0] * 50

    run_virtual(main())


def test_stop_while_paused_drops_what_was_held() -> None:
    async def main() -> None:
        sink = TimelineSink(RATE)
        sink.play(np.ones(100, np.float32))
        await asyncio.sleep(0.030)
        sink.pause()
        sink.stop()
        await sink.drained()  # returns at once: nothing is held any more
        assert not sink.paused and not sink.busy()
        await asyncio.sleep(0.2)
        assert sink.played_samples() == 30

    run_virtual(main())
