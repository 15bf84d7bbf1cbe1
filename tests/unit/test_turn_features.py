"""Smart Turn's log-mel features against facts computed here, not by the code under test."""

from __future__ import annotations

import numpy as np

from voxloop.providers.turn.features import FRAMES, N_MELS, hz_to_mel, log_mel, mel_filters, mel_to_hz

RATE = 16000


def sine(hz: float, seconds: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def slaney_band_of(hz: float) -> int:
    """The band whose centre is nearest `hz`: Slaney's scale is hz/(200/3) below 1 kHz and
    15 + 27*ln(hz/1000)/ln(6.4) above; 82 edges evenly spaced in mels from 0 to 8 kHz."""

    def mel(f: float) -> float:
        return f * 3 / 200 if f < 1000 else 15 + 27 * np.log(f / 1000) / np.log(6.4)

    centres = np.linspace(0, mel(8000), N_MELS + 2)[1:-1]
    return int(np.argmin(np.abs(centres - mel(hz))))


def test_shape_and_dtype() -> None:
    f = log_mel(sine(440, 2.0))
    assert f.shape == (N_MELS, FRAMES) == (80, 800)
    assert f.dtype == np.float32


def test_slaney_scale_fixed_points() -> None:
    assert abs(float(hz_to_mel(1000.0)) - 15.0) < 1e-9
    assert abs(float(hz_to_mel(6400.0)) - 42.0) < 1e-9  # 1 kHz * 6.4 is 27 mels above
    hz = np.array([0.0, 300.0, 999.0, 1000.0, 2500.0, 8000.0])
    assert np.allclose(mel_to_hz(hz_to_mel(hz)), hz)


def test_a_sine_peaks_in_its_band() -> None:
    for hz in (300.0, 1000.0, 3000.0):
        f = log_mel(sine(hz, 8.0))
        assert int(np.argmax(f[:, 400])) == slaney_band_of(hz), hz


def test_filters_are_triangles_with_unit_scaled_area() -> None:
    w = mel_filters()
    assert w.shape == (80, 201)
    assert (w >= 0).all()
    # Slaney normalisation: the height of each triangle is 2 / its width in Hz, so its area is 1
    # (in Hz); integrated over the 40 Hz FFT bins, sum * 40 is close to 1 for the wider bands
    assert np.allclose(w[40:].sum(axis=1) * 40.0, 1.0, atol=0.1)


def test_short_audio_is_left_padded() -> None:
    f = log_mel(sine(1000, 2.0))
    floor = f.min()
    # 6 s of zeros in front: frames 0..~598 hold nothing but the floor; the sine fills the end
    assert np.all(f[:, :590] == floor)
    assert np.all(f[slaney_band_of(1000), 610:790] > floor + 1.0)
    # the floor is the maximum minus 8 (log10), scaled by 1/4
    assert abs((f.max() - floor) - 2.0) < 1e-5


def test_only_the_last_8_seconds_count() -> None:
    tail = sine(1000, 8.0)
    longer = np.concatenate([sine(200, 4.0), tail])
    assert np.array_equal(log_mel(longer), log_mel(tail))
