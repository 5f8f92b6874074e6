"""Plausibility bounds: the one place that says how large a rate, a window, a gap or a file may be.

Every number a device, a file or a model contract *claims* passes through these bounds before
anything is sized from it. A claim outside them is a counted, reported fault (a decoder counter,
a :class:`~emotionkd.firmware_bridge.errors.DataError` or
:class:`~emotionkd.firmware_bridge.errors.ContractError`), never an allocation: so memory stays
bounded whatever a HELLO frame, a CSV header or an ONNX file says.

Each bound, and why it is where it is:

* :data:`MIN_RATE_HZ` … :data:`MAX_RATE_HZ` (0.5 Hz … 32 768 Hz): the range a Shimmer3 can be
  set to (its 32 768 Hz clock divided by 1 … 65 535), which contains every supported device
  (E4 4 Hz, BITalino 1 … 1000 Hz, EKD firmware 1 … 1000 Hz). Skin conductance changes over
  seconds; a rate outside this range is a corrupt or hostile claim.
* :data:`MAX_GAP_FILL_SAMPLES` (2^20 ≈ 1 M samples, 8 MB of NaN): the most samples one gap or
  discontinuity may fill. At :data:`MAX_RATE_HZ` the default 10 s fill is 327 680 samples.
  Fills are also paid for: each real sample earns 4 NaN samples of credit and each second of
  host time the nominal rate's worth (``SampleAxis.fill_credit`` in ``decoding``), so a device
  cannot make the host emit more than that, however many jumps its frames claim.
* :data:`MAX_SIGNAL_SAMPLES` (2^25 ≈ 33.5 M samples, ≈ 300 MB as float64 + flags): the longest
  signal a file may hold in memory (24 h at 128 Hz is 11 M). Split longer files.
* :data:`MAX_WINDOW_SAMPLES` (2^20) and :data:`MAX_WINDOW_S` / :data:`MAX_HOP_S` (1 h): a model
  window or hop longer than an hour cannot be an emotion window.
* :data:`PLAUSIBLE_CONDUCTANCE_LIMIT_US` (10^4 µS = 100 Ω): no GSR front end measures more;
  larger or negative-infinite values in a file are invalid samples (NaN + GAP, counted), not data.
  (The narrower *physiological* range, 0.01 … 100 µS, is a quality verdict, see
  :data:`~emotionkd.firmware_bridge.units.PLAUSIBLE_CONDUCTANCE_US`.)
* :data:`MAX_FLAGS` (255): sample flags are one byte.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

MIN_RATE_HZ: Final = 0.5
MAX_RATE_HZ: Final = 32768.0
MAX_GAP_FILL_SAMPLES: Final = 1 << 20
MAX_SIGNAL_SAMPLES: Final = 1 << 25
MAX_WINDOW_SAMPLES: Final = 1 << 20
MAX_WINDOW_S: Final = 3600.0
MAX_HOP_S: Final = 3600.0
PLAUSIBLE_CONDUCTANCE_LIMIT_US: Final = 1e4
MAX_FLAGS: Final = 255


def rate_problem(rate_hz: float) -> str | None:
    """Why ``rate_hz`` is not a plausible sampling rate, or None when it is."""
    try:
        rate = float(rate_hz)
    except (TypeError, ValueError):
        return f"rate {rate_hz!r} is not a number"
    if not math.isfinite(rate):
        return f"rate {rate_hz!r} Hz is not finite"
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        return f"rate {rate:g} Hz is outside {MIN_RATE_HZ:g} … {MAX_RATE_HZ:g} Hz"
    return None


def is_plausible_rate(rate_hz: float) -> bool:
    """True when ``rate_hz`` lies within :data:`MIN_RATE_HZ` … :data:`MAX_RATE_HZ`."""
    return rate_problem(rate_hz) is None


def implausible_values(conductance_us: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Mask of samples no GSR front end can produce: ±inf, or ``|x| >`` the limit (NaN is not
    flagged: it already means "missing")."""
    with np.errstate(invalid="ignore"):
        return np.isinf(conductance_us) | (np.abs(conductance_us) > PLAUSIBLE_CONDUCTANCE_LIMIT_US)


__all__ = [
    "MAX_FLAGS",
    "MAX_GAP_FILL_SAMPLES",
    "MAX_HOP_S",
    "MAX_RATE_HZ",
    "MAX_SIGNAL_SAMPLES",
    "MAX_WINDOW_S",
    "MAX_WINDOW_SAMPLES",
    "MIN_RATE_HZ",
    "PLAUSIBLE_CONDUCTANCE_LIMIT_US",
    "implausible_values",
    "is_plausible_rate",
    "rate_problem",
]
