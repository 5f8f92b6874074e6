"""The quality gate: may a window be trusted to a model, and if not, why not.

A prediction from a window the sensor did not really measure is worse than no prediction: an
app would show a confident emotion for an electrode that fell off. So every window passes a
gate, and a window that fails is *reported* (with the reason) instead of being predicted.

Reasons, checked in this order (the first that applies is reported):

==================  ===================================================================
``electrode_off``   the device flagged open circuit / no skin contact in the window (or,
                    for devices without such a flag, the conductance falls below skin's range)
``saturation``      the device flagged its ADC at a rail in the window (or the conductance
                    rises beyond skin's range)
``gap``             samples are missing (lost frames, a t0 gap, an invalid reading) beyond
                    what the preprocessing may bridge (``Windows.usable`` is False)
``implausible_unit`` the window's median conductance is outside what human skin can show
                    (:data:`PLAUSIBLE_CONDUCTANCE_US`): a wrong ``unit`` or a shorted sensor
``flat_line``       the conductance does not move at all (a stuck or disconnected sensor
                    reporting a constant; real skin always shows noise and drift)
==================  ===================================================================

The per-sample :class:`SampleFlag` bits a source carries are mapped onto the model-rate windows
by time (:class:`FlagTracker`): a source sample belongs to a window when its time lies in the
window's span ``[start_s, end_s)``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.samples import SampleFlag
from emotionkd.firmware_bridge.units import PLAUSIBLE_CONDUCTANCE_US

OK: Final = "ok"
GAP: Final = "gap"
ELECTRODE_OFF: Final = "electrode_off"
SATURATION: Final = "saturation"
FLAT_LINE: Final = "flat_line"
IMPLAUSIBLE_UNIT: Final = "implausible_unit"
#: every quality value a :class:`Prediction` can carry, ``ok`` first
QUALITY_REASONS: Final = (OK, ELECTRODE_OFF, SATURATION, GAP, IMPLAUSIBLE_UNIT, FLAT_LINE)


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the quality gate.

    Attributes:
        max_electrode_off_fraction: most source samples flagged electrode-off a window may hold
            (0 = a single one fails the window; contact that comes and goes is not contact).
        max_saturated_fraction: most source samples flagged saturated a window may hold.
        flat_peak_to_peak_us: a window whose smoothed conductance spans less than this (µS) is a
            flat line. Sensor noise alone (≈ 0.004 µS on a 12-bit GSR front end) spans more.
        plausible_conductance_us: (low, high) median conductance of human skin (µS).
    """

    max_electrode_off_fraction: float = 0.0
    max_saturated_fraction: float = 0.0
    flat_peak_to_peak_us: float = 1e-3
    plausible_conductance_us: tuple[float, float] = PLAUSIBLE_CONDUCTANCE_US

    def __post_init__(self) -> None:
        for name in ("max_electrode_off_fraction", "max_saturated_fraction"):
            value = getattr(self, name)
            if not (0.0 <= value <= 1.0):
                raise ConfigError(f"quality {name} must be in [0, 1], got {value!r}")
        if not (self.flat_peak_to_peak_us >= 0 and math.isfinite(self.flat_peak_to_peak_us)):
            raise ConfigError(f"flat_peak_to_peak_us must be >= 0, got {self.flat_peak_to_peak_us!r}")
        low, high = self.plausible_conductance_us
        if not (0 <= low < high):
            raise ConfigError(f"plausible_conductance_us must be (low, high) with low < high, got {(low, high)}")


@dataclass(frozen=True)
class WindowFlags:
    """Source flags counted over one window's span.

    Attributes:
        source_samples: source samples whose time lies in the window.
        electrode_off, saturated, gap: how many of them carry that flag.
    """

    source_samples: int = 0
    electrode_off: int = 0
    saturated: int = 0
    gap: int = 0


@dataclass(frozen=True)
class QualityVerdict:
    """The gate's answer for one window: ``reason`` is ``ok`` or why not; ``detail`` is for people."""

    reason: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.reason == OK


def judge_window(
    conductance_us: npt.NDArray[np.float64],
    usable: bool,
    samples_missing: int,
    flags: WindowFlags,
    config: QualityConfig | None = None,
) -> QualityVerdict:
    """Judge one window.

    Args:
        conductance_us: (W,) the window's smoothed conductance at the model rate (µS, NaN where
            missing).
        usable: the preprocessing's verdict on missing samples (``Windows.usable``).
        samples_missing: model-rate samples missing or bridged in the window.
        flags: the source flags counted over the window's span.
        config: thresholds.
    """
    cfg = config or QualityConfig()
    total = max(flags.source_samples, 1)
    # The device's own flags first: they say *why* samples are missing (decoders blank
    # electrode-off readings), which is what a person needs to fix it.
    if flags.electrode_off > cfg.max_electrode_off_fraction * total:
        return QualityVerdict(ELECTRODE_OFF, f"electrode off in {flags.electrode_off} of {flags.source_samples} samples")
    if flags.saturated > cfg.max_saturated_fraction * total:
        return QualityVerdict(SATURATION, f"sensor saturated in {flags.saturated} of {flags.source_samples} samples")
    if not usable:
        return QualityVerdict(GAP, f"{samples_missing} of {conductance_us.size} samples missing")
    level_us = float(np.nanmedian(conductance_us))
    low, high = cfg.plausible_conductance_us
    if not (low <= level_us <= high):
        return QualityVerdict(
            IMPLAUSIBLE_UNIT,
            f"median {level_us:.4g} µS is outside human skin's {low:g}–{high:g} µS: check the unit "
            "(µS vs nS vs kΩ) or the electrodes",
        )
    # A device without contact flags (BITalino, a bare ADC) shows lost contact as conductance
    # falling to ~0, and a shorted or railed sensor as conductance beyond skin: judge the samples.
    lowest_us, highest_us = float(np.nanmin(conductance_us)), float(np.nanmax(conductance_us))
    if lowest_us < low:
        return QualityVerdict(ELECTRODE_OFF, f"conductance falls to {lowest_us:.3g} µS: the electrodes lost skin contact")
    if highest_us > high:
        return QualityVerdict(SATURATION, f"conductance reaches {highest_us:.4g} µS, beyond skin: sensor saturated or shorted")
    span_us = highest_us - lowest_us
    if span_us < cfg.flat_peak_to_peak_us:
        return QualityVerdict(FLAT_LINE, f"conductance does not move (span {span_us:.2g} µS): sensor stuck or disconnected")
    return QualityVerdict(OK, "")


class FlagTracker:
    """Keeps the source's per-sample flags until every window that spans them has been judged.

    Args:
        sample_rate_hz: the source rate.
        streams: track this many streams in lockstep (pushes of shape ``(S, n)``; see
            :meth:`count_streams`); None for one stream.

    Push the flags of every source sample in order (:meth:`push`), then ask :meth:`count` for a
    window's span; windows must be asked for in increasing start time (as a stream emits them).
    """

    def __init__(self, sample_rate_hz: float, streams: int | None = None) -> None:
        self.sample_rate_hz = float(sample_rate_hz)
        self._flags = np.zeros((0,) if streams is None else (streams, 0), dtype=np.uint8)
        self._start = 0  # source index of _flags[..., 0]

    def push(self, flags: npt.ArrayLike) -> None:
        """Append the flags (shape ``(n,)``, or ``(S, n)`` in lockstep; :class:`SampleFlag`
        bits) of the next samples."""
        new = np.asarray(flags, dtype=np.uint8).reshape(self._flags.shape[:-1] + (-1,))
        self._flags = np.concatenate([self._flags, new], axis=-1)

    def _span(self, start_s: float, end_s: float) -> npt.NDArray[np.uint8]:
        """The flags of the source samples whose time lies in ``[start_s, end_s)``; forgets the
        samples before ``start_s`` (no later window can need them)."""
        rate = self.sample_rate_hz
        first = math.ceil(start_s * rate - 1e-9)
        stop = math.ceil(end_s * rate - 1e-9)
        lo = max(first - self._start, 0)
        hi = max(min(stop - self._start, self._flags.shape[-1]), lo)
        span = self._flags[..., lo:hi]
        if lo > 0:
            self._flags = self._flags[..., lo:]
            self._start += lo
        return span

    def count(self, start_s: float, end_s: float) -> WindowFlags:
        """Count the flags of the source samples whose time lies in ``[start_s, end_s)``, and
        forget the samples before ``start_s`` (no later window can need them)."""
        span = self._span(start_s, end_s)
        return WindowFlags(
            source_samples=int(span.size),
            electrode_off=int(np.count_nonzero(span & SampleFlag.ELECTRODE_OFF)),
            saturated=int(np.count_nonzero(span & SampleFlag.SATURATED)),
            gap=int(np.count_nonzero(span & SampleFlag.GAP)),
        )

    def count_streams(self, start_s: float, end_s: float) -> StreamFlags:
        """:meth:`count` for every stream in lockstep: the counts as ``(S,)`` arrays."""
        span = self._span(start_s, end_s)
        return StreamFlags(
            source_samples=int(span.shape[-1]),
            electrode_off=np.count_nonzero(span & SampleFlag.ELECTRODE_OFF, axis=-1),
            saturated=np.count_nonzero(span & SampleFlag.SATURATED, axis=-1),
            gap=np.count_nonzero(span & SampleFlag.GAP, axis=-1),
        )


@dataclass(frozen=True)
class StreamFlags:
    """:class:`WindowFlags` of one window span for S streams in lockstep (counts ``(S,)``)."""

    source_samples: int
    electrode_off: npt.NDArray[np.intp]
    saturated: npt.NDArray[np.intp]
    gap: npt.NDArray[np.intp]

    def of(self, stream: int) -> WindowFlags:
        """The counts of one stream."""
        return WindowFlags(self.source_samples, int(self.electrode_off[stream]), int(self.saturated[stream]),
                           int(self.gap[stream]))


def window_levels_us(conductance_us: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Median conductance of each window (µS) over its last axis, NaN samples ignored (NaN for
    a window without a valid sample): ``(..., W)`` → ``(...)``."""
    x = np.asarray(conductance_us, dtype=np.float64)
    nan = np.isnan(x)
    if not nan.any():
        return np.median(x, axis=-1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows are NaN, as documented
        return np.nanmedian(x, axis=-1)


def windows_pass(
    conductance_us: npt.NDArray[np.float64],
    usable: npt.NDArray[np.bool_],
    electrode_off: npt.NDArray[np.integer],
    saturated: npt.NDArray[np.integer],
    source_samples: npt.ArrayLike,
    config: QualityConfig | None = None,
    levels_us: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.bool_]:
    """Which windows :func:`judge_window` passes, for many windows at once (no reasons).

    Args:
        conductance_us: ``(..., W)`` smoothed conductance (µS, NaN where missing).
        usable, electrode_off, saturated: ``(...)`` per window, as for :func:`judge_window`.
        source_samples: source samples per window span, broadcast to ``(...)``.
        levels_us: the windows' :func:`window_levels_us` when already computed.

    Returns:
        ``(...)`` bool, True exactly where ``judge_window(...).ok`` is (each check in the same
        form); ask :func:`judge_window` for the reason of a window that fails.
    """
    cfg = config or QualityConfig()
    total = np.maximum(np.asarray(source_samples), 1)
    low, high = cfg.plausible_conductance_us
    level = window_levels_us(conductance_us) if levels_us is None else levels_us
    with np.errstate(invalid="ignore"):
        lowest = np.fmin.reduce(conductance_us, axis=-1)  # nanmin/nanmax without their warnings
        highest = np.fmax.reduce(conductance_us, axis=-1)
        return (
            ~(electrode_off > cfg.max_electrode_off_fraction * total)
            & ~(saturated > cfg.max_saturated_fraction * total)
            & usable
            & (low <= level) & (level <= high)
            & ~(lowest < low) & ~(highest > high)
            & ~(highest - lowest < cfg.flat_peak_to_peak_us)
        )


__all__ = [
    "ELECTRODE_OFF",
    "FLAT_LINE",
    "GAP",
    "IMPLAUSIBLE_UNIT",
    "OK",
    "QUALITY_REASONS",
    "SATURATION",
    "FlagTracker",
    "QualityConfig",
    "QualityVerdict",
    "StreamFlags",
    "WindowFlags",
    "judge_window",
    "window_levels_us",
    "windows_pass",
]
