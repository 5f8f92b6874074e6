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

The per-sample :class:`SampleFlag` bits a source carries reach the windows one way: the
preprocessor keeps them with the samples and counts them per window (``Windows.source_samples``,
``electrode_off``, ``saturated``; see :class:`~emotionkd.sdk.preprocessing.Windows`), and
:func:`gate_windows` judges every window of a batch from those counts.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.units import PLAUSIBLE_CONDUCTANCE_US
from emotionkd.sdk.preprocessing import Windows

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
        source_samples: source samples that belong to the window.
        electrode_off, saturated: how many of them carry that flag.
    """

    source_samples: int = 0
    electrode_off: int = 0
    saturated: int = 0


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


def window_statistics_us(conductance_us: npt.NDArray[np.float64]) -> tuple[
        npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(median, lowest, highest) conductance of each window over its last axis (µS), NaN samples
    ignored (NaN for a window without a valid sample): ``(..., W)`` → three ``(...)``.

    Without NaN (every usable window) one sort per window gives all three, the median being the
    two middle values np.median takes (the same numbers, fewer numpy calls on a live push).
    """
    x = np.asarray(conductance_us, dtype=np.float64)
    if not np.isnan(x).any():
        ordered = np.sort(x, axis=-1)
        width = x.shape[-1]
        middle = width // 2
        median = ordered[..., middle] if width % 2 else (ordered[..., middle - 1] + ordered[..., middle]) / 2.0
        return median, ordered[..., 0], ordered[..., -1]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows are NaN, as documented
        median = np.nanmedian(x, axis=-1)
        # nanmin/nanmax without their warnings
        return median, np.fmin.reduce(x, axis=-1), np.fmax.reduce(x, axis=-1)


def window_levels_us(conductance_us: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Median conductance of each window (µS) over its last axis, NaN samples ignored (NaN for
    a window without a valid sample): ``(..., W)`` → ``(...)``."""
    return window_statistics_us(conductance_us)[0]


def windows_pass(
    conductance_us: npt.NDArray[np.float64],
    usable: npt.NDArray[np.bool_],
    electrode_off: npt.NDArray[np.integer],
    saturated: npt.NDArray[np.integer],
    source_samples: npt.ArrayLike,
    config: QualityConfig | None = None,
    statistics_us: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None,
) -> npt.NDArray[np.bool_]:
    """Which windows :func:`judge_window` passes, for many windows at once (no reasons).

    Args:
        conductance_us: ``(..., W)`` smoothed conductance (µS, NaN where missing).
        usable, electrode_off, saturated: ``(...)`` per window, as for :func:`judge_window`.
        source_samples: source samples per window span, broadcast to ``(...)``.
        statistics_us: the windows' :func:`window_statistics_us` (median, lowest, highest)
            when already computed.

    Returns:
        ``(...)`` bool, True exactly where ``judge_window(...).ok`` is (each check in the same
        form); ask :func:`judge_window` for the reason of a window that fails.
    """
    cfg = config or QualityConfig()
    total = np.maximum(np.asarray(source_samples), 1)
    low, high = cfg.plausible_conductance_us
    level, lowest, highest = window_statistics_us(conductance_us) if statistics_us is None else statistics_us
    with np.errstate(invalid="ignore"):
        return (
            ~(electrode_off > cfg.max_electrode_off_fraction * total)
            & ~(saturated > cfg.max_saturated_fraction * total)
            & usable
            & (low <= level) & (level <= high)
            & ~(lowest < low) & ~(highest > high)
            & ~(highest - lowest < cfg.flat_peak_to_peak_us)
        )


@dataclass(frozen=True)
class GatedWindows:
    """A batch of windows through the quality gate, waiting for the model (or done without it).

    Attributes:
        windows: the :class:`Windows` (one stream ``(N, ...)``, or S streams in lockstep
            ``(S, N, ...)``).
        levels_us: ``(N,)`` / ``(S, N)`` median conductance per window (µS; NaN if none).
        good: ``(N,)`` / ``(S, N)`` bool, the windows that passed.
        failed: the verdict of each window that did not pass, keyed by its index in ``good``
            (``(i,)`` or ``(s, i)``).
        origin_s: stream time of the windows' sample 0 (a segment's start; s).
    """

    windows: Windows
    levels_us: npt.NDArray[np.float64]
    good: npt.NDArray[np.bool_]
    failed: dict[tuple[int, ...], QualityVerdict]
    origin_s: float = 0.0
    #: how many windows passed (rows of :meth:`good_features`)
    passed: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "passed", int(np.count_nonzero(self.good)))

    def __len__(self) -> int:
        return len(self.windows)

    def good_features(self) -> npt.NDArray[np.float32]:
        """``(n_good, W)`` model inputs of the windows that passed (stream by stream, in time order)."""
        features = self.windows.features
        if features.ndim == 2 and self.passed == len(features):
            return features  # one stream, all passed (a live push): no boolean-index copy
        return features[self.good]


def gate_windows(windows: Windows, config: QualityConfig | None = None, origin_s: float = 0.0) -> GatedWindows:
    """Judge every window of a batch (vectorised; the reason in words only where one fails).

    Args:
        windows: from :class:`~emotionkd.sdk.preprocessing.GsrPreprocessor` (one stream or S in
            lockstep), their flag counts included.
        config: thresholds.
        origin_s: carried to :attr:`GatedWindows.origin_s`.
    """
    cfg = config or QualityConfig()
    statistics = window_statistics_us(windows.conductance_us)
    good = windows_pass(windows.conductance_us, windows.usable, windows.electrode_off, windows.saturated,
                        windows.source_samples, cfg, statistics)
    failed: dict[tuple[int, ...], QualityVerdict] = {}
    if not good.all():
        for index in zip(*np.nonzero(~good), strict=True):
            key = tuple(int(j) for j in index)
            counts = WindowFlags(int(windows.source_samples[key[-1]]), int(windows.electrode_off[key]),
                                 int(windows.saturated[key]))
            failed[key] = judge_window(windows.conductance_us[key], bool(windows.usable[key]),
                                       int(windows.samples_missing[key]), counts, cfg)
    return GatedWindows(windows, statistics[0], good, failed, origin_s)


__all__ = [
    "ELECTRODE_OFF",
    "FLAT_LINE",
    "GAP",
    "IMPLAUSIBLE_UNIT",
    "OK",
    "QUALITY_REASONS",
    "SATURATION",
    "GatedWindows",
    "QualityConfig",
    "QualityVerdict",
    "WindowFlags",
    "gate_windows",
    "judge_window",
    "window_levels_us",
    "window_statistics_us",
    "windows_pass",
]
