"""The echo canceller on synthetic speech-like audio: deterministic, about a second in all.

Each quality check is also run on a do-nothing canceller (output = microphone) and must fail
there, so a passing test says the canceller did the work. The same checks on real speech from the
corpus are in tests/integration/test_echo_real.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from voxloop.audio.echo import EchoCanceller, EchoInputError
from voxloop.errors import AudioFormatError

RATE, FRAME = 16000, 512
NOISE_DBFS = -50.0


def speechlike(seconds: float, seed: int) -> np.ndarray:
    """Voiced syllables: a gliding pitch with 1/k harmonics plus breath noise, switched on and off
    at a syllable rate with pauses, at about -20 dBFS while on. Periodic like speech (a trap for
    plain cross-correlation) and bursty like speech (a trap for adaptation). Whole frames only."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE) // FRAME * FRAME
    t = np.arange(n) / RATE
    f0 = 110 + 40 * seed % 3 + 25 * np.sin(2 * np.pi * 0.6 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voiced = sum(np.sin(k * phase + rng.uniform(0, 6.3)) / k for k in range(1, 25))
    breath = np.convolve(rng.standard_normal(n), np.ones(4) / 4, mode="same")
    syllable = np.clip(np.sin(2 * np.pi * (3.0 + seed % 2) * t + rng.uniform(0, 6.3)), 0, None) ** 0.5
    gate = np.repeat(rng.random(int(seconds / 0.4) + 1) < 0.75, int(0.4 * RATE))[:n]
    x = (np.asarray(voiced) + 0.3 * breath) * syllable * gate
    on = np.abs(x) > 0
    return (x * 10 ** (-20 / 20) / np.sqrt(np.mean(x[on] ** 2))).astype(np.float32)


def echo_path(delay_ms: float, gain_db: float, seed: int = 1) -> np.ndarray:
    """Impulse response: the delay, a direct path and a few ms of decaying reflections (a little
    room colouring), scaled so the echo power is `gain_db` relative to the reference."""
    rng = np.random.default_rng(seed)
    tail = rng.standard_normal(300) * np.exp(-np.arange(300) / 50.0) * 0.3
    tail[0] = 1.0
    h = np.concatenate([np.zeros(round(delay_ms * RATE / 1000)), tail])
    return h * 10 ** (gain_db / 20) / np.sqrt(np.sum(h**2))


def through(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    return np.convolve(x, h)[: len(x)].astype(np.float32)


def noise(n: int, seed: int = 7) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 10 ** (NOISE_DBFS / 20)).astype(np.float32)


def run(aec: EchoCanceller | None, mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Feed whole frames; `aec=None` is the do-nothing baseline."""
    out = np.zeros_like(mic)
    for i in range(0, len(mic) - FRAME + 1, FRAME):
        out[i : i + FRAME] = (
            mic[i : i + FRAME] if aec is None else aec.process(mic[i : i + FRAME], ref[i : i + FRAME])
        )
    return out


def power(x: np.ndarray) -> float:
    return float(np.mean(x.astype(np.float64) ** 2))


def attenuation_db(echo: np.ndarray, residual: np.ndarray) -> float:
    return 10 * np.log10(power(echo) / max(power(residual), 1e-20))


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


# -- 1. echo only ----------------------------------------------------------------------------------
# Residual echo attenuation from 2 s on (the first second or so is convergence). The floor per
# level is what this linear canceller reaches with -50 dBFS noise: quiet echo sits only ~10-20 dB
# above the noise, which limits how well any filter can be learnt from it.
FLOOR_DB = {-6.0: 20.0, -12.0: 20.0, -20.0: 12.0}


@pytest.mark.parametrize("delay_ms", [20.0, 100.0, 200.0])
@pytest.mark.parametrize("gain_db", [-6.0, -12.0, -20.0])
def test_echo_alone_is_cancelled(delay_ms: float, gain_db: float) -> None:
    ref = speechlike(8.0, seed=1)
    echo = through(ref, echo_path(delay_ms, gain_db))
    n = noise(len(ref))
    mic = echo + n
    aec = EchoCanceller()
    out = run(aec, mic, ref)
    later = slice(2 * RATE, None)
    # The canceller is linear, so out - noise is exactly the echo it failed to remove.
    got = attenuation_db(echo[later], (out - n)[later])
    baseline = attenuation_db(echo[later], (run(None, mic, ref) - n)[later])
    assert got >= FLOOR_DB[gain_db], f"residual echo only {got:.1f} dB down"
    assert baseline < 1.0  # doing nothing removes nothing: the check has teeth
    assert aec.delay_ms == pytest.approx(delay_ms, abs=1.0)
    assert aec.converged
    assert aec.erle_db > 10.0


# -- 2. double talk --------------------------------------------------------------------------------
@pytest.mark.parametrize("near_db", [0.0, -6.0])
def test_a_voice_over_the_echo_survives(near_db: float) -> None:
    """The agent talks for 8 s; from 2 s on the user talks over it at the echo's level or 6 dB
    below. The user's voice must come out whole: high correlation, same level.

    The noise stays in the output (no canceller can know it), so the target is the user's voice
    plus the noise, and against the clean voice the canceller may lose at most 0.02 of correlation
    to a perfect one. (At -6 dB the voice is only ~7 dB above the -50 dBFS noise, which alone
    caps the correlation with the clean voice near 0.91.)"""
    ref = speechlike(8.0, seed=1)
    echo = through(ref, echo_path(100.0, -12.0))
    voice = speechlike(6.0, seed=2)
    voice *= np.sqrt(power(echo) / power(voice)) * 10 ** (near_db / 20)
    near = np.zeros_like(ref)
    near[2 * RATE : 2 * RATE + len(voice)] = voice
    n = noise(len(ref))
    mic = echo + near + n
    aec = EchoCanceller()
    out = run(aec, mic, ref)
    talk = slice(3 * RATE, None)  # a second into the double talk
    target = (near + n)[talk]
    got, baseline = corr(out[talk], target), corr(mic[talk], target)
    assert got > 0.98, f"correlation with the user's voice (and the noise) {got:.3f}"
    assert baseline < 0.9  # with the echo left in, the same check fails
    perfect = corr(target, near[talk])
    assert corr(out[talk], near[talk]) > perfect - 0.02
    if near_db == 0.0:
        assert corr(out[talk], near[talk]) > 0.95
    level = 10 * np.log10(power(out[talk]) / power(near[talk] + n[talk]))
    assert abs(level) < 2.0, f"the user's voice came out {level:+.1f} dB"
    # The echo itself is still being cancelled under the voice.
    assert attenuation_db(echo[talk], (out - near - n)[talk]) >= 15.0


def test_double_talk_flag_tells_a_voice_from_residual_echo() -> None:
    ref = speechlike(8.0, seed=1)
    echo = through(ref, echo_path(100.0, -12.0))
    voice = speechlike(3.0, seed=2)
    voice *= np.sqrt(power(echo) / power(voice))
    near = np.zeros_like(ref)
    near[5 * RATE : 5 * RATE + len(voice)] = voice
    mic = echo + near + noise(len(ref))
    aec = EchoCanceller()
    echo_only, voice_on = [], []
    for i in range(0, len(mic) - FRAME + 1, FRAME):
        aec.process(mic[i : i + FRAME], ref[i : i + FRAME])
        f = slice(i, i + FRAME)
        if i < 2 * RATE or power(echo[f]) < 10 ** (-45 / 10):
            continue  # converging, or no echo in this frame to talk over
        if not near[f].any():
            echo_only.append(aec.double_talk)
        elif power(near[f]) > power(echo[f]) / 2:
            voice_on.append(aec.double_talk)
    assert aec.converged
    assert np.mean(echo_only) < 0.05, "residual echo taken for a voice"
    assert np.mean(voice_on) > 0.6, "a voice as loud as the echo went unnoticed"


# -- 3. the echo path changes ----------------------------------------------------------------------
def test_a_jump_in_delay_is_followed() -> None:
    """At 4 s the delay jumps from 100 to 180 ms (a device switch, a buffer underrun). Stated:
    the new delay is found within 1 s, the echo is 10 dB down again within 1.5 s and 18 dB down
    within 3 s."""
    ref = speechlike(10.0, seed=1)
    jump = 4 * RATE
    echo = np.concatenate(
        [through(ref, echo_path(100.0, -12.0))[:jump], through(ref, echo_path(180.0, -12.0))[jump:]]
    )
    n = noise(len(ref))
    mic = echo + n
    aec = EchoCanceller()
    out = np.zeros_like(mic)
    found = None
    for i in range(0, len(mic) - FRAME + 1, FRAME):
        out[i : i + FRAME] = aec.process(mic[i : i + FRAME], ref[i : i + FRAME])
        if i >= jump and found is None and aec.delay_ms == pytest.approx(180.0, abs=1.0):
            found = (i + FRAME - jump) / RATE
    assert found is not None and found <= 1.0
    residual = out - n
    after_1_5 = slice(jump + int(1.5 * RATE), jump + int(3 * RATE))
    after_3 = slice(jump + 3 * RATE, None)
    assert attenuation_db(echo[after_1_5], residual[after_1_5]) >= 10.0
    assert attenuation_db(echo[after_3], residual[after_3]) >= 18.0


# -- 4. no reference, no harm ----------------------------------------------------------------------
def test_silent_reference_leaves_the_microphone_untouched() -> None:
    voice = speechlike(3.0, seed=3)
    mic = voice + noise(len(voice))
    aec = EchoCanceller()
    out = run(aec, mic, np.zeros_like(mic))
    assert np.array_equal(out, mic)
    assert not aec.double_talk and aec.delay_ms is None


def test_once_the_agent_stops_the_output_is_the_input_again() -> None:
    """After the last echo could have arrived (delay + filter), nothing is subtracted at all."""
    ref = speechlike(6.0, seed=1)
    ref[3 * RATE :] = 0.0
    mic = through(ref, echo_path(100.0, -12.0)) + 0.3 * speechlike(6.0, seed=4) + noise(len(ref))
    out = run(EchoCanceller(), mic, ref)
    quiet = slice(3 * RATE + int(0.3 * RATE), None)  # 100 ms delay + 32 ms filter + two frames
    assert np.array_equal(out[quiet], mic[quiet])


def test_reset_forgets_the_echo_path() -> None:
    ref = speechlike(3.0, seed=1)
    mic = through(ref, echo_path(100.0, -6.0)) + noise(len(ref))
    aec = EchoCanceller()
    run(aec, mic, ref)
    assert aec.delay_ms is not None
    aec.reset()
    assert aec.delay_ms is None and not aec.converged and aec.erle_db == 0.0
    frame = mic[:FRAME]
    assert np.array_equal(aec.process(frame, np.zeros(FRAME, np.float32)), frame)


def test_same_input_same_output() -> None:
    ref = speechlike(2.0, seed=1)
    mic = through(ref, echo_path(20.0, -6.0)) + noise(len(ref))
    assert np.array_equal(run(EchoCanceller(), mic, ref), run(EchoCanceller(), mic, ref))


# -- 5. bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mic", "ref", "match"),
    [
        (np.zeros(FRAME - 1, np.float32), np.zeros(FRAME, np.float32), "mic must be a 1-D frame of 512"),
        (np.zeros(FRAME, np.float32), np.zeros(2 * FRAME, np.float32), "ref must be a 1-D frame of 512"),
        (np.zeros((2, FRAME), np.float32), np.zeros(FRAME, np.float32), "got shape \\(2, 512\\)"),
        (np.full(FRAME, np.nan, np.float32), np.zeros(FRAME, np.float32), "mic holds NaN"),
        (np.zeros(FRAME, np.float32), np.full(FRAME, np.inf, np.float32), "ref holds NaN or infinite"),
        (np.zeros(FRAME, np.int16), np.zeros(FRAME, np.float32), "float samples"),
    ],
)
def test_bad_frames_are_refused_clearly(mic: np.ndarray, ref: np.ndarray, match: str) -> None:
    aec = EchoCanceller()
    with pytest.raises(ValueError, match=match) as e:
        aec.process(mic, ref)
    assert isinstance(e.value, AudioFormatError) and isinstance(e.value, EchoInputError)
    assert e.value.hint
    # A refused frame changes nothing.
    frame = np.full(FRAME, 0.01, np.float32)
    assert np.array_equal(aec.process(frame, np.zeros(FRAME, np.float32)), frame)


@pytest.mark.parametrize(
    "kwargs",
    [{"rate": 0}, {"frame": -1}, {"max_delay_ms": -1.0}, {"max_delay_ms": 5000.0}, {"filter_ms": 0.0}],
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        EchoCanceller(**kwargs)  # type: ignore[arg-type]
