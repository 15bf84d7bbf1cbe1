"""The echo canceller on real human speech from the corpus (read in place, never copied).

One LibriSpeech reader plays the agent; the echo comes back 100 ms later at -12 dB through a
short, coloured room response, over -50 dBFS noise. From 6 s on a second reader, the user, talks
over it at the echo's level. Every check is also run on a do-nothing canceller and must fail there.
No model is loaded: this is only marked integration because it reads the corpus.
"""

from __future__ import annotations

import numpy as np
import pytest

from voxloop.audio.echo import EchoCanceller
from voxloop.audio.pcm import normalize_loudness

from .conftest import Corpus

pytestmark = pytest.mark.integration

RATE, FRAME = 16000, 512
AGENT, USER = "2609-156975-0007", "1688-142285-0001"


def power(x: np.ndarray) -> float:
    return float(np.mean(x.astype(np.float64) ** 2))


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


def test_real_speech_echo_is_cancelled_and_a_voice_over_it_survives(corpus: Corpus) -> None:
    n_samples = 12 * RATE // FRAME * FRAME
    ref = normalize_loudness(corpus.audio(AGENT), -20.0)[:n_samples]
    assert len(ref) == n_samples, "the agent's clip is shorter than 12 s"
    rng = np.random.default_rng(1)
    room = rng.standard_normal(300) * np.exp(-np.arange(300) / 50.0) * 0.3
    room[0] = 1.0
    path = np.concatenate([np.zeros(100 * RATE // 1000), room]) * 10 ** (-12 / 20) / np.sqrt(np.sum(room**2))
    echo = np.convolve(ref, path)[:n_samples].astype(np.float32)

    talk_from = 6 * RATE
    voice = normalize_loudness(corpus.audio(USER), -20.0)[: n_samples - talk_from]
    voice *= np.sqrt(power(echo[talk_from:]) / power(voice))  # as loud as the echo it talks over
    near = np.zeros_like(ref)
    near[talk_from : talk_from + len(voice)] = voice
    noise = (rng.standard_normal(n_samples) * 10 ** (-50 / 20)).astype(np.float32)
    mic = echo + near + noise

    aec = EchoCanceller()
    out = np.zeros_like(mic)
    for i in range(0, n_samples, FRAME):
        out[i : i + FRAME] = aec.process(mic[i : i + FRAME], ref[i : i + FRAME])
    assert aec.delay_ms == pytest.approx(100.0, abs=1.0)

    # Echo alone, after the first second (convergence): the echo is >= 20 dB down.
    alone = slice(1 * RATE, talk_from)
    residual = (out - noise - near)[alone]  # the canceller is linear: this is the echo it left
    got = 10 * np.log10(power(echo[alone]) / power(residual))
    baseline = 10 * np.log10(power(echo[alone]) / power((mic - noise - near)[alone]))
    assert got >= 20.0, f"residual echo only {got:.1f} dB down"
    assert baseline < 1.0

    # Double talk, a second in: the user's voice (with the noise, which no canceller can know)
    # comes out whole, at its own level, while the echo under it is still cancelled.
    talk = slice(talk_from + RATE, None)
    target = (near + noise)[talk]
    assert corr(out[talk], target) > 0.98
    assert corr(mic[talk], target) < 0.9  # the same check with the echo left in
    assert corr(out[talk], near[talk]) > 0.95
    level = 10 * np.log10(power(out[talk]) / power(target))
    assert abs(level) < 2.0, f"the user's voice came out {level:+.1f} dB"
    under = 10 * np.log10(power(echo[talk]) / power((out - near - noise)[talk]))
    assert under >= 15.0, f"the echo under the voice only {under:.1f} dB down"
