"""BLE end to end: bleak's real BlueZ backend against a mocked BlueZ on a private D-Bus.

python-dbusmock runs its ``bluez5`` template on a private system bus; this file adds the EKD
GATT service (DATA notify, CONTROL write) to a mocked device and runs a small EKD peripheral
in a thread: it advertises (RSSI updates) while disconnected, answers CMD writes with ACK and
HELLO frames, and streams DATA frames as notifications (``PropertiesChanged`` on ``Value``)
once started. The tests drive :class:`GsrSource` (``ble://`` URLs) through scan, connect,
notify, disconnect, stall and reconnect, and check the counters against what the peripheral did.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

from emotionkd.firmware_bridge import ekd
from emotionkd.firmware_bridge.samples import SampleBlock
from emotionkd.firmware_bridge.sources import Backoff, GsrSource

dbus = pytest.importorskip("dbus", reason="dbus-python is not installed: `make system-deps install` (needs libdbus-1-dev)")
dbusmock = pytest.importorskip("dbusmock", reason="python-dbusmock is not installed: pip install -e '.[dev]'")

if shutil.which("dbus-daemon") is None:
    pytest.skip("dbus-daemon is not installed (apt-get install dbus): cannot run a private D-Bus", allow_module_level=True)

ADDRESS = "C0:FF:EE:00:00:01"
NAME = "EKD-GSR-01"
DEVICE_IFACE = "org.bluez.Device1"
CHAR_IFACE = "org.bluez.GattCharacteristic1"
SERVICE_IFACE = "org.bluez.GattService1"
MOCK_IFACE = "org.freedesktop.DBus.Mock"
RATE_HZ = 32.0
PER_FRAME = 2  # u32 samples per notification: 10 + 8 + 2 = 20 bytes, the default ATT payload
FAST = Backoff(initial_s=0.1, factor=2.0, max_s=0.5)


class EkdPeripheral(threading.Thread):
    """An EKD device behind the mocked BlueZ (runs in the test process, talks D-Bus)."""

    def __init__(self, bus: object, device_path: str) -> None:
        super().__init__(daemon=True, name="ekd-ble-peripheral")
        self.bus = bus
        self.device_path = device_path
        self.data_path = device_path + "/service0010/char0011"
        self.control_path = device_path + "/service0010/char0013"
        self.stop_event = threading.Event()
        self.streaming = False
        self.silent = False  # connected but sending nothing (stall)
        self.samples_made = 0
        self.samples_unsent = 0
        self.commands: list[int] = []
        self.seq = 0
        self.t_start = time.monotonic()
        self.error: BaseException | None = None
        self.disconnect_requested = threading.Event()

    def _mock(self, path: str) -> object:
        return dbus.Interface(self.bus.get_object("org.bluez", path), MOCK_IFACE)

    def _prop(self, path: str, iface: str, name: str) -> object:
        return dbus.Interface(self.bus.get_object("org.bluez", path), dbus.PROPERTIES_IFACE).Get(iface, name)

    def notify(self, frame: bytes) -> None:
        self._mock(self.data_path).UpdateProperties(CHAR_IFACE, {"Value": dbus.Array(frame, signature="y")})

    def next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        return self.seq

    def disconnect(self) -> None:
        """The device goes out of range (done by the peripheral thread between two sends, so
        that every frame is either delivered before the disconnect or counted as unsent)."""
        self.disconnect_requested.set()

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def _loop(self) -> None:
        control = self._mock(self.control_path)
        device = self._mock(self.device_path)
        rssi = 0
        while not self.stop_event.is_set():
            if self.disconnect_requested.is_set():
                device.UpdateProperties(DEVICE_IFACE, {"Connected": dbus.Boolean(False),
                                                       "ServicesResolved": dbus.Boolean(False)})
                self.disconnect_requested.clear()
            due = int((time.monotonic() - self.t_start) * RATE_HZ) // PER_FRAME * PER_FRAME - self.samples_made
            connected = bool(self._prop(self.device_path, DEVICE_IFACE, "Connected"))
            notifying = connected and bool(self._prop(self.data_path, CHAR_IFACE, "Notifying"))
            if not connected:
                rssi = (rssi + 1) % 5
                device.UpdateProperties(DEVICE_IFACE, {"RSSI": dbus.Int16(-60 - rssi)})  # advertising
            for _, args in control.GetMethodCalls("WriteValue"):
                self._command(bytes(args[0]))
            control.ClearCalls()
            if due > 0:
                for start in range(0, due, PER_FRAME):
                    t0 = self.samples_made + start
                    frame = ekd.data_frame(self.next_seq(), t0, [5_000 + (t0 + i) % 50 for i in range(PER_FRAME)], 2)
                    if self.streaming and notifying and not self.silent:
                        self.notify(frame)
                    elif self.streaming:
                        self.samples_unsent += PER_FRAME
                self.samples_made += due
            self.stop_event.wait(0.05)

    def _command(self, raw: bytes) -> None:
        frame = ekd.decode_frame(raw)
        opcode = frame.payload[0]
        self.commands.append(opcode)
        if opcode == ekd.Opcode.START:
            self.streaming = True
        elif opcode == ekd.Opcode.STOP:
            self.streaming = False
        self.notify(ekd.control_frame(ekd.FrameType.ACK, frame.seq, 0, ekd.Ack(opcode, 0).encode()))
        if opcode == ekd.Opcode.HELLO_REQUEST:
            hello = ekd.Hello(0x0100, int(RATE_HZ * 1000), 0, 0, 0.0, 0.0, NAME)
            self.notify(ekd.control_frame(ekd.FrameType.HELLO, self.next_seq(), 0, hello.encode()))


@pytest.fixture(scope="module")
def bluez() -> object:
    """A private system bus with the bluez5 mock, an adapter and the EKD device with its GATT service."""
    saved = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    try:
        dbusmock.DBusTestCase.start_system_bus()
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"cannot start a private D-Bus daemon: {exc}")
    server, _ = dbusmock.DBusTestCase.spawn_server_template("bluez5", {}, stdout=subprocess.DEVNULL, system_bus=True)
    bus = dbus.bus.BusConnection(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
    root = bus.get_object("org.bluez", "/")
    dbus.Interface(root, "org.bluez.Mock").AddAdapter("hci0", "emotionkd-test")
    device_path = str(dbus.Interface(root, "org.bluez.Mock").AddDevice("hci0", ADDRESS, NAME))
    device = dbus.Interface(bus.get_object("org.bluez", device_path), MOCK_IFACE)
    # the template types these as arrays; BlueZ sends dictionaries (bleak iterates their items)
    device.UpdateProperties(DEVICE_IFACE, {
        "ManufacturerData": dbus.Dictionary({}, signature="qv"),
        "ServiceData": dbus.Dictionary({}, signature="sv"),
        "AdvertisingData": dbus.Dictionary({}, signature="yv"),
        "UUIDs": dbus.Array([ekd.SERVICE_UUID], signature="s"),
    })
    # a real BlueZ resolves the GATT services on connect: so does this mock
    device.AddMethod(DEVICE_IFACE, "Connect", "", "",
                     "self.UpdateProperties('org.bluez.Device1', "
                     "{'Connected': dbus.Boolean(True), 'ServicesResolved': dbus.Boolean(True)})")
    device.AddMethod(DEVICE_IFACE, "Disconnect", "", "",
                     "self.UpdateProperties('org.bluez.Device1', "
                     "{'Connected': dbus.Boolean(False), 'ServicesResolved': dbus.Boolean(False)})")
    mock_root = dbus.Interface(root, MOCK_IFACE)
    service_path = device_path + "/service0010"
    objects = [
        (service_path, SERVICE_IFACE,
         {"UUID": ekd.SERVICE_UUID, "Device": dbus.ObjectPath(device_path), "Primary": True,
          "Includes": dbus.Array([], signature="o")}, []),
        (service_path + "/char0011", CHAR_IFACE,
         {"UUID": ekd.DATA_CHAR_UUID, "Service": dbus.ObjectPath(service_path), "Value": dbus.Array([], signature="y"),
          "Flags": dbus.Array(["notify"], signature="s"), "Notifying": False, "MTU": dbus.UInt16(23)},
         [("StartNotify", "", "", "self.UpdateProperties('org.bluez.GattCharacteristic1', {'Notifying': dbus.Boolean(True)})"),
          ("StopNotify", "", "", "self.UpdateProperties('org.bluez.GattCharacteristic1', {'Notifying': dbus.Boolean(False)})"),
          ("ReadValue", "a{sv}", "ay", "ret = dbus.Array([], signature='y')")]),
        (service_path + "/char0013", CHAR_IFACE,
         {"UUID": ekd.CONTROL_CHAR_UUID, "Service": dbus.ObjectPath(service_path), "Value": dbus.Array([], signature="y"),
          "Flags": dbus.Array(["write", "write-without-response"], signature="s"), "MTU": dbus.UInt16(23)},
         [("WriteValue", "aya{sv}", "", ""), ("ReadValue", "a{sv}", "ay", "ret = dbus.Array([], signature='y')")]),
    ]
    for path, iface, props, methods in objects:
        mock_root.AddObject(path, iface, props, methods)
        mock_root.EmitSignal("org.freedesktop.DBus.ObjectManager", "InterfacesAdded", "oa{sa{sv}}",
                             [dbus.ObjectPath(path),
                              dbus.Dictionary({iface: dbus.Dictionary(props, signature="sv")}, signature="sa{sv}")])
    yield bus, device_path
    server.terminate()
    server.wait()
    dbusmock.DBusTestCase.tearDownClass()
    if saved is None:
        os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
    else:
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = saved



def wait_until(predicate: object, source: GsrSource, seconds: float) -> list[SampleBlock]:
    blocks: list[SampleBlock] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not predicate():  # type: ignore[operator]
        blocks += source.read(0.1)
    return blocks


def test_scan_connect_notify_disconnect_reconnect(bluez: tuple[object, str]) -> None:
    bus, device_path = bluez
    peripheral = EkdPeripheral(bus, device_path)
    peripheral.start()
    try:
        source = GsrSource(f"ble://{ADDRESS}?protocol=ekd&rate={RATE_HZ:g}", backoff=FAST, stall_timeout_s=1.5,
                           connect_timeout_s=20.0).start()
        try:
            blocks = source.collect(1.5)
            assert peripheral.commands[:2] == [ekd.Opcode.HELLO_REQUEST, ekd.Opcode.START]
            assert source.decoder.hello is not None and source.decoder.hello.name == NAME
            # out of range: BlueZ says disconnected, the device keeps sampling
            peripheral.disconnect()
            blocks += wait_until(lambda: source.transport_counters.connects >= 2, source, 15.0)
            blocks += source.collect(1.0)
            # a silent link (connected, no notifications) is a stall: disconnect and reconnect
            peripheral.silent = True
            blocks += wait_until(lambda: source.transport_counters.stalls >= 1, source, 6.0)
            peripheral.silent = False
            blocks += wait_until(lambda: source.transport_counters.connects >= 3, source, 15.0)
            blocks += source.collect(1.0)
            c = source.counters()
        finally:
            source.close()
    finally:
        peripheral.stop_event.set()
        peripheral.join(5)
    assert peripheral.error is None, peripheral.error
    assert c["connects"] >= 3 and c["disconnects"] >= 2 and c["stalls"] >= 1
    assert c["mtu"] == 23
    expected = 0
    for b in blocks:
        assert b.first_index == expected
        expected += len(b)
    values = np.concatenate([b.conductance_us for b in blocks])
    # gaps accounted: every sample the device made but could not send is NaN on the host axis
    assert c["samples_lost"] == peripheral.samples_unsent > 0
    assert np.isnan(values).sum() == c["samples_lost"]
    finite = values[np.isfinite(values)]
    assert finite.size > RATE_HZ * 2 and np.all((finite >= 5.0) & (finite < 5.05))
    assert c["crc_failures"] == 0 and c["ack_frames"] >= 6


def test_async_face_is_async_end_to_end(bluez: tuple[object, str]) -> None:
    """``async with`` / ``async for`` over BLE: the bleak session runs in the caller's loop (no
    source thread), reconnects after a disconnect and keeps one continuous sample axis."""
    import asyncio
    import threading

    bus, device_path = bluez
    peripheral = EkdPeripheral(bus, device_path)
    peripheral.start()

    async def stream() -> tuple[list[SampleBlock], list[str], dict[str, int]]:
        blocks: list[SampleBlock] = []
        source_threads: list[str] = []
        async with GsrSource(f"ble://{ADDRESS}?protocol=ekd&rate={RATE_HZ:g}", backoff=FAST) as source:
            async for block in source:
                blocks.append(block)
                source_threads += [t.name for t in threading.enumerate() if t.name.startswith("emotionkd-source")]
                if source.transport_counters.connects == 1 and sum(len(b) for b in blocks) >= RATE_HZ:
                    peripheral.disconnect()  # out of range once
                if source.transport_counters.connects >= 2 and sum(len(b) for b in blocks) >= 4 * RATE_HZ:
                    break
            counters = source.counters()
        return blocks, source_threads, counters

    try:
        blocks, source_threads, c = asyncio.run(asyncio.wait_for(stream(), 60.0))
    finally:
        peripheral.stop_event.set()
        peripheral.join(5)
    assert peripheral.error is None, peripheral.error
    assert source_threads == []  # no transport thread: bleak's notifications reach the decoder in this loop
    assert c["connects"] >= 2 and c["disconnects"] >= 1
    expected = 0
    for b in blocks:
        assert b.first_index == expected
        expected += len(b)
    values = np.concatenate([b.conductance_us for b in blocks])
    assert c["samples_lost"] > 0 and np.isnan(values).sum() == c["samples_lost"]  # the outage is a gap
    assert np.isfinite(values).sum() >= 3 * RATE_HZ


def test_find_by_name_and_missing_device(bluez: tuple[object, str]) -> None:
    bus, device_path = bluez
    peripheral = EkdPeripheral(bus, device_path)
    peripheral.start()
    try:
        with GsrSource(f"ble://{NAME}?protocol=ekd&rate={RATE_HZ:g}", backoff=FAST) as source:
            blocks = wait_until(lambda: source.decoder.counters.data_frames >= 4, source, 10.0)
        assert sum(len(b) for b in blocks) >= 8
    finally:
        peripheral.stop_event.set()
        peripheral.join(5)
    from emotionkd.firmware_bridge.errors import TransportError

    with pytest.raises(TransportError, match="not found"):
        GsrSource("ble://00:11:22:33:44:55?protocol=ekd&scan_timeout=1", connect_timeout_s=10).start()


def test_scan_lists_the_ekd_device(bluez: tuple[object, str]) -> None:
    from emotionkd.firmware_bridge.discovery import scan_ble_sync

    bus, device_path = bluez
    peripheral = EkdPeripheral(bus, device_path)  # advertises while not connected
    peripheral.start()
    try:
        found = scan_ble_sync(1.0)
    finally:
        peripheral.stop_event.set()
        peripheral.join(5)
    assert found and found[0].address == ADDRESS and found[0].protocol == "ekd"
    assert found[0].name == NAME and found[0].url == f"ble://{ADDRESS}?protocol=ekd"
