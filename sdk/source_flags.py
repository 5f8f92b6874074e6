"""How source samples and their flags reach model-rate windows: one mapping, one owner.

The preprocessor resamples the source to the model rate; a window is ``W`` model-rate samples.
Two questions need the source samples behind a window: which model-rate samples stand for a
missing source sample (the window's ``samples_missing`` and ``usable``), and how many of the
window's source samples carry a device flag (the quality gate's ``electrode_off`` and
``saturated``). Both are answered here from one buffer with one rule: model-rate sample ``k``
stands for the source sample nearest in time (the resampler's ``output_to_input_index``), and a
window ``[k0, k0 + W)`` owns the source samples ``[index(k0), index(k0 + W))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.samples import SampleFlag

#: the source flags the quality gate counts per window (kept with each source sample)
GATE_FLAGS: Final = int(SampleFlag.ELECTRODE_OFF | SampleFlag.SATURATED)
#: this module's own bit beside them: the sample is missing (NaN after unit conversion)
_MISSING: Final = 0x80

#: model-rate index (an int or an int array) → source index of the same shape
IndexMap = Callable[[Any], Any]
Counts = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]


class SourceFlags:
    """The source samples' missing mark and gate flags, kept until no window can need them.

    Args:
        to_input: model-rate sample index → nearest source sample index (the resampler's
            ``output_to_input_index``).
        window_samples: W.
        streams: ``()`` for one stream, ``(S,)`` for S in lockstep.

    Memory: the source samples of at most one window plus one push.
    """

    def __init__(self, to_input: IndexMap, window_samples: int, streams: tuple[int, ...] = ()) -> None:
        self._to_input = to_input
        self._window = int(window_samples)
        self._streams = streams
        self._bits = np.zeros(streams + (0,), dtype=np.uint8)
        self._start = 0  # source index of _bits[..., 0]
        self._gate_flagged_to = 0  # one past the source index of the last sample with a gate flag
        self._marked_to = 0  # one past the source index of the last sample with any bit (missing or flag)

    @property
    def held(self) -> int:
        """Source samples kept now (bounded: one window's worth plus one push)."""
        return int(self._bits.shape[-1])

    def push(self, missing: npt.NDArray[np.bool_], flags: npt.ArrayLike | None = None) -> None:
        """The next source samples: ``missing`` (shape ``(n,)`` or ``(S, n)``) and optionally their
        :class:`SampleFlag` bits (same shape)."""
        first = self._start + self._bits.shape[-1]  # source index of the first new sample
        bits = np.zeros(missing.shape, dtype=np.uint8)
        if missing.any():
            bits[missing] = _MISSING
            self._marked_to = first + int(np.flatnonzero(missing.reshape(-1, missing.shape[-1]).any(axis=0))[-1]) + 1
        if flags is not None:
            source_flags = np.asarray(flags, dtype=np.uint8)
            if source_flags.shape != missing.shape:
                raise ConfigError(f"flags has shape {source_flags.shape} for samples of shape {missing.shape}")
            gate = source_flags & np.uint8(GATE_FLAGS)
            flagged_at = np.flatnonzero(gate.reshape(-1, gate.shape[-1]).any(axis=0))
            if flagged_at.size:
                bits |= gate
                self._gate_flagged_to = first + int(flagged_at[-1]) + 1
                self._marked_to = max(self._marked_to, self._gate_flagged_to)
        self._bits = np.concatenate([self._bits, bits], axis=-1)

    def missing_at(self, k: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Whether the source sample behind each model-rate sample ``k`` was missing, shape
        ``streams + (len(k),)`` (the last source sample held stands for any later one)."""
        held = self._bits.shape[-1]
        if not held:
            return np.zeros(self._streams + k.shape, bool)
        if not k.size or min(max(int(self._to_input(k[0])), self._start), self._start + held - 1) >= self._marked_to:
            # the usual live case: no sample from the first one needed on was missing or flagged
            # (k ascends, so neither were the later ones)
            return np.zeros(self._streams + k.shape, bool)
        # (np.minimum/np.maximum: np.clip's own checks cost more than the clipping here)
        source = np.minimum(np.maximum(self._to_input(k) - self._start, 0), held - 1)
        return (self._bits[..., source] & np.uint8(_MISSING)).astype(bool)

    def window_counts(self, start_index: npt.NDArray[np.int64]) -> Counts:
        """(source samples ``(N,)``, electrode-off, saturated ``streams + (N,)``) of the windows
        starting at model-rate samples ``start_index``, over the source samples held."""
        held = self._bits.shape[-1]
        lo = np.minimum(np.maximum(self._to_input(start_index) - self._start, 0), held)
        hi = np.minimum(np.maximum(self._to_input(start_index + self._window) - self._start, 0), held)
        total = (hi - lo).astype(np.int64)
        if not held or not start_index.size or self._start + int(lo[0]) >= self._gate_flagged_to:
            zeros = np.zeros(self._streams + (start_index.size,), np.int64)  # the usual case: none flagged
            return total, zeros, zeros.copy()
        counts = []
        for bit in (SampleFlag.ELECTRODE_OFF, SampleFlag.SATURATED):
            running = np.cumsum((self._bits & np.uint8(bit)) != 0, axis=-1, dtype=np.int64)
            running = np.concatenate([np.zeros(self._streams + (1,), np.int64), running], axis=-1)
            counts.append(running[..., hi] - running[..., lo])
        return total, counts[0], counts[1]

    def forget_before(self, model_index: int) -> None:
        """Drop the source samples before the one behind model-rate sample ``model_index`` (no
        later window or output needs them); the last sample held is always kept."""
        held = self._bits.shape[-1]
        keep_from = int(self._to_input(model_index))
        keep_from = min(max(keep_from - self._start, 0), max(held - 1, 0))
        self._bits = self._bits[..., keep_from:]
        self._start += keep_from


__all__ = ["GATE_FLAGS", "SourceFlags"]
