"""The device registry and the open registry of URL schemes: every table reads one descriptor;
a new scheme is one registration."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from emotionkd.firmware_bridge.decoding import Decoder
from emotionkd.firmware_bridge.devices import (
    AUTO_ORDER,
    DEFAULT_BAUD,
    DEFAULT_RATE_HZ,
    DEVICES,
    EKD_GATT,
    NORDIC_UART,
    PROTOCOLS,
    device,
)
from emotionkd.firmware_bridge.ekd_decoder import EkdBleDecoder, EkdSerialDecoder
from emotionkd.firmware_bridge.emulators import DEVICES as EMULATED
from emotionkd.firmware_bridge.emulators import EmulatorConfig, make_emulator
from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.samples import SampleBlock
from emotionkd.firmware_bridge.source_base import Source, SourceInfo
from emotionkd.firmware_bridge.source_spec import (
    SourceSpec,
    parse_source_url,
    register_scheme,
    schemes,
)
from emotionkd.firmware_bridge.sources import GsrSource, make_decoder


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_descriptor_builds_its_decoder_and_emulator(protocol: str) -> None:
    d = device(protocol)
    decoder = d.decoder(d.default_rate_hz)
    assert isinstance(decoder, Decoder) and decoder.protocol == protocol
    assert decoder.rate_hz == d.default_rate_hz == type(decoder)().rate_hz  # the decoder's own default: the same number
    emulator = make_emulator(protocol, EmulatorConfig(rate_hz=d.default_rate_hz))
    emulator.stop()  # never started: removes its link directory
    assert type(emulator).__name__ == d.emulator.split(":")[1]
    spec = parse_source_url(f"serial:///dev/ttyX?protocol={protocol}")
    assert (spec.baud, spec.rate_hz) == (DEFAULT_BAUD[protocol], DEFAULT_RATE_HZ[protocol]) == (
        d.default_baud, d.default_rate_hz)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_emulator_samples_at_its_devices_registry_rate_unless_told(protocol: str) -> None:
    for config in (None, EmulatorConfig(seed=2)):  # no rate given: the registry's (BITalino: 100, not 128)
        emulator = make_emulator(protocol, config)
        emulator.stop()
        assert emulator.rate_hz == emulator.config.rate_hz == device(protocol).default_rate_hz
    emulator = make_emulator(protocol, EmulatorConfig(rate_hz=10.0))  # a rate every device can take
    emulator.stop()
    assert emulator.rate_hz == emulator.config.rate_hz == 10.0


def test_derived_tables_read_the_registry() -> None:
    assert PROTOCOLS == ("ekd", "ascii", "shimmer3", "bitalino") == EMULATED
    assert AUTO_ORDER[0] == "ekd" and AUTO_ORDER[-1] == "ascii"  # ASCII accepts almost anything: last
    assert DEVICES["ekd"].ble_profiles == (EKD_GATT, NORDIC_UART)
    with pytest.raises(ConfigError, match="use one of ekd, ascii, shimmer3, bitalino"):
        device("nope")


def test_ble_mode_picks_the_decoder_and_the_characteristics() -> None:
    gatt = parse_source_url("ble://AA:BB:CC:DD:EE:FF?protocol=ekd")
    nus = parse_source_url("ble://AA:BB:CC:DD:EE:FF?protocol=ekd&mode=nus")
    assert isinstance(make_decoder(gatt), EkdBleDecoder) and gatt.profile == EKD_GATT
    assert isinstance(make_decoder(nus), EkdSerialDecoder) and nus.profile == NORDIC_UART
    with pytest.raises(ConfigError, match="no BLE mode 'x'"):
        parse_source_url("ble://AA:BB:CC:DD:EE:FF?protocol=ekd&mode=x")


def test_auto_probes_with_each_protocols_own_defaults_unless_the_url_sets_them() -> None:
    spec = parse_source_url("serial:///dev/ttyX?protocol=auto")
    ascii_spec = spec.for_protocol("ascii")
    assert (ascii_spec.protocol, ascii_spec.baud, ascii_spec.rate_hz) == ("ascii", 9600, 10.0)
    fixed = parse_source_url("serial:///dev/ttyX?protocol=auto&baud=57600&rate=50").for_protocol("ascii")
    assert (fixed.baud, fixed.rate_hz) == (57600, 50.0)
    assert GsrSource(spec).protocol == AUTO_ORDER[0]


@dataclass(frozen=True)
class CountSpec(SourceSpec):
    scheme: ClassVar[str] = "count"
    n: int = 0


def parse_count(url: str) -> CountSpec:
    return CountSpec(url, int(url.split("://", 1)[1] or 0))


class CountSource(Source):
    def __init__(self, spec: CountSpec) -> None:
        super().__init__(spec.url)
        self.spec = spec

    @property
    def info(self) -> SourceInfo:
        return SourceInfo("counter", "count", 4.0)

    def blocks(self) -> Iterator[SampleBlock]:
        yield SampleBlock(0, np.arange(self.spec.n, dtype=np.float64), np.zeros(self.spec.n, np.uint8), 4.0)


def test_a_new_scheme_is_one_registration() -> None:
    from emotionkd.sdk.sources import open_source

    register_scheme("count", f"{__name__}:parse_count", f"{__name__}:CountSource", "count://5")
    try:
        assert parse_source_url("count://5") == CountSpec("count://5", 5)
        with open_source("count://5") as src:
            (block,) = list(src.blocks())
        assert block.conductance_us.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    finally:
        from emotionkd.firmware_bridge import source_spec

        source_spec._SCHEMES.pop("count")
    assert "count" not in schemes()
    with pytest.raises(ConfigError, match="unknown source scheme 'count'"):
        parse_source_url("count://5")
