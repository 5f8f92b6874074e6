"""Streaming rational resampling with a built-in anti-aliasing / smoothing low-pass.

One polyphase FIR (a Kaiser-windowed sinc) does three jobs at once: it suppresses what would
alias when the device rate is above the target rate, removes the images that upsampling from a
slow device (e.g. an Empatica E4 at 4 Hz) creates, and applies the GSR smoothing low-pass. It is
pure numpy, so the SDK stays inside its start-up budget (``scipy.signal`` alone costs ~0.6 s).

Alignment and latency: the filter is linear-phase and its delay is compensated, so output
sample ``k`` sits exactly at time ``k / rate_out_hz`` on the input's time axis (input sample 0 at
t = 0). The price is a fixed latency of :attr:`StreamingResampler.latency_s`: output ``k`` is
emitted once the input up to ``k / rate_out_hz + latency_s`` has arrived. Before the first input
sample the history is filled with the first sample (no start-up transient), and :meth:`flush`
does the same with the last sample at the end of a recording. Streaming in chunks of any size
and calling :meth:`flush` gives exactly what one call with the whole recording gives.

Missing samples are NaN: an output whose filter support touches a NaN is NaN (no stitching
across a gap; the gap grows by the filter's half-length on each side).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.bounds import rate_problem
from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.sdk.windowing import strided_rows

#: largest up/down factor accepted when a rate ratio is approximated by a fraction
_MAX_RATIO_TERM = 4096
#: outputs computed per vectorised block
_BLOCK_OUTPUTS = 2048
#: relative rate error tolerated when approximating an irrational ratio (0.36 ms per hour)
_MAX_RATE_ERROR = 1e-7


def rational_ratio(rate_in_hz: float, rate_out_hz: float) -> tuple[int, int]:
    """Return ``(up, down)`` with ``rate_out_hz / rate_in_hz == up / down`` (to 1e-7).

    Raises:
        ConfigError: a rate is outside the plausibility bounds
            (:mod:`~emotionkd.firmware_bridge.bounds`), or no fraction with terms up to 4096 is
            close enough (an exotic rate: resample it yourself first).
    """
    for name, value in (("rate_in_hz", rate_in_hz), ("rate_out_hz", rate_out_hz)):
        problem = rate_problem(value)
        if problem is not None:  # also keeps the exact integer ratios short (1e-308 would give ~1024-bit terms)
            raise ConfigError(f"{name} must be a positive, plausible rate: {problem}")
    out_num, out_den = float(rate_out_hz).as_integer_ratio()
    in_num, in_den = float(rate_in_hz).as_integer_ratio()
    exact = (out_num * in_den, out_den * in_num)  # the exact ratio of the two floats
    up, down = _closest_fraction(*exact, _MAX_RATIO_TERM)
    while up > _MAX_RATIO_TERM and down > 1:
        up, down = _closest_fraction(*exact, down // 2)
    if abs((up * exact[1]) / (down * exact[0]) - 1.0) > _MAX_RATE_ERROR or up > _MAX_RATIO_TERM:
        raise ConfigError(
            f"cannot resample {rate_in_hz} Hz to {rate_out_hz} Hz with a rational factor of "
            f"terms up to {_MAX_RATIO_TERM}; resample the signal to a common rate first"
        )
    return up, down


def _closest_fraction(num: int, den: int, max_den: int) -> tuple[int, int]:
    """The fraction closest to ``num / den`` (positive integers) among those with a denominator
    of at most ``max_den``, in lowest terms.

    Integer continued fractions (the last convergent within ``max_den`` or the best semiconvergent
    after it), instead of :mod:`fractions`, whose import (with :mod:`decimal`) costs ~0.45 MB of
    resident memory on the device.
    """
    g = math.gcd(num, den)
    num, den = num // g, den // g
    if den <= max_den:
        return num, den
    p0, q0, p1, q1 = 0, 1, 1, 0  # convergents h(k-2)/k(k-2), h(k-1)/k(k-1)
    n, d = num, den
    while True:
        a = n // d
        q2 = q0 + a * q1
        if q2 > max_den:
            break
        p0, q0, p1, q1 = p1, q1, p0 + a * p1, q2
        n, d = d, n - a * d
    k = (max_den - q0) // q1  # the best semiconvergent with a denominator within max_den
    semi = (p0 + k * p1, q0 + k * q1)
    # the nearer of the last convergent and the semiconvergent (cross-multiplied distances; a
    # tie keeps the convergent)
    if abs(p1 * den - num * q1) * semi[1] <= abs(semi[0] * den - num * semi[1]) * q1:
        return p1, q1
    return semi


@dataclass(frozen=True)
class FilterDesign:
    """The FIR the resampler runs, at the upsampled rate ``up * rate_in_hz``.

    Attributes:
        up, down: rational factors, rate_out = rate_in * up / down.
        cutoff_hz: -6 dB point of the low-pass.
        transition_hz: width of the transition band (passband edge = cutoff - transition/2).
        taps: odd number of taps, so the delay is a whole number of upsampled samples.
    """

    up: int
    down: int
    cutoff_hz: float
    transition_hz: float
    taps: int


def design_filter(
    rate_in_hz: float,
    rate_out_hz: float,
    lowpass_hz: float | None,
    attenuation_db: float = 60.0,
) -> tuple[FilterDesign, npt.NDArray[np.float64]]:
    """Design the Kaiser-windowed-sinc low-pass for a resampling.

    The cutoff is ``lowpass_hz`` but never above 0.8 of the lower Nyquist frequency; the
    stopband begins no later than that Nyquist frequency, so nothing aliases by more than
    ``attenuation_db``. Returns ``(design, h)`` with ``h`` of shape ``(taps,)``; ``h`` is
    ``None``-free and empty (``taps == 0``) when no filtering is needed (equal rates and no
    low-pass requested).
    """
    up, down = rational_ratio(rate_in_hz, rate_out_hz)
    nyquist_hz = min(rate_in_hz, rate_out_hz) / 2.0
    if lowpass_hz is not None and not (math.isfinite(lowpass_hz) and lowpass_hz > 0):
        raise ConfigError(f"lowpass_hz must be a positive number of hertz or None, got {lowpass_hz!r}")
    if up == down == 1 and lowpass_hz is None:
        return FilterDesign(1, 1, math.inf, 0.0, 0), np.zeros(0)
    cutoff_hz = 0.8 * nyquist_hz if lowpass_hz is None else min(lowpass_hz, 0.8 * nyquist_hz)
    transition_hz = min(cutoff_hz, 2.0 * (nyquist_hz - cutoff_hz))
    rate_up_hz = up * rate_in_hz
    # Kaiser's formulas (Oppenheim & Schafer 7.6): length and beta for the wanted attenuation.
    a = float(attenuation_db)
    beta = 0.1102 * (a - 8.7) if a > 50 else (0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21) if a >= 21 else 0.0)
    taps = int(math.ceil((a - 7.95) / (2.285 * 2 * math.pi * transition_hz / rate_up_hz))) + 1
    taps = max(taps, 3) | 1  # odd
    n = np.arange(taps, dtype=np.float64) - (taps - 1) / 2.0
    h = (2 * cutoff_hz / rate_up_hz) * np.sinc(2 * cutoff_hz / rate_up_hz * n) * np.kaiser(taps, beta)
    return FilterDesign(up, down, cutoff_hz, transition_hz, taps), h


class StreamingResampler:
    """Resample a stream from ``rate_in_hz`` to ``rate_out_hz`` in chunks of any size.

    Args:
        rate_in_hz: the device rate (any positive rate whose ratio to the output is rational
            with terms up to 4096: 4, 15, 32, 51.2, 1000, 2048 Hz … all work).
        rate_out_hz: the model rate (128 Hz for EmotionKD).
        lowpass_hz: smoothing cutoff (-6 dB), or None for anti-aliasing only.
        attenuation_db: stopband attenuation.
    """

    def __init__(
        self,
        rate_in_hz: float,
        rate_out_hz: float,
        lowpass_hz: float | None = None,
        attenuation_db: float = 60.0,
    ) -> None:
        self.rate_in_hz = float(rate_in_hz)
        self.rate_out_hz = float(rate_out_hz)
        self.design, h = design_filter(rate_in_hz, rate_out_hz, lowpass_hz, attenuation_db)
        up, down = self.design.up, self.design.down
        self._up, self._down = up, down
        if self.design.taps == 0:
            self._delay_up = 0
            self._branches = np.ones((1, 1))
        else:
            self._delay_up = (self.design.taps - 1) // 2
            width = -(-self.design.taps // up)  # ceil
            branches = np.zeros((up, width))
            for phase in range(up):
                part = h[phase::up]
                # Each branch sums to one, so a constant input gives exactly that constant out
                # (no per-phase ripple when upsampling).
                branches[phase, : part.size] = part / part.sum()
            self._branches = branches
        # Taps in input order for the up == 1 path (oldest input first).
        self._reversed_taps = np.ascontiguousarray(self._branches[0, ::-1])
        # _history holds inputs with global indices [_history_start, _n_in).
        self._history = np.zeros(0)
        self._history_start = 0
        self._n_in = 0
        self._next_out = 0
        self._first_value: npt.NDArray[np.float64] | None = None  # per stream
        self._flushed = False

    @property
    def latency_s(self) -> float:
        """Seconds of input needed after an output's time before it can be computed."""
        return self._delay_up / (self._up * self.rate_in_hz)

    @property
    def samples_in(self) -> int:
        """Input samples received so far."""
        return self._n_in

    @property
    def samples_out(self) -> int:
        """Output samples produced so far."""
        return self._next_out

    def output_to_input_index(self, k: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Index of the input sample nearest in time to each output sample ``k``."""
        return (k * self._down + self._up // 2) // self._up

    def push(self, chunk: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Feed input samples (shape ``(n,)``, NaN = missing); return the outputs now complete.

        Streams in lockstep (same rates, same number of samples per push) may be resampled
        together: push shape ``(S, n)`` every time and get ``(S, m)`` back, each row exactly what
        a resampler of its own would give (see :mod:`emotionkd.sdk.batch_pipeline`).
        """
        x = np.asarray(chunk, dtype=np.float64)
        x = x.reshape(-1) if x.ndim <= 1 else x
        if self._flushed:
            raise ConfigError("this resampler was flushed; create a new one for a new stream")
        if x.shape[-1] == 0:
            return np.zeros(x.shape)
        if self._first_value is None:
            # Before the stream start the filter sees the first sample (no start-up transient).
            self._first_value = x[..., 0].copy()
            width = self._branches.shape[1]
            self._history = np.repeat(self._first_value[..., None], width, axis=-1)
            self._history_start = -width
        elif x.shape[:-1] != self._history.shape[:-1]:
            raise ConfigError(f"this resampler runs {self._history.shape[:-1] or 'one'} stream(s); "
                              f"a push of shape {x.shape} does not match")
        self._history = np.concatenate([self._history, x], axis=-1)
        self._n_in += x.shape[-1]
        return self._produce(available_until=self._n_in - 1)

    def flush(self) -> npt.NDArray[np.float64]:
        """End of stream: return the remaining outputs, padding the future with the last sample.

        Each input sample stands for its whole sampling period, so outputs are produced for
        every time before ``samples_in / rate_in_hz`` (a 60 s recording at 4 Hz gives 60 s of
        output, not 59.75 s).
        """
        if self._flushed or self._n_in == 0:
            self._flushed = True
            return np.zeros(self._history.shape[:-1] + (0,))
        self._flushed = True
        last_time_out = (self._n_in * self._up - 1) // self._down  # last output before the end
        last_needed = (last_time_out * self._down + self._delay_up) // self._up
        extra = max(0, last_needed - (self._n_in - 1))
        if extra:
            pad = np.repeat(self._history[..., -1:], extra, axis=-1)
            self._history = np.concatenate([self._history, pad], axis=-1)
        return self._produce(available_until=self._n_in - 1 + extra, last_output=last_time_out)

    def _produce(self, available_until: int, last_output: int | None = None) -> npt.NDArray[np.float64]:
        up, down, delay = self._up, self._down, self._delay_up
        # Output k needs inputs up to floor((k*down + delay) / up), i.e.
        # k*down + delay <= (available_until + 1) * up - 1.
        budget = (available_until + 1) * up - 1 - delay
        k_end = budget // down + 1 if budget >= 0 else 0
        if last_output is not None:
            k_end = min(k_end, last_output + 1)
        count = max(k_end - self._next_out, 0)
        streams = self._history.shape[:-1]  # () for one stream, (S,) for streams in lockstep
        if count == 0:
            return np.zeros(streams + (0,))
        width = self._branches.shape[1]
        out = np.empty(streams + (count,))
        # Blocks keep the gathered (outputs × taps) matrix in cache for long offline chunks.
        for b in range(0, count, _BLOCK_OUTPUTS):
            k0, n = self._next_out + b, min(_BLOCK_OUTPUTS, count - b)  # outputs k0 … k0 + n - 1
            if up == 1:
                # Integer decimation (or none): the inputs of consecutive outputs are evenly spaced
                # windows of the history, so a strided view and one matrix-vector product do it
                # (plain integers: a live push computes a handful of outputs, index arrays cost more).
                first = k0 * down + delay - self._history_start - width + 1  # local index of the oldest input
                rows = strided_rows(self._history, first, n, down, width)
                out[..., b : b + n] = rows @ self._reversed_taps
            else:
                pos = np.arange(k0, k0 + n, dtype=np.int64) * down + delay
                newest = pos // up - self._history_start  # local index of each output's newest input
                idx = newest[:, None] - np.arange(width)[None, :]
                taps = self._branches[pos % up]
                if streams:  # rows of all streams in one (S·k, taps) product, each row summed as for one stream
                    rows2 = self._history[..., idx].reshape(-1, width)
                    taps = np.broadcast_to(taps, streams + taps.shape).reshape(-1, width)
                    out[..., b : b + n] = np.einsum("ij,ij->i", taps, rows2).reshape(streams + (n,))
                else:
                    out[b : b + n] = np.einsum("ij,ij->i", taps, self._history[idx])
        self._next_out += count
        # Keep only the history the next outputs can still need.
        oldest_needed = (self._next_out * down + delay) // up - (width - 1)
        drop = min(max(0, oldest_needed - self._history_start), self._history.shape[-1])
        if drop:
            self._history = self._history[..., drop:]
            self._history_start += drop
        return out


__all__ = ["FilterDesign", "StreamingResampler", "design_filter", "rational_ratio"]
