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

    Push the flags of every source sample in order (:meth:`push`), then ask :meth:`count` for a
    window's span; windows must be asked for in increasing start time (as a stream emits them).
    """

    def __init__(self, sample_rate_hz: float) -> None:
        self.sample_rate_hz = float(sample_rate_hz)
        self._flags = np.zeros(0, dtype=np.uint8)
        self._start = 0  # source index of _flags[0]

    def push(self, flags: npt.ArrayLike) -> None:
        """Append the flags (shape ``(n,)``, :class:`SampleFlag` bits) of the next samples."""
        self._flags = np.concatenate([self._flags, np.asarray(flags, dtype=np.uint8).reshape(-1)])

    def count(self, start_s: float, end_s: float) -> WindowFlags:
        """Count the flags of the source samples whose time lies in ``[start_s, end_s)``, and
        forget the samples before ``start_s`` (no later window can need them)."""
        rate = self.sample_rate_hz
        first = math.ceil(start_s * rate - 1e-9)
        stop = math.ceil(end_s * rate - 1e-9)
        lo = max(first - self._start, 0)
        hi = max(min(stop - self._start, self._flags.size), lo)
        span = self._flags[lo:hi]
        counts = WindowFlags(
            source_samples=int(span.size),
            electrode_off=int(np.count_nonzero(span & SampleFlag.ELECTRODE_OFF)),
            saturated=int(np.count_nonzero(span & SampleFlag.SATURATED)),
            gap=int(np.count_nonzero(span & SampleFlag.GAP)),
        )
        if lo > 0:
            self._flags = self._flags[lo:]
            self._start += lo
        return counts


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
    "WindowFlags",
    "judge_window",
]
