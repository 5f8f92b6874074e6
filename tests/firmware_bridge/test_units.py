import math

import numpy as np
import pytest

from emotionkd.firmware_bridge.errors import UnitError
from emotionkd.firmware_bridge.units import is_resistance_unit, normalise_unit, to_conductance_us

# value, unit, expected µS: computed by hand
HAND_TABLE = [
    (5.0, "uS", 5.0),
    (5.0, "µS", 5.0),
    (2500.0, "nS", 2.5),
    (0.004, "mS", 4.0),
    (2e-6, "S", 2.0),
    (200_000.0, "Ohm", 5.0),  # 1e6 / 2e5
    (1_000_000.0, "Ω", 1.0),
    (250.0, "kOhm", 4.0),  # 1e6 / 2.5e5
    (0.5, "MOhm", 2.0),  # 1e6 / 5e5
    (0.1, "MΩ", 10.0),
]


@pytest.mark.parametrize(("value", "unit", "expected"), HAND_TABLE)
def test_conversion_matches_hand_table(value: float, unit: str, expected: float) -> None:
    assert to_conductance_us([value], unit)[0] == pytest.approx(expected, rel=1e-12)


def test_resistance_is_inverted_not_rescaled() -> None:
    ohm = np.array([100e3, 200e3, 400e3])
    us = to_conductance_us(ohm, "Ohm")
    # doubling resistance halves conductance
    assert us[0] / us[1] == pytest.approx(2.0)
    assert us[1] / us[2] == pytest.approx(2.0)


def test_invalid_samples_become_nan_not_errors() -> None:
    out = to_conductance_us([0.0, -5.0, math.nan, math.inf, 1e6], "Ohm")
    assert np.isnan(out[:4]).all()
    assert out[4] == pytest.approx(1.0)
    out = to_conductance_us([math.nan, math.inf, 3.0], "uS")
    assert np.isnan(out[:2]).all() and out[2] == 3.0


def test_unknown_unit_is_a_clear_error() -> None:
    with pytest.raises(UnitError, match="unknown GSR unit 'volts'"):
        to_conductance_us([1.0], "volts")
    with pytest.raises(UnitError, match="MOhm"):
        normalise_unit("mOhm")


def test_unit_names() -> None:
    assert normalise_unit("kohm") == "kOhm"
    assert normalise_unit("MOhm") == "MOhm"
    assert normalise_unit("ms") == "mS"
    assert is_resistance_unit("kΩ") and not is_resistance_unit("nS")
