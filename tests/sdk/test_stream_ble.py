"""End to end over BLE: ``emotionkd-sdk stream --ble ADDRESS`` through bleak's real BlueZ backend
against the bridge's mocked BlueZ (python-dbusmock on a private D-Bus) and its EKD peripheral.

Skips, with the reason, where dbus-python, python-dbusmock or dbus-daemon are missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

# The mocked BlueZ and the EKD peripheral belong to the bridge's BLE tests: reuse them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "firmware_bridge"))
from test_ble_end_to_end import ADDRESS, NAME, EkdPeripheral, bluez  # noqa: E402, F401 (bluez: a fixture)


def test_stream_over_ble_survives_a_disconnect(bluez: tuple[object, str], test_model: Path) -> None:  # noqa: F811
    bus, device_path = bluez
    peripheral = EkdPeripheral(bus, device_path)
    peripheral.start()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emotionkd.sdk.cli", "stream", "--ble", ADDRESS, "--format", "jsonl",
             "--duration", "11", "--model", str(test_model), "--timeout", "15"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not peripheral.streaming and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(6.0)
        peripheral.disconnect()  # out of range; bleak reconnects, START is sent again
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
        peripheral.stop_event.set()
        peripheral.join(5)
    assert proc.returncode == 0, err
    assert f"streaming {NAME}" in err  # the device's HELLO name
    rows = [json.loads(line) for line in out.splitlines()]
    starts = [r["start_s"] for r in rows]
    assert len(rows) >= 6 and starts == [starts[0] + i for i in range(len(rows))], starts
    assert rows[0]["quality"] == "ok" and 0.0 <= rows[0]["arousal"] <= 1.0
    assert any(r["quality"] == "gap" for r in rows), rows  # the disconnect shows as a gap
    assert peripheral.commands.count(3) >= 2  # a HELLO request on each connection (opcode 0x03)


def test_devices_finds_the_ekd_sensor_in_a_ble_scan(bluez: tuple[object, str]) -> None:  # noqa: F811
    peripheral = EkdPeripheral(*bluez)  # advertises (RSSI updates) while nobody is connected
    peripheral.start()
    try:
        out = subprocess.run([sys.executable, "-m", "emotionkd.sdk.cli", "devices", "--ble-timeout", "2"],
                             capture_output=True, text=True, timeout=60)
    finally:
        peripheral.stop_event.set()
        peripheral.join(5)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if ADDRESS in line)
    assert NAME in line and "[EKD sensor]" in line
