"""Gap-aware windowing of a uniformly sampled stream (pure index maths, no signal processing).

Samples live on a true time axis: a missing sample is NaN in place, never removed, so a window
always spans exactly ``window_samples / rate`` seconds and is never stitched across a gap.
Windows start at sample indices ``0, hop, 2·hop, …`` of the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from emotionkd.firmware_bridge.errors import ConfigError


@dataclass(frozen=True)
class RawWindows:
    """A batch of ``N`` windows of ``W`` samples.

    Attributes:
        start_index: (N,) int64 index of each window's first sample in the stream.
        values: (N, W) float64 samples, NaN where missing.
        flagged: (N, W) bool, True where a sample was missing at the source (even if it was
            filled in before windowing).
    """

    start_index: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]  # (N, W), or (S, N, W) for streams in lockstep
    flagged: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.start_index.size)


@dataclass(frozen=True)
class Windows:
    """Preprocessed windows, a batch of ``N`` windows of ``W`` samples at the model rate.

    Attributes:
        start_index: (N,) int64, first sample of each window at the model rate (0 = the
            stream's first sample).
        start_s, end_s: (N,) float64, window span in seconds on the stream's time axis.
        conductance_us: (N, W) float64, smoothed conductance (NaN where missing).
        features: (N, W) float32, normalised model input (NaN rows where not usable).
        samples_missing: (N,) int64, samples missing at the source or lost to a gap.
        usable: (N,) bool, the window may be given to the model.
        source_samples: (N,) int64, source samples that belong to the window.
        electrode_off, saturated: (N,) int64, how many of them carry that :class:`SampleFlag`.

    Source samples reach windows one way (:meth:`GsrPreprocessor.push`): model-rate sample
    ``k`` stands for the source sample nearest in time (the resampler's
    ``output_to_input_index``), and a window ``[k0, k0 + W)`` owns the source samples
    ``[index(k0), index(k0 + W))``; its missing count and its flag counts both come from there.
    """

    start_index: npt.NDArray[np.int64]
    start_s: npt.NDArray[np.float64]
    end_s: npt.NDArray[np.float64]
    conductance_us: npt.NDArray[np.float64]
    features: npt.NDArray[np.float32]
    samples_missing: npt.NDArray[np.int64]
    usable: npt.NDArray[np.bool_]
    source_samples: npt.NDArray[np.int64]
    electrode_off: npt.NDArray[np.int64]
    saturated: npt.NDArray[np.int64]

    # Streams in lockstep (``GsrPreprocessor(streams=S)``): the per-window fields get a leading
    # stream axis, ``(S, N, W)`` and ``(S, N)``; the time fields stay ``(N,)`` (shared).

    def __len__(self) -> int:
        return int(self.start_index.size)

    @staticmethod
    def concatenate(parts: list[Windows], window_samples: int) -> Windows:
        """Join batches in order (an empty list gives an empty batch of width W)."""
        if not parts:
            return empty_windows(window_samples)
        return Windows(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Windows)))


def empty_windows(window_samples: int, streams: tuple[int, ...] = ()) -> Windows:
    return Windows(
        np.zeros(0, np.int64),
        np.zeros(0),
        np.zeros(0),
        np.zeros(streams + (0, window_samples)),
        np.zeros(streams + (0, window_samples), np.float32),
        np.zeros(streams + (0,), np.int64),
        np.zeros(streams + (0,), bool),
        np.zeros(0, np.int64),
        np.zeros(streams + (0,), np.int64),
        np.zeros(streams + (0,), np.int64),
    )


def strided_rows(values: npt.NDArray[Any], first: int, rows: int, step: int, width: int) -> npt.NDArray[Any]:
    """A read-only view ``(..., rows, width)`` of ``values`` ``(..., n)``: row ``r`` is
    ``values[..., first + r·step : first + r·step + width]`` (all inside ``values``).

    For a C-contiguous array (a windower's buffer, every live push) the view is built on the
    buffer directly: ``sliding_window_view`` gives the same view (same strides, hence the same
    arithmetic on it) at several times the Python cost, paid on every push.
    """
    if values.flags.c_contiguous:
        itemsize = values.itemsize
        view: npt.NDArray[Any] = np.ndarray(values.shape[:-1] + (rows, width), values.dtype, values,
                                            offset=first * itemsize,
                                            strides=values.strides[:-1] + (step * itemsize, itemsize))
        view.flags.writeable = False
        return view
    return sliding_window_view(values, width, axis=-1)[..., first : first + rows * step : step, :]


class Windower:
    """Cut a stream into windows of ``window_samples`` every ``hop_samples``, in any chunking.

    Args:
        window_samples: W, samples per window (512 = 4 s at 128 Hz).
        hop_samples: samples between window starts (128 = 1 s at 128 Hz; W for no overlap).
        track_flags: keep per-sample flags; False for a stream that has none (the windows'
            ``flagged`` is then all False, without a buffer).
        channels: None for one series per stream; C to cut C series of the same stream(s) in
            one buffer (the preprocessor's conductance and features): pushes are then
            ``(C, ..., n)`` with flags ``(..., n)`` (shared by the channels), and the windows'
            values ``(C, ..., N, W)`` with ``flagged`` ``(..., N, W)``. One buffer, one copy
            per push instead of one windower per series.
    """

    def __init__(self, window_samples: int, hop_samples: int, *, track_flags: bool = True,
                 channels: int | None = None) -> None:
        if int(window_samples) < 1:
            raise ConfigError(f"window_samples must be >= 1, got {window_samples!r}")
        if int(hop_samples) < 1:
            raise ConfigError(f"hop_samples must be >= 1, got {hop_samples!r}")
        self.window_samples = int(window_samples)
        self.hop_samples = int(hop_samples)
        self.track_flags = track_flags
        self.channels = channels
        self._values = np.zeros(0)
        self._flags = np.zeros(0, dtype=bool)
        self._buffer_start = 0  # stream index of _values[0]
        self._next_start = 0  # stream index of the next window's first sample

    @property
    def next_start(self) -> int:
        """Stream index of the next window's first sample."""
        return self._next_start

    def push(self, values: npt.ArrayLike, flagged: npt.ArrayLike | None = None) -> RawWindows:
        """Append samples (shape ``(n,)``) and their source flags; return windows now complete.

        Streams in lockstep push ``(S, n)`` every time and get windows ``(S, N, W)`` (the
        start indices, the same for every stream, stay ``(N,)``).
        """
        v = np.asarray(values, dtype=np.float64)
        v = v.reshape(-1) if v.ndim <= 1 else v
        if self.channels is not None and (v.ndim < 2 or v.shape[0] != self.channels):
            raise ConfigError(f"this windower cuts {self.channels} channels; a push of shape {v.shape} does not match")
        flag_shape = v.shape if self.channels is None else v.shape[1:]  # channels share their flags
        if self.track_flags:
            f = np.zeros(flag_shape, dtype=bool) if flagged is None else np.asarray(flagged, dtype=bool).reshape(flag_shape[:-1] + (-1,))
            if f.shape != flag_shape:
                raise ConfigError(f"flagged has shape {f.shape} for samples of shape {flag_shape}")
        if self._values.shape[:-1] != v.shape[:-1]:
            if self._values.shape[-1] or self._next_start:
                raise ConfigError(f"this windower cuts {self._values.shape[:-1] or 'one'} stream(s); "
                                  f"a push of shape {v.shape} does not match")
            self._values = np.zeros(v.shape[:-1] + (0,))
            self._flags = np.zeros(flag_shape[:-1] + (0,), dtype=bool)
        self._values = np.concatenate([self._values, v], axis=-1)
        if self.track_flags:
            self._flags = np.concatenate([self._flags, f], axis=-1)
        end = self._buffer_start + self._values.shape[-1]  # one past the last sample held
        w, h = self.window_samples, self.hop_samples
        count = (end - w - self._next_start) // h + 1 if end - self._next_start >= w else 0
        starts = self._next_start + h * np.arange(count, dtype=np.int64)
        first = self._next_start - self._buffer_start  # local index of the first window's start
        # copies of strided views: what fancy indexing gives, without building its index array
        values = strided_rows(self._values, first, count, h, w).copy() if count else np.zeros(self._values.shape[:-1] + (0, w))
        if count and self.track_flags:
            flags = strided_rows(self._flags, first, count, h, w).copy()
        else:
            flags = np.zeros(values.shape if self.channels is None else values.shape[1:], dtype=bool)
        windows = RawWindows(starts, values, flags)
        self._next_start += h * count
        drop = min(self._next_start - self._buffer_start, self._values.shape[-1])
        if drop > 0:
            self._values = self._values[..., drop:]
            if self.track_flags:
                self._flags = self._flags[..., drop:]
            self._buffer_start += drop
        return windows


__all__ = ["RawWindows", "Windower", "Windows", "empty_windows"]
