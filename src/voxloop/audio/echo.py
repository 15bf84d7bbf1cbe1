"""Acoustic echo cancellation: take the agent's own voice back out of the microphone.

On a speakerphone or a laptop without echo cancellation the microphone hears what the agent says,
a little later and a little quieter. The loop knows exactly what it played (the reference), so the
echo can be predicted from it and subtracted, leaving the user's voice for the VAD and the
recogniser. This is the classic linear canceller, in three parts:

1. **Bulk delay.** Device buffers and the air add up to hundreds of milliseconds, far longer than
   any adaptive filter we could afford. GCC-PHAT (the cross-correlation of microphone and reference
   with every frequency weighted alike, so the peak is sharp even for voiced speech), averaged over
   about a second, finds it. A delay is believed only when its peak stands well clear of the other
   lags, and a change only when two estimates in a row agree.
2. **A short adaptive filter around that delay** (32 ms by default, starting 4 ms before the
   peak) models the gain and the room's colouring: a frequency-domain block NLMS filter, one
   block per frame, so it costs a handful of 1024-point FFTs per frame. Its step is set per
   frequency bin from how uncertain that bin's weight still is against how much else (noise, a
   voice) is in the error, Kalman-style: large while a bin is unknown, small once it is learnt,
   so noise does not keep jostling a filter that is already right.
3. **Double-talk protection** with two filters. The background filter adapts on every frame; the
   foreground filter, whose prediction is what gets subtracted, only ever takes a copy of the
   background once the background has been predicting the microphone better for a few frames.
   When the user talks over the agent, adaptation is disturbed by a voice the reference cannot
   explain and the background gets no better, so the foreground keeps the echo path it had; the
   user's voice, which no filter of the reference can predict, passes through untouched. There is
   no non-linear suppression afterwards, for the same reason: nothing here ever attenuates sound
   that the reference does not explain.

Everything is mono float32 at the loop's rate, one fixed-size frame at a time, numpy only.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from voxloop.audio.pcm import Samples
from voxloop.errors import AudioFormatError

Spectrum = NDArray[np.complex64]

# -- tuning, in one place --------------------------------------------------------------------------
SILENCE_DBFS = -80.0  # mean-square level under which a signal counts as silent
DELAY_WINDOW_S = 0.128  # how often the delay is re-estimated (and how much new audio each time)
DELAY_MEMORY_S = 0.6  # time constant of the averaged cross-spectrum
DELAY_PEAK_RATIO = 8.0  # GCC-PHAT peak over the RMS of all lags before a delay is believed
PRE_PEAK_S = 0.004  # filter taps kept before the detected peak (estimation jitter, pre-echo)
STEP = 1.0  # largest NLMS step of the background filter (normalised per bin)
ERROR_SMOOTHING = 0.5  # weight of the past in the per-bin error power
ERROR_SHARE = 0.5  # the valid half of a 2-frame block: residual echo power per unit of uncertainty
LEARN_RATE = 0.25  # how much a full step shrinks a bin's uncertainty (the constraint loses half)
UNCERTAINTY = 1.0  # squared gain of the largest echo path expected
TRACKING = 1e-5  # uncertainty added back per frame, so the filter can follow a drifting path
REGULARISATION = 1e-2  # floor of the per-bin reference power, as a fraction of its mean
COMPARE_SMOOTHING = 0.6  # weight of the past in the error energies that compare the two filters
COPY_RATIO = 0.95  # background error under this fraction of the foreground's: copy it over
RESET_RATIO = 4.0  # background error over this many times the foreground's: it diverged, reset it
WORSE_RATIO = 2.0  # foreground output this many times the microphone energy: drop the foreground
LEAK_SMOOTHING = 0.9  # weight of the past in the leak estimate (per frame of echo)
MIN_LEAK = 1e-4  # the leak (1/ERLE) estimate stops at -40 dB
NOISE_RISE = 1.02  # the output's noise floor rises at most this much per frame (~2.7 dB/s)
DOUBLE_TALK_DB = 10.0  # output (noise aside) within this of the echo estimate: someone else talks
MAX_DOUBLE_TALK_S = 1.5  # "double talk" longer than this is taken for a changed echo path
CONVERGED_DB = 10.0  # ERLE at which the canceller calls itself converged


class EchoInputError(AudioFormatError, ValueError):
    """A frame the canceller cannot take. A ValueError (bad argument) and an AudioFormatError (so
    the session's handling of bad audio, with its hint, applies) at once."""


def _db(mean_square: float) -> float:
    return 10.0 * math.log10(max(mean_square, 1e-12))


class _DelayEstimator:
    """Where the reference shows up in the microphone: GCC-PHAT averaged over recent history.

    Each update correlates the latest `window` microphone samples with the reference over lags
    0..max_lag (one FFT each, zero-padded so the correlation is linear, not circular) and adds the
    cross-spectrum to an exponentially decaying sum. Summing cross-spectra of consecutive windows is
    the same as correlating over their union, so the estimate sees about `DELAY_MEMORY_S` of audio
    while each update costs only three FFTs. The PHAT weighting (unit magnitude per bin) is applied
    to the sum, so loud stretches count for more than quiet ones but no frequency dominates.
    """

    def __init__(self, rate: int, window: int, max_lag: int, tolerance: int) -> None:
        self.window, self.max_lag, self.tolerance = window, max_lag, tolerance
        self.nfft = 1 << (window + max_lag - 1).bit_length()
        self.decay = math.exp(-window / (DELAY_MEMORY_S * rate))
        self._silence = window * 10 ** (SILENCE_DBFS / 10)
        self.reset()

    def reset(self) -> None:
        self._cross = np.zeros(self.nfft // 2 + 1, np.complex128)
        self._mic = np.zeros(self.nfft, np.float32)
        self._candidate: int | None = None
        self.delay: int | None = None
        self.peak_ratio = 0.0

    def update(self, mic: Samples, ref: Samples) -> bool:
        """`mic`: the last `window` microphone samples; `ref`: the last `window + max_lag` reference
        samples (ending at the same instant). True when the accepted delay changed: the first
        clear peak is taken at once, a move of more than `tolerance` samples (less is within what
        the adaptive filter covers anyway) only when the next window agrees."""
        recent = ref[-self.window - self.max_lag :]
        if float(np.dot(recent, recent)) < self._silence or float(np.dot(mic, mic)) < self._silence:
            return False  # nothing to correlate: keep what we know
        # Microphone sample i sits at max_lag + i, opposite reference sample max_lag + i - lag.
        self._mic[self.max_lag : self.max_lag + self.window] = mic
        spec = np.fft.rfft(self._mic) * np.conj(np.fft.rfft(recent, self.nfft))
        self._cross = self.decay * self._cross + spec
        mag = np.abs(self._cross)
        gcc = np.fft.irfft(self._cross / (mag + 1e-3 * float(mag.max()) + 1e-20), self.nfft)
        lags = gcc[: self.max_lag + 1]
        lag = int(np.argmax(lags))
        self.peak_ratio = float(lags[lag]) / (float(np.sqrt(np.mean(lags**2))) + 1e-20)
        if self.peak_ratio < DELAY_PEAK_RATIO:
            self._candidate = None
            return False
        if self.delay is not None and abs(lag - self.delay) <= self.tolerance:
            self._candidate = None
            return False
        if self.delay is not None and (
            self._candidate is None or abs(lag - self._candidate) > self.tolerance
        ):
            self._candidate = lag  # believe it when the next window agrees
            return False
        self.delay, self._candidate = lag, None
        return True


class EchoCanceller:
    """Removes the echo of `ref` (what the speaker played) from `mic`, frame by frame.

    `process(mic, ref)` takes one microphone frame and the reference frame played over the same
    interval (zeros while the agent is silent) and returns the microphone frame minus the echo.
    The properties describe the last frame, for the loop's barge-in logic (see `double_talk`).
    Not thread-safe: one canceller per audio stream.
    """

    def __init__(
        self, rate: int = 16000, frame: int = 512, max_delay_ms: float = 300.0, filter_ms: float = 32.0
    ) -> None:
        if rate <= 0 or frame <= 0:
            raise ValueError(f"rate and frame must be positive, got rate={rate}, frame={frame}")
        if not 0.0 <= max_delay_ms <= 2000.0:
            raise ValueError(f"max_delay_ms must be within 0..2000, got {max_delay_ms}")
        if filter_ms <= 0.0:
            raise ValueError(f"filter_ms must be positive, got {filter_ms}")
        self.rate, self.frame = rate, frame
        self._max_lag = round(max_delay_ms * rate / 1000)
        self._parts = max(1, math.ceil(filter_ms * rate / 1000 / frame))
        self._pre = min(round(PRE_PEAK_S * rate), frame // 2)
        window = frame * max(1, round(DELAY_WINDOW_S * rate / frame))
        self._delay_every = window // frame
        self._delays = _DelayEstimator(rate, window, self._max_lag, tolerance=self._pre // 2)
        # Reference history: enough for the delay estimator and for every partition's 2-frame block
        # at the largest delay.
        self._ref = np.zeros(
            max(window + self._max_lag, self._max_lag + (self._parts + 1) * frame), np.float32
        )
        self._mic = np.zeros(window, np.float32)
        self._silence = frame * 10 ** (SILENCE_DBFS / 10)
        self._talk_limit = round(MAX_DOUBLE_TALK_S * rate / frame)
        self._pad = np.zeros(2 * frame, np.float32)  # scratch: [zeros, one frame]
        # Squared error of a weight before anything is learnt: the largest echo path expected,
        # spread over the partitions.
        self._uncertainty_max = UNCERTAINTY / self._parts
        self.reset()

    # -- state -------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the echo path (a new audio device, a new call); the next frames re-converge."""
        self._ref[:] = 0.0
        self._mic[:] = 0.0
        self._delays.reset()
        self._frames = 0
        self._delay = self._pre  # before any estimate: assume a short path, the filter covers it
        self._reset_filters()
        self._noise: float | None = None
        self._mic_ms = self._echo_ms = self._out_ms = 0.0
        self._double_talk = False

    def _reset_filters(self) -> None:
        bins = self.frame + 1
        self._x = np.zeros((self._parts, bins), np.complex64)  # reference blocks, newest first
        self._x_power = np.zeros((self._parts, bins), np.float32)  # their power per bin
        self._fg = np.zeros((self._parts, bins), np.complex64)
        self._bg = np.zeros((self._parts, bins), np.complex64)
        self._err_power = np.zeros(bins, np.float32)  # the background's error power, smoothed
        self._uncertainty = np.full(bins, self._uncertainty_max, np.float32)
        self._leak = 1.0  # residual echo over estimated echo, power; 1 = nothing learnt yet
        self._leak_num = self._leak_den = 0.0
        self._talk_run = 0  # frames of double talk in a row
        self._e_mic = self._e_fg = self._e_bg = 0.0
        for p in range(self._parts):
            self._push_block(p)

    def _push_block(self, age: int) -> None:
        """FFT the 2-frame reference block that feeds partition `age` in the current frame."""
        end = len(self._ref) - max(self._delay - self._pre, 0) - age * self.frame
        self._x[age] = np.fft.rfft(self._ref[end - 2 * self.frame : end])
        self._x_power[age] = self._x[age].real ** 2 + self._x[age].imag ** 2

    # -- the work ----------------------------------------------------------------------------------
    def process(self, mic: Samples, ref: Samples) -> Samples:
        """One microphone frame and the reference played during it -> the frame without the echo."""
        m = self._check(mic, "mic")
        r = self._check(ref, "ref")
        n = self.frame
        self._ref[:-n] = self._ref[n:]
        self._ref[-n:] = r
        self._mic[:-n] = self._mic[n:]
        self._mic[-n:] = m
        self._frames += 1
        if self._frames % self._delay_every == 0 and self._delays.update(self._mic, self._ref):
            assert self._delays.delay is not None
            self._delay = self._delays.delay
            self._reset_filters()  # the old filter modelled the old path; start again around the new one
        else:
            self._x[1:] = self._x[:-1]
            self._x_power[1:] = self._x_power[:-1]
            self._push_block(0)

        mic_ms = float(np.dot(m, m)) / n
        x_power = float(self._x_power.sum())
        if x_power == 0.0:
            # Nothing the filter could predict from: the output is the input, bit for bit.
            self._update_levels(mic_ms, 0.0, mic_ms)
            return m.copy()

        y_fg = self._predict(self._fg)
        y_bg = self._predict(self._bg)
        out = (m - y_fg).astype(np.float32)
        e_bg = (m - y_bg).astype(np.float32)
        out_energy, bg_energy = float(np.dot(out, out)), float(np.dot(e_bg, e_bg))
        if float(self._x_power[0].sum()) > 2 * n * self._silence:
            self._adapt(e_bg)
        self._compare(mic_ms * n, out_energy, bg_energy)
        self._update_levels(mic_ms, float(np.dot(y_fg, y_fg)) / n, out_energy / n)
        return out

    def _predict(self, weights: Spectrum) -> Samples:
        spec = np.sum(weights * self._x, axis=0)
        return np.fft.irfft(spec, 2 * self.frame)[self.frame :].astype(np.float32)

    def _spectrum(self, x: Samples) -> Spectrum:
        """Spectrum of one frame placed after a frame of zeros, the layout the gradient needs."""
        self._pad[self.frame :] = x
        return np.fft.rfft(self._pad).astype(np.complex64, copy=False)

    def _adapt(self, error: Samples) -> None:
        """One step of the background filter: NLMS per frequency bin, with the gradient
        constrained to `frame` taps per partition (so the blocks convolve linearly), and a step
        chosen per bin the Kalman way.

        A fixed NLMS step jostles the filter by the step times whatever noise is in the error, so
        a step large enough to converge in a second leaves the residual echo at about the noise
        level for good. Instead each bin keeps `_uncertainty`, how wrong its weight may still be
        (starting at the largest echo path gain we expect). The step is the expected residual echo
        (uncertainty x reference power) over that plus the rest of the error (noise, or a near-end
        voice): near 1 while the bin is unknown, small once it is known. Every step taken shrinks
        the uncertainty; a bin that speech has not excited yet stays uncertain and learns fast
        when it is, which matters for speech since its energy moves from bin to bin.
        """
        err = self._spectrum(error)
        err_power = err.real**2 + err.imag**2
        power = self._x_power.sum(axis=0) + REGULARISATION * float(self._x_power.mean()) + 1e-20
        expected = self._uncertainty * power * ERROR_SHARE
        self._err_power = ERROR_SMOOTHING * self._err_power + (1 - ERROR_SMOOTHING) * err_power
        mu = STEP * expected / (expected + self._err_power)
        self._uncertainty = self._uncertainty * (1.0 - LEARN_RATE * mu) + TRACKING * self._uncertainty_max
        grad = np.fft.irfft(np.conj(self._x) * (err * (mu / power)), 2 * self.frame, axis=-1)
        grad[:, self.frame :] = 0.0
        self._bg += np.fft.rfft(grad, axis=-1).astype(np.complex64)

    def _compare(self, e_mic: float, e_fg: float, e_bg: float) -> None:
        """Copy the background into the foreground once it predicts the microphone clearly better;
        bring a diverged background back to the foreground; and drop a foreground that makes the
        microphone louder instead of quieter (the echo path changed under it): subtracting
        nothing is never worse than that, and the background is told to learn afresh."""
        a = COMPARE_SMOOTHING
        self._e_mic = a * self._e_mic + (1 - a) * e_mic
        self._e_fg = a * self._e_fg + (1 - a) * e_fg
        self._e_bg = a * self._e_bg + (1 - a) * e_bg
        if self._e_bg < COPY_RATIO * self._e_fg and e_bg < e_fg:
            self._fg[:] = self._bg
            self._e_fg = self._e_bg
        elif self._e_bg > RESET_RATIO * self._e_fg:
            self._bg[:] = self._fg
            self._e_bg = self._e_fg
        if self._e_fg > WORSE_RATIO * self._e_mic and self._fg.any():
            self._fg[:] = 0.0
            self._e_fg = self._e_mic
            self._uncertainty[:] = self._uncertainty_max

    def _update_levels(self, mic_ms: float, echo_ms: float, out_ms: float) -> None:
        """Per-frame levels, the output's noise floor, double talk and the ERLE estimate."""
        self._mic_ms, self._echo_ms, self._out_ms = mic_ms, echo_ms, out_ms
        # The output's noise floor: follows every dip at once, creeps up about 3 dB a second.
        floor = max(out_ms, 1e-12)
        self._noise = floor if self._noise is None else min(self._noise * NOISE_RISE, floor)
        if echo_ms <= self._noise:
            self._double_talk = False  # no echo worth speaking of in this frame
            return
        residual = out_ms - self._noise  # what is left beside the noise: residual echo, or a voice
        self._double_talk = residual > echo_ms * 10 ** (-DOUBLE_TALK_DB / 10)
        self._talk_run = self._talk_run + 1 if self._double_talk else 0
        # Once converged, a double-talk frame says nothing about the echo and is left out, unless
        # "double talk" has gone on for longer than any barge-in would before the loop ducks the
        # agent: then it is the echo path that changed, and the estimate must hear about it.
        if self._double_talk and self.converged and self._talk_run < self._talk_limit:
            return
        # Sums, not a mean of ratios: a frame whose residual hides under the noise (negative
        # here) pulls the estimate only as much as it weighs.
        a = LEAK_SMOOTHING
        self._leak_num = a * self._leak_num + residual
        self._leak_den = a * self._leak_den + echo_ms
        self._leak = min(max(self._leak_num / self._leak_den, MIN_LEAK), 1.0)

    def _check(self, x: Samples, name: str) -> Samples:
        arr = np.asarray(x)
        if arr.ndim != 1 or len(arr) != self.frame:
            raise EchoInputError(
                f"{name} must be a 1-D frame of {self.frame} samples, got shape {arr.shape}",
                "pass one mono frame at a time, the same length as `frame`",
            )
        if not np.issubdtype(arr.dtype, np.floating):
            raise EchoInputError(
                f"{name} must hold float samples in [-1, 1], got {arr.dtype}",
                "convert with voxloop.audio.pcm.to_float32",
            )
        if not np.isfinite(arr).all():
            raise EchoInputError(f"{name} holds NaN or infinite samples", "check the audio source")
        return arr.astype(np.float32, copy=False)

    # -- what the loop reads -----------------------------------------------------------------------
    @property
    def delay_ms(self) -> float | None:
        """The bulk delay of the echo path, once the reference has been found in the microphone."""
        d = self._delays.delay
        return None if d is None else 1000.0 * d / self.rate

    @property
    def erle_db(self) -> float:
        """How far the canceller currently brings the echo down (estimated echo over the residual
        echo, the noise floor left out), in dB; 0 before it has learnt anything."""
        return -10.0 * math.log10(self._leak)

    @property
    def converged(self) -> bool:
        return self.erle_db >= CONVERGED_DB

    @property
    def mic_level(self) -> float:
        """Mean-square level of the last microphone frame, dBFS."""
        return _db(self._mic_ms)

    @property
    def echo_level(self) -> float:
        """Level of the echo estimate subtracted from the last frame, dBFS (-120: none)."""
        return _db(self._echo_ms)

    @property
    def residual_level(self) -> float:
        """Level of the last output frame, dBFS."""
        return _db(self._out_ms)

    @property
    def noise_level(self) -> float:
        """The output's noise floor, dBFS."""
        return _db(self._noise or 0.0)

    @property
    def double_talk(self) -> bool:
        """The last frame had echo to remove, and its output, noise floor aside, comes within
        `DOUBLE_TALK_DB` of the echo estimate: more than a converged filter leaves behind, so a
        voice the reference does not explain. Meaningful once `converged` (before that, residual
        echo alone passes this test)."""
        return self._double_talk
