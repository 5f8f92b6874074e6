"""A URL that leaves a parameter out gets the spec's own default (written once, on the spec), the
device schemes' defaults are the device registry's, and every scheme reads its numbers through
one helper (SourceUrl), so a bad one is refused in the same words whatever the scheme."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emotionkd.firmware_bridge.devices import DEFAULT_PROTOCOL, device
from emotionkd.firmware_bridge.emulators import EmulatorConfig
from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.source_spec import DEFAULT_NO_DATA_TIMEOUT_S, BleSpec, SerialSpec
from emotionkd.sdk.cli_common import _source_url
from emotionkd.sdk.sources import parse_source
from emotionkd.sdk.sources.lsl import LslSpec
from emotionkd.sdk.sources.replay import ReplaySpec
from emotionkd.sdk.sources.sim import SimSpec


def test_the_parsers_leave_what_the_url_omits_to_the_specs_defaults() -> None:
    assert parse_source("sim://") == SimSpec("sim://")
    assert parse_source("replay://rec.csv") == ReplaySpec("replay://rec.csv", Path("rec.csv"))
    assert parse_source("lsl://Shimmer") == LslSpec("lsl://Shimmer", "Shimmer")


def test_device_specs_default_to_the_registrys_default_device() -> None:
    known = device(DEFAULT_PROTOCOL)
    serial, ble = SerialSpec("serial:///dev/x", "/dev/x"), BleSpec("ble://x", "x")
    assert (serial.protocol, serial.baud, serial.rate_hz) == (DEFAULT_PROTOCOL, known.default_baud, known.default_rate_hz)
    assert (ble.protocol, ble.rate_hz) == (DEFAULT_PROTOCOL, known.default_rate_hz)
    parsed = parse_source("serial:///dev/x")
    assert isinstance(parsed, SerialSpec) and (parsed.baud, parsed.rate_hz) == (serial.baud, serial.rate_hz)


def test_the_cli_leaves_ble_auto_and_the_simulators_rate_to_the_parsers() -> None:
    for options in ({"ble": "AA:BB:CC:DD:EE:FF", "ble_name": None}, {"ble": None, "ble_name": "EKD-GSR-01"}):
        url = _source_url(None, None, "auto", options["ble"], options["ble_name"], None, False, None, 1.0)
        spec = parse_source(url)
        assert isinstance(spec, BleSpec) and spec.protocol == DEFAULT_PROTOCOL
    sim = parse_source(_source_url(None, None, "auto", None, None, None, True, None, 0.0))
    assert isinstance(sim, SimSpec) and sim.rate_hz == SimSpec("sim://").rate_hz and sim.speed == 0.0


@pytest.mark.parametrize("url", [
    "serial:///dev/x?rate=abc", "ble://AA:BB:CC:DD:EE:FF?timeout=abc", "sim://?rate=abc", "replay://a.csv?block=abc",
    "lsl://X?timeout=abc",
])
def test_every_scheme_refuses_a_malformed_number_in_the_same_words(url: str) -> None:
    key = url.split("?")[1].split("=")[0]
    with pytest.raises(ConfigError, match=rf"^{re.escape(url)}: parameter {key}='abc' must be a number$"):
        parse_source(url)


@pytest.mark.parametrize("url", [
    "serial:///dev/x?baud=0", "serial:///dev/x?rate=inf", "ble://x?scan_timeout=-1", "sim://?rate=-3",
    "sim://?block=0", "replay://a.csv?block=-1", "lsl://X?rate=-2", "lsl://X?timeout=0", "lsl://X?max_gap=-5",
])
def test_every_scheme_refuses_a_quantity_that_must_be_positive_in_the_same_words(url: str) -> None:
    key = url.split("?")[1].split("=")[0]
    with pytest.raises(ConfigError, match=rf"^{re.escape(url)}: parameter {key} must be a positive number, got "):
        parse_source(url)


@pytest.mark.parametrize("url", ["serial:///dev/x?rate=1e9", "ble://x?rate=0.0001", "sim://?rate=1e6",
                                 "replay://a.csv?rate=100000", "lsl://X?rate=40000"])
def test_every_scheme_refuses_an_implausible_rate_by_the_one_rate_rule(url: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{re.escape(url)}: parameter rate: rate .* Hz is outside "):
        parse_source(url)


def test_an_emulator_refuses_an_implausible_rate_by_the_same_rule() -> None:
    with pytest.raises(ConfigError, match=r"^emulator rate 1e\+06 Hz is outside "):
        EmulatorConfig(rate_hz=1e6)


def test_the_cli_leaves_an_omitted_timeout_to_the_parser() -> None:
    omitted = parse_source(_source_url("/dev/ttyUSB0", None, "ekd", None, None, None, False, None, 1.0))
    given = parse_source(_source_url(None, None, "auto", None, "EKD-GSR-01", None, False, None, 1.0, timeout_s=3.0))
    assert isinstance(omitted, SerialSpec) and omitted.timeout_s == DEFAULT_NO_DATA_TIMEOUT_S
    assert isinstance(given, BleSpec) and given.timeout_s == 3.0
