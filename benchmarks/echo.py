"""How well, and how cheaply, does the echo canceller work?

Real speech from the corpus plays the agent (normalised to -20 dBFS); its echo comes back through
a short coloured room response at each delay and level, over -50 dBFS white noise. For each case
it prints the residual echo attenuation (echo power over the power of the echo left in the output;
the canceller is linear, so that is the output minus the noise) from 1 s on and from 3 s on, the
canceller's own ERLE estimate and the delay it found. Then a user talking over the agent (at the
echo's level, and 6 dB below), a jump in delay, and the cost of one 32 ms frame.

    .venv/bin/python benchmarks/echo.py [--corpus ../shared/corpus]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from voxloop.audio.echo import EchoCanceller
from voxloop.audio.pcm import normalize_loudness
from voxloop.bench.corpus import load_corpus

RATE, FRAME = 16000, 512
AGENT, USER = "2609-156975-0007", "1688-142285-0001"
SECONDS = 12


def power(x: np.ndarray) -> float:
    return float(np.mean(x.astype(np.float64) ** 2))


def db(ratio: float) -> float:
    return 10 * float(np.log10(max(ratio, 1e-20)))


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


def echo_of(ref: np.ndarray, delay_ms: float, gain_db: float) -> np.ndarray:
    rng = np.random.default_rng(1)
    room = rng.standard_normal(300) * np.exp(-np.arange(300) / 50.0) * 0.3
    room[0] = 1.0
    path = np.concatenate([np.zeros(round(delay_ms * RATE / 1000)), room])
    path *= 10 ** (gain_db / 20) / np.sqrt(np.sum(room**2))
    return np.convolve(ref, path)[: len(ref)].astype(np.float32)


def run(aec: EchoCanceller, mic: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, list[float]]:
    out = np.zeros_like(mic)
    costs = []
    for i in range(0, len(mic) - FRAME + 1, FRAME):
        t = time.perf_counter()
        out[i : i + FRAME] = aec.process(mic[i : i + FRAME], ref[i : i + FRAME])
        costs.append(time.perf_counter() - t)
    return out, costs


def main() -> None:
    default = os.environ.get(
        "VOXLOOP_CORPUS", str(Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus")
    )
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=Path(default))
    args = parser.parse_args()
    clips = {c.id: c for c in load_corpus(args.corpus)}
    n = SECONDS * RATE // FRAME * FRAME
    ref = normalize_loudness(clips[AGENT].audio(), -20.0)[:n]
    user = normalize_loudness(clips[USER].audio(), -20.0)
    noise = (np.random.default_rng(7).standard_normal(n) * 10 ** (-50 / 20)).astype(np.float32)
    costs: list[float] = []

    print(f"echo only: {AGENT} as the agent, {SECONDS} s, noise -50 dBFS, 32 ms frames")
    print("delay   level   echo down from 1 s   from 3 s   estimate   delay found")
    for delay_ms in (20.0, 100.0, 200.0):
        for gain_db in (-6.0, -12.0, -20.0):
            echo = echo_of(ref, delay_ms, gain_db)
            aec = EchoCanceller()
            out, c = run(aec, echo + noise, ref)
            costs += c
            left = out - noise
            a1 = db(power(echo[RATE:]) / power(left[RATE:]))
            a3 = db(power(echo[3 * RATE :]) / power(left[3 * RATE :]))
            print(
                f"{delay_ms:4.0f} ms {gain_db:4.0f} dB   {a1:8.1f} dB        {a3:6.1f} dB  "
                f"{aec.erle_db:6.1f} dB   {aec.delay_ms} ms"
            )

    print(f"\ndouble talk: {USER} talks over the agent from 4 s on (echo 100 ms, -12 dB)")
    print("user level   corr (voice+noise)  corr (clean)  perfect's  level      echo under voice")
    echo = echo_of(ref, 100.0, -12.0)
    for near_db in (0.0, -6.0):
        near = np.zeros_like(ref)
        voice = user[: n - 4 * RATE] * np.sqrt(power(echo[4 * RATE :]) / power(user)) * 10 ** (near_db / 20)
        near[4 * RATE : 4 * RATE + len(voice)] = voice
        mic = echo + near + noise
        out, c = run(EchoCanceller(), mic, ref)
        costs += c
        t = slice(5 * RATE, None)
        target = (near + noise)[t]
        print(
            f"{near_db:+4.0f} dB      {corr(out[t], target):.3f} (none {corr(mic[t], target):.2f})"
            f"  {corr(out[t], near[t]):.3f}         {corr(target, near[t]):.3f}"
            f"      {db(power(out[t]) / power(target)):+.2f} dB   "
            f"{db(power(echo[t]) / power((out - near - noise)[t])):.1f} dB"
        )

    print("\ndelay jump 100 -> 180 ms at 6 s (-12 dB): echo down per 0.5 s after the jump")
    jump = 6 * RATE
    echo = np.concatenate([echo_of(ref, 100.0, -12.0)[:jump], echo_of(ref, 180.0, -12.0)[jump:]])
    aec = EchoCanceller()
    out, c = run(aec, echo + noise, ref)
    left = out - noise
    half = RATE // 2
    steps = [
        db(power(echo[i : i + half]) / power(left[i : i + half])) for i in range(jump, n - half + 1, half)
    ]
    print("  " + " ".join(f"{s:.0f}" for s in steps), f"dB (delay now {aec.delay_ms} ms)")

    us = sorted(x * 1e6 for x in costs)
    print(
        f"\ncost per {FRAME}-sample frame over {len(us)} frames: median {statistics.median(us):.0f} us, "
        f"p90 {us[int(0.9 * len(us))]:.0f} us, p99 {us[int(0.99 * len(us))]:.0f} us, max {us[-1]:.0f} us "
        f"({statistics.median(us) / 320:.1f}% of a core at the median)"
    )


if __name__ == "__main__":
    main()
