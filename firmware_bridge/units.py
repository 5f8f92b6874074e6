"""Conversion of skin conductance / resistance readings to microsiemens (µS).

Resistance is *inverted*, not rescaled: G[µS] = 1e6 / R[Ω]. A non-positive resistance, a
non-positive conductance in a resistance-derived unit and any non-finite value become NaN
(a missing sample), never an exception: a stream must survive one bad sample.

Accepted unit names (case-insensitive; ``u`` may stand for ``µ``):

====================  ==========================
unit                  meaning
====================  ==========================
``uS`` ``µS``         microsiemens (the model unit)
``nS``                nanosiemens
``mS``                millisiemens
``S``                 siemens
``Ohm`` ``Ω``         ohm (resistance)
``kOhm`` ``kΩ``       kilo-ohm
``MOhm`` ``MΩ``       mega-ohm
====================  ==========================
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import UnitError

#: conductance units: factor that turns a value into µS
_CONDUCTANCE_TO_US: Final[dict[str, float]] = {"us": 1.0, "ns": 1e-3, "ms": 1e3, "s": 1e6}
#: resistance units: factor that turns a value into Ω
_RESISTANCE_TO_OHM: Final[dict[str, float]] = {"ohm": 1.0, "kohm": 1e3, "mohm": 1e6}

#: The plausible range of human skin conductance in µS. Values outside are not impossible for a
#: sensor to report (open circuit, shorted electrodes) but signal a wrong unit or a bad contact.
PLAUSIBLE_CONDUCTANCE_US: Final[tuple[float, float]] = (0.01, 100.0)

_ALIASES: Final[dict[str, str]] = {
    "µs": "us",
    "μs": "us",  # Greek mu and micro sign both occur
    "microsiemens": "us",
    "nanosiemens": "ns",
    "millisiemens": "ms",
    "siemens": "s",
    "ω": "ohm",
    "ohms": "ohm",
    "kω": "kohm",
    "kohms": "kohm",
    "mω": "mohm",
    "mohms": "mohm",
    "megaohm": "mohm",
}

KNOWN_UNITS: Final[tuple[str, ...]] = ("uS", "nS", "mS", "S", "Ohm", "kOhm", "MOhm")


def normalise_unit(unit: str) -> str:
    """Return the canonical spelling (one of :data:`KNOWN_UNITS`) of a unit name.

    Note the one case-sensitive pair: ``MOhm``/``MΩ`` (mega) versus ``mS`` (milli); ``mOhm``
    is refused because no skin sensor reports milliohms.

    Raises:
        UnitError: the unit is not one of the accepted names.
    """
    raw = unit.strip()
    if raw in ("MOhm", "MΩ", "Mohm", "MOHM"):
        return "MOhm"
    if raw in ("mOhm", "mΩ"):
        raise UnitError(f"unit {unit!r} (milliohm) is not a skin resistance unit; did you mean 'MOhm'?")
    key = _ALIASES.get(raw.lower(), raw.lower())
    if key == "mohm":
        return "MOhm"
    canonical = {"us": "uS", "ns": "nS", "ms": "mS", "s": "S", "ohm": "Ohm", "kohm": "kOhm"}
    if key not in canonical:
        raise UnitError(
            f"unknown GSR unit {unit!r}; use one of {', '.join(KNOWN_UNITS)} "
            "(conductance is converted, resistance is inverted)"
        )
    return canonical[key]


def is_resistance_unit(unit: str) -> bool:
    """True when ``unit`` measures resistance (Ω, kΩ, MΩ) rather than conductance."""
    return normalise_unit(unit) in ("Ohm", "kOhm", "MOhm")


def to_conductance_us(values: npt.ArrayLike, unit: str) -> npt.NDArray[np.float64]:
    """Convert readings to skin conductance in µS.

    Args:
        values: readings of any shape, in ``unit``.
        unit: one of :data:`KNOWN_UNITS` (or an alias).

    Returns:
        float64 array of the same shape in µS; non-finite readings and non-positive resistances
        are NaN (missing). Negative conductances are kept (a sensor offset can make a reading
        slightly negative; the quality gate judges plausibility, not this function).
    """
    canonical = normalise_unit(unit)
    x = np.asarray(values, dtype=np.float64)
    if canonical in ("uS", "nS", "mS", "S"):
        out = x * _CONDUCTANCE_TO_US[canonical.lower()]
        out[~np.isfinite(out)] = np.nan
        return out
    ohm = x * _RESISTANCE_TO_OHM[canonical.lower()]
    out = np.full(x.shape, np.nan)
    valid = np.isfinite(ohm) & (ohm > 0.0)
    np.divide(1e6, ohm, out=out, where=valid)
    return out


__all__ = [
    "KNOWN_UNITS",
    "PLAUSIBLE_CONDUCTANCE_US",
    "is_resistance_unit",
    "normalise_unit",
    "to_conductance_us",
]
