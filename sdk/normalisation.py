"""The per-window and causal normalisations of ``ekd-gsr`` (see :mod:`emotionkd.sdk.preprocessing`).

``window_zscore`` / ``none`` (version 1) work on whole windows; ``log_baseline`` (version 2)
is a causal exponential moving average of ln conductance with one number of state.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError

if TYPE_CHECKING:
    from emotionkd.sdk.preprocessing import PreprocessingConfig

#: ln conductance range the EMA's closed form may span inside one block (exp(25) ~ 7e10)
_EMA_LOG_RANGE = 25.0


def normalise_windows(conductance_us: npt.NDArray[np.float64], config: PreprocessingConfig) -> npt.NDArray[np.float32]:
    """Apply the configured per-window normalisation to ``(N, W)`` (or ``(S, N, W)``) µS; returns float32 of that shape."""
    x = np.asarray(conductance_us, dtype=np.float64)
    if config.normalisation == "none":
        return x.astype(np.float32)
    shape = x.shape
    x = x.reshape(-1, shape[-1])  # (S, N, W) in lockstep: reduced row by row exactly as (N, W)
    mean = x.mean(axis=-1, keepdims=True)
    std = x.std(axis=-1, keepdims=True)
    return ((x - mean) / np.maximum(std, config.zscore_floor_us)).astype(np.float32).reshape(shape)


class LogBaseline:
    """Causal ``log_baseline`` normalisation of a stream at the model rate (state: one number).

    ``b[k] = a * b[k-1] + (1 - a) * ln(y[k])`` with ``a = exp(-1 / (baseline_tau_s * rate_hz))``
    for valid ``y[k] > 0``; invalid samples (NaN, non-positive) leave ``b`` unchanged and give NaN
    features. ``b`` starts at ``ln(initial_baseline_us)`` or, without one, at the first valid
    sample. Output ``log_scale * (ln y[k] - b[k])``. Vectorised in closed form block by block
    (any chunking gives the same values to rounding). With ``streams=S`` it runs S streams in
    lockstep: push ``(S, n)``, the state is ``(S,)``, each row as its own baseline would be.
    """

    def __init__(self, config: PreprocessingConfig, initial_baseline_us: float | None = None,
                 streams: int | None = None) -> None:
        self.decay = math.exp(-1.0 / (config.baseline_tau_s * config.rate_hz))
        self.scale = float(config.log_scale)
        # Blocks short enough that decay**-count stays far from overflow.
        self._block = max(1, int(_EMA_LOG_RANGE / -math.log(self.decay)))
        start = math.nan
        if initial_baseline_us is not None:
            if not (math.isfinite(initial_baseline_us) and initial_baseline_us > 0):
                raise ConfigError(
                    f"initial_baseline_us must be a positive conductance in µS, got {initial_baseline_us!r}")
            start = math.log(initial_baseline_us)
        self._started = initial_baseline_us is not None  # every stream's baseline is a number
        self._powers: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] = (np.zeros(0), np.zeros(0))
        #: ln-conductance baseline now, () or (S,) (NaN before the first valid sample)
        self.states: npt.NDArray[np.float64] = np.full(() if streams is None else (streams,), start)

    @property
    def state(self) -> float:
        """The baseline (ln µS) of a single stream (NaN before its first valid sample)."""
        return float(self.states)

    def push(self, conductance_us: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Features (same shape: ``(n,)``, or ``(S, n)`` in lockstep) for the next samples (µS, NaN = missing)."""
        y = np.asarray(conductance_us, dtype=np.float64)
        if self._started and 0 < y.shape[-1] <= self._block and (y > 0).all():
            return self._push_valid(y)
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.where(y > 0, np.log(np.where(y > 0, y, 1.0)), np.nan)
        out = np.full(x.shape, np.nan)
        state = self.states
        for start in range(0, x.shape[-1], self._block):
            seg = x[..., start : start + self._block]
            valid = np.isfinite(seg)
            if not valid.any():
                continue
            # A stream's baseline starts at its first valid sample.
            first = np.take_along_axis(seg, np.argmax(valid, axis=-1)[..., None], axis=-1)[..., 0]
            state = np.where(np.isnan(state) & valid.any(axis=-1), first, state)
            # b[k] = a^m[k] * (b0 + (1-a) * sum_{j<=k valid} a^-m[j] x[j]), m = valid count so far.
            count = np.cumsum(valid, axis=-1)
            offset = state[..., None]
            weighted = np.where(valid, (seg - offset) * self.decay ** -count.astype(np.float64), 0.0)
            base = offset + self.decay ** count * (1.0 - self.decay) * np.cumsum(weighted, axis=-1)
            out[..., start : start + seg.shape[-1]] = np.where(valid, self.scale * (seg - base), np.nan)
            state = base[..., -1]  # a stream without a valid sample here keeps its state exactly
        self.states = np.asarray(state, dtype=np.float64)
        self._started = bool(np.isfinite(self.states).all())  # a started baseline never goes back to NaN
        return out

    def _push_valid(self, y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """:meth:`push` of one block of valid samples with a started baseline (the live case):
        the same arithmetic in the same order (so the same numbers), without the masks."""
        x = np.log(y)
        n = x.shape[-1]
        if self._powers[0].size < n:  # a^-m and a^m for m = 1 … n, as the general path computes them
            m = np.arange(1, n + 1)
            self._powers = (self.decay ** -m.astype(np.float64), self.decay ** m)
        offset = self.states[..., None]
        weighted = (x - offset) * self._powers[0][:n]
        base = offset + self._powers[1][:n] * (1.0 - self.decay) * np.cumsum(weighted, axis=-1)
        self.states = np.asarray(base[..., -1], dtype=np.float64)
        return self.scale * (x - base)


__all__ = ["LogBaseline", "normalise_windows"]
