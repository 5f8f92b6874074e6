"""A short run of tests/benchmarks/fuzz_decoders.py (the full run feeds 10^6 inputs); the
benchmark fuzzes the device registry's decoders, not a list of its own."""

from __future__ import annotations

import dataclasses
import importlib.util
import random
from pathlib import Path
from types import ModuleType

import pytest

from emotionkd.firmware_bridge.devices import DEVICES

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_decoders.py"


@pytest.fixture(scope="module")
def fuzz() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_decoders", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_short_fuzz_raises_only_documented_errors(fuzz: ModuleType) -> None:
    stats = fuzz.run_fuzz(4000, seed=11)
    assert stats["inputs"] == 4000 and stats["samples"] > 0


def test_the_fuzzed_decoders_are_the_registrys(fuzz: ModuleType) -> None:
    factories = fuzz.make_decoders()
    assert set(DEVICES) <= set(factories) and "ekd_ble" in factories  # EKD streams framed over GATT
    for protocol, device in DEVICES.items():
        decoder = factories[protocol]()
        assert decoder.protocol == protocol and decoder.rate_hz == device.default_rate_hz
    assert not fuzz.unseeded(fuzz.corpus(random.Random(0)), factories)


def test_a_device_added_to_the_registry_is_fuzzed_or_the_run_says_what_is_missing(
        fuzz: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DEVICES, "newdev", dataclasses.replace(DEVICES["shimmer3"], protocol="newdev"))
    assert "newdev" in fuzz.make_decoders()
    with pytest.raises(ValueError, match="no valid stream of newdev"):
        fuzz.run_fuzz(10, seed=1)
