"""Finding devices: serial ports (pyserial) and BLE devices (bleak), with a source URL for each.

The one discovery module: the SDK's ``devices`` command prints these; each entry carries the URL
to pass to :class:`~emotionkd.firmware_bridge.sources.GsrSource`. The guesses come from the
device registry (:mod:`~emotionkd.firmware_bridge.devices`: USB vendor ids, port-name hints and
BLE services per device), so a new device brings its own hints.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from emotionkd.firmware_bridge.devices import DEVICES, NORDIC_UART
from emotionkd.firmware_bridge.errors import TransportError


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
        protocol = _guess_serial(port.vid, port.device)
        url = f"serial://{port.device}?protocol={protocol or 'ekd'}"
        found.append(FoundDevice("serial", port.device, name or port.device, protocol, url))
    return found


def _guess_serial(vid: int | None, path: str) -> str:
    """The protocol a port most likely speaks: its USB vendor id, else a port-name hint, else ''."""
    for descriptor in DEVICES.values():
        if vid is not None and vid in descriptor.usb_vendor_ids:
            return descriptor.protocol
    for descriptor in DEVICES.values():
        if any(hint in path for hint in descriptor.port_hints):
            return descriptor.protocol
    return ""


def _guess_ble(service_uuids: set[str]) -> tuple[str, str]:
    """(protocol, BLE mode) for a device advertising ``service_uuids``, or ("", "")."""
    for descriptor in DEVICES.values():
        for profile in descriptor.ble_profiles:
            if profile.service_uuid in service_uuids:
                return descriptor.protocol, profile.mode
    return "", ""


async def scan_ble(timeout_s: float = 5.0) -> list[FoundDevice]:
    """BLE devices advertising during ``timeout_s``; EKD devices (service UUID) first.

    Raises:
        TransportError: no Bluetooth adapter / BlueZ not reachable.
    """
    from bleak import BleakScanner
    from bleak.exc import BleakError

    try:
        seen = await BleakScanner.discover(timeout=timeout_s, return_adv=True)
    except (BleakError, OSError, EOFError) as exc:
        raise TransportError(
            f"BLE scan unavailable ({type(exc).__name__}: {exc or 'no detail'}); is there a Bluetooth "
            "adapter, and is bluetoothd running (systemctl status bluetooth)?") from exc
    except Exception as exc:  # dbus-fast raises its own errors when there is no system bus
        raise TransportError(f"BLE scan unavailable: {type(exc).__name__}: {exc}") from exc
    found = []
    for device, adv in seen.values():
        protocol, mode = _guess_ble({u.lower() for u in adv.service_uuids})
        url = f"ble://{device.address}?protocol={protocol or 'ekd'}" + ("&mode=nus" if mode == NORDIC_UART.mode else "")
        found.append(FoundDevice("ble", device.address, adv.local_name or device.name or "", protocol, url,
                                 adv.rssi))
    found.sort(key=lambda d: (d.protocol != "ekd", -(d.rssi or -200)))
    return found


def scan_ble_sync(timeout_s: float = 5.0) -> list[FoundDevice]:
    """:func:`scan_ble` for synchronous callers."""
    return asyncio.run(scan_ble(timeout_s))


__all__ = ["FoundDevice", "list_serial_ports", "scan_ble", "scan_ble_sync"]
