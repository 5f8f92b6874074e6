"""Finding devices: serial ports (pyserial) and BLE devices (bleak), with a source URL for each.

The SDK's ``devices`` command prints these; each entry carries the URL to pass to
:class:`~emotionkd.firmware_bridge.sources.GsrSource`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from emotionkd.firmware_bridge import ekd
from emotionkd.firmware_bridge.errors import TransportError

#: USB vendor ids → the protocol such a device most likely speaks
_VENDOR_HINTS = {
    0x2341: "ascii",  # Arduino
    0x2886: "ascii",  # Seeed (Grove)
    0x303A: "ekd",  # Espressif native USB (ESP32-S2/S3/C3)
}


@dataclass(frozen=True)
class FoundDevice:
    """A device a host can connect to.

    Attributes:
        kind: ``"serial"`` or ``"ble"``.
        address: port path or BLE address.
        name: description / advertised name.
        protocol: the protocol guessed for it (``"ekd"`` when it advertises the EKD service), or
            ``""`` when unknown.
        url: a source URL (protocol guessed; edit ``protocol=`` if the guess is wrong).
        rssi: BLE signal strength (dBm), None for serial.
    """

    kind: str
    address: str
    name: str
    protocol: str
    url: str
    rssi: int | None = None


def list_serial_ports() -> list[FoundDevice]:
    """Serial ports present now (USB-serial adapters, USB CDC, bound rfcomm ports)."""
    from serial.tools import list_ports

    found = []
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        name = " ".join(x for x in (port.description, port.manufacturer) if x and x != "n/a")
        protocol = _VENDOR_HINTS.get(port.vid or -1, "")
        if "rfcomm" in port.device:
            protocol = protocol or "shimmer3"
        url = f"serial://{port.device}?protocol={protocol or 'ekd'}"
        found.append(FoundDevice("serial", port.device, name or port.device, protocol, url))
    return found


async def scan_ble(timeout_s: float = 5.0) -> list[FoundDevice]:
    """BLE devices advertising during ``timeout_s``; EKD devices (service UUID) first.

    Raises:
        TransportError: no Bluetooth adapter / BlueZ not reachable.
    """
    from bleak import BleakScanner
    from bleak.exc import BleakError

    try:
        seen = await BleakScanner.discover(timeout=timeout_s, return_adv=True)
    except (BleakError, OSError) as exc:
        raise TransportError(f"BLE scan failed: {exc}; is Bluetooth on and BlueZ running?") from exc
    found = []
    for device, adv in seen.values():
        uuids = {u.lower() for u in adv.service_uuids}
        if ekd.SERVICE_UUID in uuids:
            protocol, url = "ekd", f"ble://{device.address}?protocol=ekd"
        elif ekd.NUS_SERVICE_UUID in uuids:
            protocol, url = "ekd", f"ble://{device.address}?protocol=ekd&mode=nus"
        else:
            protocol, url = "", f"ble://{device.address}?protocol=ekd"
        found.append(FoundDevice("ble", device.address, adv.local_name or device.name or "", protocol, url,
                                 adv.rssi))
    found.sort(key=lambda d: (d.protocol != "ekd", -(d.rssi or -200)))
    return found


def scan_ble_sync(timeout_s: float = 5.0) -> list[FoundDevice]:
    """:func:`scan_ble` for synchronous callers."""
    return asyncio.run(scan_ble(timeout_s))


__all__ = ["FoundDevice", "list_serial_ports", "scan_ble", "scan_ble_sync"]
