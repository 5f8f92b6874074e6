"""Finding sensors: serial ports (pyserial) and nearby BLE devices (bleak), for ``devices``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from emotionkd.firmware_bridge.errors import TransportError

#: the EKD GATT service (PROTOCOL.md) and the Nordic UART Service hobby firmware uses
EKD_SERVICE_UUID: Final = "049649f8-6032-41a8-8c68-803ad9b53d29"
NUS_SERVICE_UUID: Final = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"


@dataclass(frozen=True)
class SerialPortInfo:
    """A serial port: ``device`` (the path to pass to ``--port``) and a human description."""

    device: str
    description: str


@dataclass(frozen=True)
class BleDeviceInfo:
    """A BLE device seen in a scan; ``ekd`` when it advertises the EKD or UART service."""

    address: str
    name: str | None
    rssi: int | None
    ekd: bool


def list_serial_ports() -> list[SerialPortInfo]:
    """The serial ports pyserial sees (USB adapters, Bluetooth SPP ports, built-in UARTs)."""
    from serial.tools import list_ports

    out = []
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        parts = [p for p in (port.description, port.manufacturer, port.hwid) if p and p != "n/a"]
        out.append(SerialPortInfo(port.device, " · ".join(dict.fromkeys(parts)) or "serial port"))
    return out


def scan_ble(timeout_s: float = 5.0) -> list[BleDeviceInfo]:
    """Scan for BLE devices for ``timeout_s`` seconds, EKD sensors first.

    Raises:
        TransportError: no BLE here (no adapter, no BlueZ/D-Bus, permission), with the reason.
    """
    try:
        from bleak import BleakScanner
        from bleak.exc import BleakError
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise TransportError("BLE support is not installed: pip install bleak") from exc

    async def scan() -> list[BleDeviceInfo]:
        found = await BleakScanner.discover(timeout=timeout_s, return_adv=True)
        devices = []
        for device, adv in found.values():
            uuids = {u.lower() for u in adv.service_uuids}
            devices.append(BleDeviceInfo(device.address, device.name or adv.local_name, adv.rssi,
                                         bool(uuids & {EKD_SERVICE_UUID, NUS_SERVICE_UUID})))
        return sorted(devices, key=lambda d: (not d.ekd, -(d.rssi or -999)))

    try:
        return asyncio.run(scan())
    except (BleakError, OSError, EOFError) as exc:
        raise TransportError(
            f"BLE scan unavailable ({type(exc).__name__}: {exc or 'no detail'}); is there a Bluetooth "
            "adapter, and is bluetoothd running (systemctl status bluetooth)?") from exc
    except Exception as exc:  # dbus-fast raises its own errors when there is no system bus
        raise TransportError(f"BLE scan unavailable: {type(exc).__name__}: {exc}") from exc


__all__ = ["EKD_SERVICE_UUID", "NUS_SERVICE_UUID", "BleDeviceInfo", "SerialPortInfo", "list_serial_ports", "scan_ble"]
