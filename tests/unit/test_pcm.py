from __future__ import annotations

import numpy as np
import pytest

from voxloop.audio.pcm import FrameBuffer, normalize_loudness, resample, rms_dbfs, to_float32, to_int16
from voxloop.errors import AudioFormatError


def sine(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("data", [b"\x00\x01\x02", bytearray(b"\x00"), memoryview(b"\x00\x00\x00")])
def test_to_float32_odd_bytes_raise(data: bytes) -> None:
    with pytest.raises(AudioFormatError, match="even number of bytes") as e:
        to_float32(data)
    assert e.value.hint


def test_to_float32_from_bytes_and_int16() -> None:
    raw = np.array([0, 16384, -32768, 32767], "<i2").tobytes()
    out = to_float32(raw)
    assert out.dtype == np.float32
    assert out.tolist() == pytest.approx([0.0, 0.5, -1.0, 32767 / 32768])
    assert to_float32(np.array([-32768, 0], np.int16)).tolist() == [-1.0, 0.0]
    f64 = np.array([0.25, -0.5])
    assert to_float32(f64).dtype == np.float32 and to_float32(f64).tolist() == [0.25, -0.5]


def test_to_float32_refuses_other_types() -> None:
    with pytest.raises(AudioFormatError, match="int32"):
        to_float32(np.zeros(4, np.int32))


def test_to_int16_clips_and_round_trips() -> None:
    x = np.array([-2.0, -1.0, 0.0, 0.5, 2.0], np.float32)
    assert to_int16(x).tolist() == [-32767, -32767, 0, 16383, 32767]
    y = sine(0.1, 16000)
    assert np.max(np.abs(to_float32(to_int16(y)) - y)) < 1e-4


def test_resample_lengths_16k_24k_8k() -> None:
    x = sine(1.0, 16000)
    up = resample(x, 16000, 24000)
    down = resample(up, 24000, 8000)
    assert (len(up), len(down)) == (24000, 8000)
    assert up.dtype == np.float32 and down.dtype == np.float32
    # the tone survives: same level, and the same frequency (zero crossings per second)
    assert rms_dbfs(up[1000:-1000]) == pytest.approx(rms_dbfs(x), abs=0.1)
    crossings = np.count_nonzero(np.diff(np.signbit(down[100:-100]).astype(int)))
    assert crossings / ((len(down) - 200) / 8000) == pytest.approx(880, rel=0.01)


def test_resample_same_rate_and_empty() -> None:
    x = sine(0.01, 16000)
    assert resample(x, 16000, 16000) is x
    assert len(resample(np.zeros(0, np.float32), 16000, 48000)) == 0


@pytest.mark.parametrize(("src", "dst"), [(0, 16000), (16000, -1)])
def test_resample_refuses_bad_rates(src: int, dst: int) -> None:
    with pytest.raises(AudioFormatError):
        resample(np.zeros(10, np.float32), src, dst)


@pytest.mark.parametrize("target", [-30.0, -20.0, -12.0])
def test_normalize_loudness_hits_target_rms(target: float) -> None:
    quiet = sine(0.5, 16000, amp=0.01)
    out = normalize_loudness(quiet, target)
    assert abs(rms_dbfs(out) - target) < 1.0
    assert out.dtype == np.float32


def test_normalize_loudness_ignores_pauses() -> None:
    # the RMS is taken over the louder half of 20 ms blocks: speech two thirds of the time
    x = np.concatenate([sine(1.0, 16000, amp=0.05), np.zeros(8000, np.float32)])
    out = normalize_loudness(x, -20.0)
    assert abs(rms_dbfs(out[:16000]) - (-20.0)) < 1.0  # the speech is at the target...
    assert rms_dbfs(out) < -21.0  # ...not the average over the pause


def test_normalize_loudness_never_exceeds_peak() -> None:
    x = sine(0.5, 16000, amp=0.01)
    x[1234] = 0.5  # one spike: reaching -12 dBFS RMS would push it far past the peak
    out = normalize_loudness(x, -12.0, peak=0.89)
    assert np.max(np.abs(out)) <= 0.89 + 1e-6
    assert np.max(np.abs(out)) == pytest.approx(0.89, rel=1e-4)  # as loud as the peak allows


def test_normalize_loudness_leaves_silence_and_empty_alone() -> None:
    z = np.zeros(1000, np.float32)
    assert np.array_equal(normalize_loudness(z), z)
    assert len(normalize_loudness(np.zeros(0, np.float32))) == 0


def test_framebuffer_rechunks_in_order() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(10_000).astype(np.float32)
    fb = FrameBuffer(512)
    frames: list[np.ndarray] = []
    i = 0
    for n in [1, 511, 0, 700, 5000, 3, 2000, 1785]:
        frames += fb.push(x[i : i + n])
        i += n
    assert i == len(x)
    assert all(len(f) == 512 for f in frames)
    assert len(frames) == len(x) // 512
    assert np.array_equal(np.concatenate(frames), x[: len(frames) * 512])
    rest = fb.push(x[: 512 - len(x) % 512])  # completes the last frame
    assert len(rest) == 1 and np.array_equal(rest[0][: len(x) % 512], x[len(frames) * 512 :])


def test_framebuffer_frames_do_not_change_later() -> None:
    fb = FrameBuffer(4)
    chunk = np.arange(6, dtype=np.float32)
    first = fb.push(chunk)
    chunk[:] = -1  # the caller reuses its buffer
    fb.push(np.arange(10, 16, dtype=np.float32))
    assert first[0].tolist() == [0, 1, 2, 3]


def test_framebuffer_clear() -> None:
    fb = FrameBuffer(4)
    fb.push(np.ones(3, np.float32))
    fb.clear()
    assert fb.push(np.zeros(4, np.float32))[0].tolist() == [0, 0, 0, 0]
