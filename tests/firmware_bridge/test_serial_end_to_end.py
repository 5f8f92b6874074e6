"""End to end through real pseudo-terminals: emulator → pty → pyserial → decoder → GsrSource."""

from __future__ import annotations

import asyncio
import errno
import os
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from emotionkd.firmware_bridge.emulators import EmulatorConfig, make_emulator
from emotionkd.firmware_bridge.errors import ConfigError, TransportError
from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, GsrSynthesizer
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag
from emotionkd.firmware_bridge.sources import Backoff, BlockQueue, GsrSource, parse_source_url
from emotionkd.firmware_bridge.transports import assert_modem_lines

pytestmark = pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals need POSIX")

FAST = Backoff(initial_s=0.05, factor=2.0, max_s=0.4)



def check_axis(blocks: list[SampleBlock]) -> np.ndarray:
    assert blocks, "no samples arrived"
    expected = blocks[0].first_index
    for b in blocks:
        assert b.first_index == expected
        expected += len(b)
    return np.concatenate([b.conductance_us for b in blocks])


# --- URLs -------------------------------------------------------------------------------------

def test_parse_serial_and_ble_urls() -> None:
    spec = parse_source_url("serial:///dev/ttyUSB0?baud=9600&protocol=ascii&unit=kOhm&rate=4")
    assert (spec.scheme, spec.target, spec.protocol, spec.baud, spec.rate_hz) == ("serial", "/dev/ttyUSB0", "ascii", 9600, 4.0)
    assert spec.options == {"unit": "kOhm"}
    spec = parse_source_url("ble://AA:BB:CC:DD:EE:FF?protocol=ekd")
    assert spec.target == "AA:BB:CC:DD:EE:FF" and not spec.by_name
    spec = parse_source_url("ble://EKD-GSR-01")
    assert spec.by_name and spec.protocol == "ekd" and spec.rate_hz == 128.0
    assert parse_source_url("serial:///dev/rfcomm0?protocol=shimmer3").baud == 115200


@pytest.mark.parametrize("url", ["tcp://host", "serial://?protocol=ekd", "serial:///dev/x?protocol=nope",
                                 "serial:///dev/x?rate=abc", "ble://?protocol=ekd", "ble://AA:BB:CC:DD:EE:FF?protocol=bitalino"])
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_source_url(url)


def test_queue_drops_oldest_and_reader_fills_the_hole() -> None:
    q = BlockQueue(max_blocks=2)
    blocks = [SampleBlock(4 * i, np.ones(4), np.zeros(4, dtype=np.uint8), 10.0) for i in range(4)]
    for b in blocks:
        q.put(b)
    assert q.drops == 2 and q.dropped_samples == 8
    source = GsrSource("serial:///dev/null?protocol=ekd")
    source._queue = q
    first = source.read(0.0)
    assert [b.first_index for b in first] == [0, 8] and np.isnan(first[0].conductance_us).all()
    assert (first[0].flags == SampleFlag.GAP).all()


def test_modem_lines_tolerate_enotty() -> None:
    class Pty:
        port = "/dev/pts/9"

        def __setattr__(self, name: str, value: object) -> None:
            raise OSError(errno.ENOTTY, "Inappropriate ioctl for device")

    assert_modem_lines(Pty())

    class Broken(Pty):
        def __setattr__(self, name: str, value: object) -> None:
            raise OSError(errno.EIO, "I/O error")

    with pytest.raises(TransportError):
        assert_modem_lines(Broken())


def test_missing_port_fails_with_a_clear_error(tmp_path: object) -> None:
    with pytest.raises(TransportError, match="serial port /dev/does-not-exist-ekd does not exist"):  # the fix, one line
        GsrSource("serial:///dev/does-not-exist-ekd?protocol=ekd", backoff=FAST).start()


# --- end to end ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("device", "rate", "query"),
    [("ekd", 128, ""), ("ascii", 20, "&unit=adc"), ("shimmer3", 128, ""), ("bitalino", 100, "")],
)
def test_every_protocol_streams_through_a_pty(device: str, rate: int, query: str) -> None:
    with make_emulator(device, EmulatorConfig(rate_hz=rate, frames_per_s=16, seed=3)) as emu:
        with GsrSource(f"serial://{emu.port_path}?protocol={device}&rate={rate}{query}", backoff=FAST) as source:
            values = check_axis(source.collect(1.2))
        assert values.size >= rate * 0.5
        finite = values[np.isfinite(values)]
        assert finite.size >= values.size * 0.9
        # the synthetic skin conductance starts near 5 µS; every protocol's calibration must agree
        assert 3.0 < float(np.median(finite)) < 7.0
        assert emu.counters.connects == 1
        c = source.counters()
        assert c["crc_failures"] == 0 and c["frames_lost"] == 0 and c["connects"] == 1


def test_ekd_emulator_is_byte_exact() -> None:
    """What arrives equals the synthetic signal rounded to whole nanosiemens, sample for sample."""
    config = EmulatorConfig(rate_hz=128, frames_per_s=16, seed=5, arousal=0.6)
    with make_emulator("ekd", config) as emu:
        with GsrSource(f"serial://{emu.port_path}?protocol=ekd", backoff=FAST) as source:
            values = check_axis(source.collect(1.0))
            started_at = emu._stream_start_index
    expected = GsrSynthesizer(GsrSynthConfig(rate_hz=128), seed=5, arousal=0.6).read(started_at + values.size)
    np.testing.assert_allclose(values, np.round(expected[started_at:] * 1000) / 1000, atol=1e-9)


@pytest.mark.parametrize("sample_format", ["u16", "u24"])
def test_ekd_raw_adc_formats_use_the_hello_calibration(sample_format: str) -> None:
    config = EmulatorConfig(rate_hz=128, frames_per_s=16, seed=2, sample_format=sample_format)
    with make_emulator("ekd", config) as emu:
        with GsrSource(f"serial://{emu.port_path}?protocol=ekd", backoff=FAST) as source:
            values = check_axis(source.collect(0.8))
            started_at = emu._stream_start_index
            hello = source.decoder.hello
    assert hello is not None and hello.calibration == 1 and hello.gain == pytest.approx(0.01)
    expected = GsrSynthesizer(GsrSynthConfig(rate_hz=128), seed=2).read(started_at + values.size)[started_at:]
    np.testing.assert_allclose(values, expected, atol=0.005 + 1e-9)  # half an ADC step of 0.01 µS


def test_ekd_unplug_and_replug_counts_the_gap() -> None:
    with make_emulator("ekd", EmulatorConfig(rate_hz=128, frames_per_s=16)) as emu:
        with GsrSource(f"serial://{emu.port_path}?protocol=ekd", backoff=FAST, stall_timeout_s=2.0) as source:
            blocks = source.collect(0.8)
            emu.unplug()
            time.sleep(0.6)
            emu.replug()
            blocks += source.collect(1.2)
            c = source.counters()
        values = check_axis(blocks)
    assert c["connects"] == 2 and c["disconnects"] == 1
    unsent = emu.counters.samples_unsent
    assert unsent > 0
    # every sample the device made while unplugged is a NaN on the host's axis; samples already
    # in the pty buffer at the unplug are lost too (at most one flush)
    assert unsent <= c["samples_lost"] <= unsent + 16
    assert np.isnan(values).sum() == c["samples_lost"]
    assert c["ack_frames"] >= 4  # HELLO request + START acknowledged after each connect
    assert emu.counters.commands >= 4


def test_ekd_faults_are_accounted() -> None:
    with make_emulator("ekd", EmulatorConfig(rate_hz=128, frames_per_s=16, autostart=True)) as emu:
        with GsrSource(f"serial://{emu.port_path}?protocol=ekd", backoff=FAST) as source:
            source.collect(0.4)
            emu.drop_frames(3)
            source.collect(0.4)
            emu.inject_garbage(24)
            emu.electrode_off = True
            blocks = source.collect(0.6)
            c = source.counters()
    flags = np.concatenate([b.flags for b in blocks])
    assert (flags & SampleFlag.ELECTRODE_OFF).any()
    assert c["frames_lost"] >= 3 and c["samples_lost"] >= 3 * 8
    assert c["crc_failures"] + c["cobs_errors"] + c["bad_length"] + c["bad_version"] >= 1


def test_without_reconnect_unplug_raises() -> None:
    with make_emulator("ascii", EmulatorConfig(rate_hz=50, frames_per_s=20)) as emu:
        source = GsrSource(f"serial://{emu.port_path}?protocol=ascii&rate=50", reconnect=False).start()
        source.collect(0.3)
        emu.unplug()
        with pytest.raises(TransportError, match="lost"):
            source.collect(2.0)
        source.close()


def test_async_iteration() -> None:
    async def main(path: str) -> list[SampleBlock]:
        got: list[SampleBlock] = []
        async with GsrSource(f"serial://{path}?protocol=ekd", backoff=FAST) as source:
            async for block in source:
                got.append(block)
                if sum(len(b) for b in got) >= 64:
                    break
        return got

    with make_emulator("ekd", EmulatorConfig(rate_hz=128, frames_per_s=16)) as emu:
        blocks = asyncio.run(main(emu.port_path))
    assert sum(len(b) for b in blocks) >= 64


def test_simulate_command_prints_the_pty() -> None:
    from emotionkd.sdk.cli import app

    result = CliRunner().invoke(app, ["simulate", "--device", "shimmer3", "--rate", "128", "--duration", "0.3"])
    assert result.exit_code == 0, result.output
    assert "/dev/pts/" in result.output
    bad = CliRunner().invoke(app, ["simulate", "--device", "nope", "--duration", "0.1"])
    assert bad.exit_code == 2 and "unknown device" in bad.output
