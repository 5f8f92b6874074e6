"""emotionkd.sdk.plain.to_plain: the one converter to JSON's types (contracts, configs, checkpoints)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emotionkd.firmware_bridge.errors import ConfigError, ContractError, EmotionKDError
from emotionkd.sdk.plain import to_plain


def test_numbers_arrays_and_keys_become_json_types() -> None:
    value = {"auc": np.float32(0.75), 3: (np.int64(2), [np.array([[1.5, 2.0]])]), "ok": np.bool_(True), "none": None}
    plain = to_plain(value)
    assert plain == {"auc": 0.75, "3": [2, [[[1.5, 2.0]]]], "ok": True, "none": None}
    assert type(plain["auc"]) is float and type(plain["3"][0]) is int and type(plain["ok"]) is bool
    assert json.loads(json.dumps(plain)) == plain


def test_the_copy_is_deep() -> None:
    inner = {"a": [1, 2]}
    plain = to_plain({"inner": inner})
    plain["inner"]["a"].append(3)
    assert inner == {"a": [1, 2]}


def test_other_types_raise_the_callers_error_naming_the_values() -> None:
    with pytest.raises(ConfigError, match=r"configuration values must be plain JSON types, got PosixPath"):
        to_plain({"path": Path("/tmp")}, what="configuration values", error=ConfigError)
    with pytest.raises(EmotionKDError, match="values must be plain JSON types, got set"):
        to_plain([{1, 2}])


def test_finite_refuses_nan_and_infinity_even_inside_arrays() -> None:
    assert to_plain([float("nan")])[0] != to_plain([float("nan")])[0]  # allowed unless finite
    for bad in (float("inf"), np.array([1.0, np.nan])):
        with pytest.raises(ContractError, match="contract values must be finite"):
            to_plain({"x": bad}, what="contract values", error=ContractError, finite=True)
