"""The device registry: one descriptor per device, every table about devices reads it.

Like BrainFlow's board descriptors, a :class:`DeviceDescriptor` says everything the host knows
about one kind of device: the wire protocol (its name in ``?protocol=``), the default baud rate
and sampling rate, the unit on the wire, which transports reach it, how to build its decoder
from a source URL's options, which emulator imitates it, the hints discovery uses to guess it
(USB vendor ids, port names, BLE services) and its BLE GATT profile(s). The URL parser
(:mod:`~emotionkd.firmware_bridge.source_spec`), the source, ``protocol=auto``, discovery and
the emulators all read :data:`DEVICES`; adding a device is one descriptor here plus its decoder
and emulator modules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from emotionkd.firmware_bridge import ascii_lines, bitalino, ekd, shimmer3
from emotionkd.firmware_bridge.ascii_lines import AsciiLineDecoder
from emotionkd.firmware_bridge.bitalino import BitalinoDecoder
from emotionkd.firmware_bridge.decoding import Decoder
from emotionkd.firmware_bridge.ekd_decoder import EkdBleDecoder, EkdSerialDecoder
from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.shimmer3 import Shimmer3Decoder


@dataclass(frozen=True)
class BleProfile:
    """A GATT service the host streams from: the characteristic it subscribes to (notify) and
    the one it writes commands to. ``framed``: one frame per notification (EKD GATT); else the
    serial byte stream split anywhere (Nordic UART)."""

    mode: str
    service_uuid: str
    notify_uuid: str
    write_uuid: str
    framed: bool


#: the EKD GATT service (PROTOCOL.md) and the Nordic UART Service hobby firmware uses
EKD_GATT: Final = BleProfile("gatt", ekd.SERVICE_UUID, ekd.DATA_CHAR_UUID, ekd.CONTROL_CHAR_UUID, framed=True)
NORDIC_UART: Final = BleProfile("nus", ekd.NUS_SERVICE_UUID, ekd.NUS_TX_CHAR_UUID, ekd.NUS_RX_CHAR_UUID, framed=False)

DecoderFactory = Callable[[float, Mapping[str, str], bool], Decoder[Any]]


@dataclass(frozen=True)
class DeviceDescriptor:
    """Everything the host knows about one kind of device.

    Attributes:
        protocol: the name in ``?protocol=`` and ``--protocol``.
        title: a human name (docs, ``devices``).
        default_baud: serial baud rate when the URL gives none.
        default_rate_hz: sampling rate when the URL gives none (devices that announce their rate
            correct it): the protocol module's ``DEFAULT_RATE_HZ``, which its decoder's default is
            too, so the number is written once.
        wire_unit: what the wire carries (``nS``, ``adc``, ``GSR word`` …; sources always hand µS).
        options: the protocol's own URL parameters (besides ``baud`` and ``rate``).
        make_decoder: ``(rate_hz, options, framed_ble) -> Decoder``.
        emulator: ``module:Class`` of its byte-exact emulator.
        usb_vendor_ids: USB vendor ids that suggest this protocol (discovery).
        port_hints: substrings of a port path that suggest it (``rfcomm``: Bluetooth Classic).
        ble_profiles: the GATT services it streams over (none: serial only).
        probe_rank: order in ``protocol=auto`` (lower first; a protocol whose decoder accepts
            almost anything, like ASCII lines, goes last).
    """

    protocol: str
    title: str
    default_baud: int
    default_rate_hz: float
    wire_unit: str
    options: tuple[str, ...]
    make_decoder: DecoderFactory
    emulator: str
    usb_vendor_ids: tuple[int, ...] = ()
    port_hints: tuple[str, ...] = ()
    ble_profiles: tuple[BleProfile, ...] = ()
    probe_rank: int = 0

    def decoder(self, rate_hz: float, options: Mapping[str, str] | None = None, *, framed_ble: bool = False) -> Decoder[Any]:
        """A fresh decoder for this device (``options``: the URL's protocol parameters)."""
        try:
            return self.make_decoder(rate_hz, dict(options or {}), framed_ble)
        except ValueError as exc:
            raise ConfigError(f"bad option for protocol {self.protocol!r}: {exc}") from exc

    def emulator_class(self) -> type[Any]:
        """The emulator class (imported on first use: emulators need a pty)."""
        module, name = self.emulator.split(":")
        cls: type[Any] = getattr(importlib.import_module(module), name)
        return cls

    def ble_profile(self, mode: str) -> BleProfile:
        for profile in self.ble_profiles:
            if profile.mode == mode:
                return profile
        modes = ", ".join(p.mode for p in self.ble_profiles) or "none"
        raise ConfigError(f"protocol {self.protocol!r} has no BLE mode {mode!r} (modes: {modes})")


def _ekd(rate_hz: float, options: Mapping[str, str], framed_ble: bool) -> Decoder[Any]:
    return EkdBleDecoder(rate_hz) if framed_ble else EkdSerialDecoder(rate_hz)


def _ascii(rate_hz: float, options: Mapping[str, str], framed_ble: bool) -> Decoder[Any]:
    kwargs: dict[str, Any] = {"unit": options.get("unit", "adc")}
    if "cal" in options:
        kwargs["grove_cal"] = float(options["cal"])
    return AsciiLineDecoder(rate_hz, **kwargs)


def _shimmer3(rate_hz: float, options: Mapping[str, str], framed_ble: bool) -> Decoder[Any]:
    return Shimmer3Decoder(rate_hz)


def _bitalino(rate_hz: float, options: Mapping[str, str], framed_ble: bool) -> Decoder[Any]:
    channels = tuple(int(c) for c in options.get("channels", "2").split(",") if c != "")
    eda = int(options.get("eda", channels[0] if len(channels) == 1 else 2))
    return BitalinoDecoder(rate_hz, channels=channels, eda_channel=eda)


_EMU = "emotionkd.firmware_bridge.emulators"

#: every supported device, by protocol name
DEVICES: Final[dict[str, DeviceDescriptor]] = {d.protocol: d for d in (
    DeviceDescriptor("ekd", "EKD firmware (ESP32/nRF52, PROTOCOL.md)", 115200, ekd.DEFAULT_RATE_HZ, "nS or ADC (HELLO calibration)",
                     (), _ekd, f"{_EMU}.ekd:EkdEmulator", usb_vendor_ids=(0x303A,),
                     ble_profiles=(EKD_GATT, NORDIC_UART), probe_rank=0),
    DeviceDescriptor("ascii", "one number per line (Seeed Grove GSR, Arduino sketches)", 9600, ascii_lines.DEFAULT_RATE_HZ,
                     "adc, uS, kOhm … (unit=)", ("unit", "cal"), _ascii, f"{_EMU}.ascii:AsciiEmulator",
                     usb_vendor_ids=(0x2341, 0x2886), probe_rank=3),
    DeviceDescriptor("shimmer3", "Shimmer3 GSR+", 115200, shimmer3.DEFAULT_RATE_HZ, "GSR word (range + 12-bit ADC)",
                     (), _shimmer3, f"{_EMU}.shimmer3:Shimmer3Emulator", port_hints=("rfcomm",), probe_rank=1),
    DeviceDescriptor("bitalino", "BITalino (EDA on A3)", 115200, bitalino.DEFAULT_RATE_HZ, "10-bit ADC",
                     ("channels", "eda"), _bitalino, f"{_EMU}.bitalino:BitalinoEmulator", probe_rank=2),
)}

#: protocol names, in registry order
PROTOCOLS: Final = tuple(DEVICES)
#: the protocol a source URL without ``protocol=`` speaks (our firmware's); ``protocol=auto``
#: starts from its baud and rate, and BLE ``auto`` is it
DEFAULT_PROTOCOL: Final = "ekd"
#: default baud rate and sampling rate per protocol (read from the descriptors)
DEFAULT_BAUD: Final = {p: d.default_baud for p, d in DEVICES.items()}
DEFAULT_RATE_HZ: Final = {p: d.default_rate_hz for p, d in DEVICES.items()}
#: the order ``protocol=auto`` tries
AUTO_ORDER: Final = tuple(sorted(DEVICES, key=lambda p: DEVICES[p].probe_rank))
#: every BLE profile any device streams over (discovery marks devices advertising one)
BLE_PROFILES: Final = tuple(dict.fromkeys(p for d in DEVICES.values() for p in d.ble_profiles))


def device(protocol: str) -> DeviceDescriptor:
    """The descriptor of ``protocol``.

    Raises:
        ConfigError: unknown protocol (names the known ones).
    """
    try:
        return DEVICES[protocol.lower()]
    except KeyError:
        raise ConfigError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}") from None


__all__ = [
    "AUTO_ORDER",
    "BLE_PROFILES",
    "DEFAULT_BAUD",
    "DEFAULT_PROTOCOL",
    "DEFAULT_RATE_HZ",
    "DEVICES",
    "EKD_GATT",
    "NORDIC_UART",
    "PROTOCOLS",
    "BleProfile",
    "DeviceDescriptor",
    "device",
]
