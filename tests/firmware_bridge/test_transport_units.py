"""Transport pieces without a device: backoff, the link supervisor's one failure and stall rule
(both transports use it), MTU-aware BLE writes, the emulator fault schedule."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from emotionkd.firmware_bridge import ekd
from emotionkd.firmware_bridge.emulators import EmulatorConfig, make_emulator, run_emulator
from emotionkd.firmware_bridge.errors import ConfigError, TransportError
from emotionkd.firmware_bridge.link import LinkSupervisor, SourceCounters
from emotionkd.firmware_bridge.sources import Backoff
from emotionkd.firmware_bridge.transports import _att_mtu, _ble_write


def test_backoff_is_exponential_and_capped() -> None:
    b = Backoff(initial_s=0.5, factor=2.0, max_s=3.0)
    assert [b.delay_s(i) for i in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


class LostLog:
    """A link protocol that only records the connection_lost calls."""

    def __init__(self) -> None:
        self.lost: list[TransportError | None] = []

    def connection_made(self) -> list[bytes]:
        return []

    def data_received(self, data: bytes) -> None:
        pass

    def connection_lost(self, error: TransportError | None) -> None:
        self.lost.append(error)

    def stop_commands(self) -> list[bytes]:
        return []


def test_a_failed_start_loses_nothing_and_a_lost_link_is_retried_with_backoff() -> None:
    fatal: list[TransportError] = []
    supervisor = LinkSupervisor(True, Backoff(initial_s=0.5, factor=2.0, max_s=3.0), SourceCounters(), fatal.append)
    protocol, error = LostLog(), TransportError("port vanished")
    assert supervisor.link_failed(error, protocol) is None  # the first connection failed: give up
    assert protocol.lost == [] and supervisor.first_error is error and supervisor.first_result.is_set()
    supervisor.connected()
    assert [supervisor.link_failed(error, protocol) for _ in range(2)] == [0.5, 1.0]
    assert protocol.lost == [error, error] and supervisor.counters.last_error == "port vanished" and not fatal
    once = LinkSupervisor(False, Backoff(), SourceCounters(), fatal.append)
    once.connected()
    assert once.link_failed(error, protocol) is None and fatal == [error]


def test_a_silent_link_is_a_counted_stall_only_past_the_timeout() -> None:
    supervisor = LinkSupervisor(True, Backoff(), SourceCounters(), lambda error: None)
    supervisor.check_stall(5.0, None, "serial:///dev/x", "data")  # no timeout: never stalls
    supervisor.check_stall(1.9, 2.0, "serial:///dev/x", "data")
    assert supervisor.counters.stalls == 0
    with pytest.raises(TransportError, match=r"^ble://x: no notification for 2 s \(stalled link\)$"):
        supervisor.check_stall(2.1, 2.0, "ble://x", "notification")
    assert supervisor.counters.stalls == 1


class FakeChar:
    def __init__(self, uuid: str, max_write: int) -> None:
        self.uuid = uuid
        self.max_write_without_response_size = max_write


class FakeClient:
    def __init__(self, max_write: int) -> None:
        self.chars = {u: FakeChar(u, max_write) for u in (ekd.CONTROL_CHAR_UUID, ekd.NUS_RX_CHAR_UUID, ekd.DATA_CHAR_UUID)}
        self.writes: list[tuple[str, bytes, bool]] = []
        self.services = self

    def get_characteristic(self, uuid: str) -> FakeChar | None:
        return self.chars.get(uuid)

    async def write_gatt_char(self, char: FakeChar, data: bytes, response: bool) -> None:
        self.writes.append((char.uuid, bytes(data), response))


def test_nus_writes_are_split_to_the_att_payload() -> None:
    client = FakeClient(max_write=20)
    stream = ekd.serial_encode(ekd.command_frame(ekd.Opcode.TIMESYNC, 3, 2**40)) * 2  # 46 bytes
    asyncio.run(_ble_write(client, ekd.NUS_RX_CHAR_UUID, stream, nus=True))
    assert [len(w[1]) for w in client.writes] == [20, 20, len(stream) - 40]
    assert b"".join(w[1] for w in client.writes) == stream and not any(w[2] for w in client.writes)
    assert _att_mtu(client, ekd.DATA_CHAR_UUID) == 23


def test_gatt_command_frames_are_written_whole_with_response() -> None:
    client = FakeClient(max_write=20)
    frame = ekd.command_frame(ekd.Opcode.TIMESYNC, 3, 2**40)  # 21 bytes > 20: a long write
    asyncio.run(_ble_write(client, ekd.CONTROL_CHAR_UUID, frame, nus=False))
    assert client.writes == [(ekd.CONTROL_CHAR_UUID, frame, True)]
    with pytest.raises(TransportError, match="no characteristic"):
        asyncio.run(_ble_write(client, "0000beef-0000-1000-8000-00805f9b34fb", frame, nus=False))


def test_run_emulator_schedules_faults() -> None:
    lines: list[str] = []
    with make_emulator("ekd", EmulatorConfig(rate_hz=64, frames_per_s=20)) as emu:
        counters = run_emulator(emu, 0.6, unplug_every_s=0.2, unplug_for_s=0.1, electrode_off_after_s=0.1,
                                report_every_s=0.25, report=lines.append)
        assert emu.electrode_off
    assert counters.unplugs >= 1 and counters.samples_generated > 0
    assert any("unplugged" in line for line in lines) and any("replugged" in line for line in lines)
    assert any("electrodes off" in line for line in lines) and any("waiting for host" in line for line in lines)


def test_run_emulator_stops_on_event() -> None:
    stop = threading.Event()
    stop.set()
    with make_emulator("ascii", EmulatorConfig(rate_hz=10)) as emu:
        assert run_emulator(emu, None, stop=stop).unplugs == 0


@pytest.mark.parametrize(("device", "kwargs"), [("bitalino", {"rate_hz": 50}), ("ascii", {"unit": "kOhm"}),
                                                ("ekd", {"sample_format": "u8"}), ("nope", {})])
def test_emulator_config_errors(device: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        make_emulator(device, EmulatorConfig(**kwargs))


def test_serial_ports_get_a_url_and_a_protocol_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from serial.tools import list_ports

    from emotionkd.firmware_bridge.discovery import list_serial_ports

    ports = [
        SimpleNamespace(device="/dev/ttyACM0", description="Arduino Uno", manufacturer="Arduino", vid=0x2341),
        SimpleNamespace(device="/dev/rfcomm0", description="n/a", manufacturer=None, vid=None),
        SimpleNamespace(device="/dev/ttyUSB0", description="CP2102", manufacturer="Silicon Labs", vid=0x10C4),
    ]
    monkeypatch.setattr(list_ports, "comports", lambda: ports)
    found = {d.address: d for d in list_serial_ports()}
    assert found["/dev/ttyACM0"].protocol == "ascii" and found["/dev/ttyACM0"].name == "Arduino Uno Arduino"
    assert found["/dev/rfcomm0"].url == "serial:///dev/rfcomm0?protocol=shimmer3"
    assert found["/dev/ttyUSB0"].protocol == "" and found["/dev/ttyUSB0"].url.endswith("protocol=ekd")
