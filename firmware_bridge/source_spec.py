"""Source URLs, parsed once into a typed spec per scheme, through an open registry of schemes.

Like pyserial's ``serial_for_url`` URL handlers: a scheme maps to a parser (URL → frozen spec)
and to the source class that opens such a spec. The parse happens once, where the URL enters
(the CLI, :func:`~emotionkd.sdk.sources.open_source`); everything after it passes the spec, never
a re-serialised URL. A new transport is one module that calls :func:`register_scheme`.

::

    serial:///dev/ttyUSB0?protocol=ekd&baud=115200
    serial:///dev/ttyACM0?protocol=ascii&unit=adc&rate=10&baud=9600
    serial:///dev/rfcomm0?protocol=shimmer3&rate=128
    serial:///dev/rfcomm1?protocol=bitalino&rate=100&channels=2&eda=2
    serial:///dev/ttyUSB0?protocol=auto&probe=3       (try each protocol for 3 s)
    ble://AA:BB:CC:DD:EE:FF?protocol=ekd              (by address; macOS: the CoreBluetooth UUID)
    ble://EKD-GSR-01?protocol=ekd  /  ble://?name=EKD-GSR-01
    ble://AA:BB:CC:DD:EE:FF?protocol=ekd&mode=nus     (EKD serial stream over Nordic UART)

Both device schemes take ``timeout`` (s without a sample after connecting that is an error,
default 10); BLE takes ``scan_timeout`` (s, default 10). Protocol options (``unit``, ``cal``,
``channels``, ``eda``) are kept in :attr:`SerialSpec.options` for the device's decoder.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Final, overload
from urllib.parse import parse_qs, unquote, urlsplit

from emotionkd.firmware_bridge.bounds import rate_problem
from emotionkd.firmware_bridge.devices import (
    DEFAULT_PROTOCOL,
    NORDIC_UART,
    PROTOCOLS,
    BleProfile,
    DeviceDescriptor,
    device,
)
from emotionkd.firmware_bridge.errors import ConfigError

_BLE_ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")
#: seconds without a sample after connecting that is an error (``timeout=``)
DEFAULT_NO_DATA_TIMEOUT_S: Final = 10.0
#: seconds ``protocol=auto`` gives each protocol (``probe=``)
DEFAULT_PROBE_S: Final = 3.0
#: seconds a BLE scan looks for the device (``scan_timeout=``)
DEFAULT_SCAN_TIMEOUT_S: Final = 10.0
#: the device a URL without ``protocol=`` means (its baud and rate are the specs' defaults)
_DEFAULT_DEVICE: Final = device(DEFAULT_PROTOCOL)


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source URL (base of the per-scheme specs). ``url``: the URL as given."""

    scheme: ClassVar[str] = ""
    url: str

    def describe(self, device: str | None = None) -> str:
        """The source as a person reads it: the live view, the dashboard, logs and a recording's
        ``device`` line all show this (each scheme says it its own way).

        Args:
            device: what the source learned about the device once open (the name an EKD HELLO
                carries, the device a recording names, an LSL stream's host), when known.
        """
        return device or self.url


@dataclass(frozen=True)
class _DeviceSpecBase(SourceSpec):
    """What the device schemes share: ``target``, the port path, BLE address or name."""

    target: str = ""

    def describe(self, device: str | None = None) -> str:
        """``/dev/ttyUSB0 (serial)``, ``AA:BB:CC:DD:EE:FF (ble)``, or the name the device said
        instead of the target (``EKD-GSR-01 (serial)``)."""
        return f"{device or self.target} ({self.scheme})"


@dataclass(frozen=True)
class SerialSpec(_DeviceSpecBase):
    """``serial://PATH?…``.

    Attributes:
        target: the serial device path.
        protocol: a protocol of the device registry, or ``auto``.
        baud: baud rate; rate_hz: nominal (or requested) sampling rate.
        options: the protocol's own parameters (unit, cal, channels, eda).
        timeout_s: no sample this long after connecting is an error that says why.
        probe_s: ``protocol=auto``: seconds each protocol is tried.
        given: the parameters the URL set (``baud``, ``rate``); the others are the protocol's
            defaults, so :meth:`for_protocol` replaces them.
    """

    scheme: ClassVar[str] = "serial"
    protocol: str = DEFAULT_PROTOCOL
    baud: int = _DEFAULT_DEVICE.default_baud
    rate_hz: float = _DEFAULT_DEVICE.default_rate_hz
    options: dict[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_NO_DATA_TIMEOUT_S
    probe_s: float = DEFAULT_PROBE_S
    given: frozenset[str] = frozenset()
    by_name: ClassVar[bool] = False

    def for_protocol(self, protocol: str) -> SerialSpec:
        """This spec speaking ``protocol`` (``protocol=auto`` probes with it): the baud and rate
        the URL gave, else that protocol's defaults from the device registry."""
        known = device(protocol)
        return replace(self, protocol=known.protocol,
                       baud=self.baud if "baud" in self.given else known.default_baud,
                       rate_hz=self.rate_hz if "rate" in self.given else known.default_rate_hz)


@dataclass(frozen=True)
class BleSpec(_DeviceSpecBase):
    """``ble://ADDRESS-or-NAME?…``.

    Attributes:
        target: BLE address (or CoreBluetooth UUID) or advertised name; by_name: which.
        protocol: ``ekd`` (a protocol with a BLE profile in the device registry).
        mode: the device's BLE profile (``gatt``: EKD frames; ``nus``: serial stream over UART).
        rate_hz: nominal sampling rate; options: the rest of the query.
        timeout_s: no sample this long after connecting is an error; scan_timeout_s: scan time.
    """

    scheme: ClassVar[str] = "ble"
    by_name: bool = False
    protocol: str = DEFAULT_PROTOCOL
    mode: str = "gatt"
    rate_hz: float = _DEFAULT_DEVICE.default_rate_hz
    options: dict[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_NO_DATA_TIMEOUT_S
    scan_timeout_s: float = DEFAULT_SCAN_TIMEOUT_S
    baud: int = 0

    @property
    def profile(self) -> BleProfile:
        """The GATT service, notify and write characteristics this spec streams over."""
        return NORDIC_UART if self.mode == NORDIC_UART.mode else device(self.protocol).ble_profile(self.mode)


DeviceSpec = SerialSpec | BleSpec


def query_of(url: str) -> tuple[Any, dict[str, str]]:
    """``urlsplit(url)`` and its query (last value wins)."""
    parts = urlsplit(url)
    if not parts.scheme or "://" not in url:
        raise ConfigError(f"{url!r} is not a source URL; use serial:///dev/ttyUSB0, ble://ADDRESS, "
                          "replay://file.csv, sim:// or lsl://name")
    return parts, {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}


@dataclass
class SourceUrl:
    """A source URL split once, its query taken parameter by parameter: every scheme's parser
    reads its numbers here, so they are checked, and refused in the same words, whatever the
    scheme.

    Attributes:
        scheme: ``serial``, ``ble``, ``replay``, ``sim``, ``lsl`` (lower case).
        location: what follows ``//`` up to ``?`` (a path, an address, a name; may be empty).
        params: the query parameters not yet taken (last value wins).
        raw: the URL as given.
    """

    scheme: str
    location: str
    params: dict[str, str] = field(default_factory=dict)
    raw: str = ""

    @classmethod
    def parse(cls, url: str) -> SourceUrl:
        parts, params = query_of(url)
        return cls(parts.scheme.lower(), parts.netloc + parts.path, params, url)

    def given(self, key: str) -> bool:
        """Whether the URL sets ``key`` to a value (not yet taken)."""
        return bool(self.params.get(key))

    def take(self, key: str, default: str | None = None) -> str | None:
        """Remove and return one parameter (so that leftovers can be refused as unknown)."""
        return self.params.pop(key, default)

    def take_float(self, key: str, default: float | None) -> float | None:
        """A number (``default`` when absent or empty)."""
        value = self.take(key)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except ValueError as exc:
            raise ConfigError(f"{self.raw}: parameter {key}={value!r} must be a number") from exc

    def take_positive(self, key: str, default: float) -> float:
        """A finite number above zero (``default`` when absent or empty)."""
        return self._positive(key, self.take_float(key, default))

    def _positive(self, key: str, value: float | None) -> float:
        if value is None or not (value > 0 and math.isfinite(value)):
            raise ConfigError(f"{self.raw}: parameter {key} must be a positive number, got {value!r}")
        return value

    @overload
    def take_rate(self, key: str, default: float) -> float: ...

    @overload
    def take_rate(self, key: str, default: None) -> float | None: ...

    def take_rate(self, key: str, default: float | None) -> float | None:
        """A sampling rate (Hz) inside the plausible range of :func:`~emotionkd.firmware_bridge.bounds.rate_problem`
        (``default`` when absent or empty; None: the source finds the rate itself)."""
        value = self.take_float(key, default)
        if value is None:
            return None
        problem = rate_problem(self._positive(key, value))
        if problem is not None:
            raise ConfigError(f"{self.raw}: parameter {key}: {problem}")
        return value

    def take_int(self, key: str, default: int) -> int:
        """A whole number (``default`` when absent or empty)."""
        value = self.take_float(key, float(default))
        if value is None or value != int(value):
            raise ConfigError(f"{self.raw}: parameter {key} must be a whole number, got {value!r}")
        return int(value)

    def refuse_leftovers(self, known: str) -> None:
        """Raise a :class:`ConfigError` naming parameters nobody took."""
        if self.params:
            raise ConfigError(
                f"{self.raw}: unknown parameter(s) {', '.join(sorted(self.params))}; "
                f"{self.scheme}:// takes {known}")


def _common(parsed: SourceUrl) -> tuple[str, DeviceDescriptor, float, float]:
    """The parameters both device schemes take: the protocol (or ``auto``), the device whose
    defaults apply (``auto``: the default protocol's), the rate and the no-data timeout."""
    protocol = (parsed.take("protocol", DEFAULT_PROTOCOL) or DEFAULT_PROTOCOL).lower()
    known_names = ("auto", *PROTOCOLS)
    if protocol not in known_names:
        raise ConfigError(f"unknown protocol {protocol!r} in {parsed.raw!r}; use one of {', '.join(known_names)}")
    known = device(DEFAULT_PROTOCOL if protocol == "auto" else protocol)
    rate_hz = parsed.take_rate("rate", known.default_rate_hz)
    timeout_s = parsed.take_positive("timeout", DEFAULT_NO_DATA_TIMEOUT_S)
    return protocol, known, rate_hz, timeout_s


def parse_serial(url: str) -> SerialSpec:
    """Parse a ``serial://`` URL (see the module docstring)."""
    parsed = SourceUrl.parse(url)
    given = frozenset(k for k in ("baud", "rate") if parsed.given(k))
    protocol, known, rate_hz, timeout_s = _common(parsed)
    baud = parsed.take_positive("baud", known.default_baud)
    if baud != int(baud):
        raise ConfigError(f"{url}: parameter baud must be a whole number, got {baud!r}")
    probe_s = parsed.take_positive("probe", DEFAULT_PROBE_S)
    target = unquote(parsed.location)
    if not target:
        raise ConfigError(f"no serial device in {url!r}; write serial:///dev/ttyUSB0?protocol=ekd")
    return SerialSpec(url, target, protocol, int(baud), rate_hz, parsed.params, timeout_s, probe_s, given)


def parse_ble(url: str) -> BleSpec:
    """Parse a ``ble://`` URL (see the module docstring)."""
    parsed = SourceUrl.parse(url)
    if parsed.params.get("protocol", "").lower() == "auto":
        parsed.params["protocol"] = DEFAULT_PROTOCOL  # BLE sensors speak EKD
    protocol, _, rate_hz, timeout_s = _common(parsed)
    scan_timeout_s = parsed.take_positive("scan_timeout", DEFAULT_SCAN_TIMEOUT_S)
    parsed.take("baud")  # meaningless over BLE; accepted as before
    target = unquote(parsed.location).strip("/")
    name = parsed.take("name", "")
    if name:
        target = name
    if not target:
        raise ConfigError(f"no BLE address or name in {url!r}; write ble://AA:BB:CC:DD:EE:FF?protocol=ekd")
    mode = (parsed.take("mode", "gatt") or "gatt").lower()
    if mode == NORDIC_UART.mode:
        pass  # any protocol's byte stream can ride the Nordic UART
    elif not device(protocol).ble_profiles:
        raise ConfigError(f"protocol {protocol!r} has no BLE transport here; its devices appear as serial ports")
    else:
        device(protocol).ble_profile(mode)
    return BleSpec(url, target, not _BLE_ADDRESS.match(target), protocol, mode, rate_hz, parsed.params, timeout_s,
                   scan_timeout_s)


# --- the registry of schemes ------------------------------------------------------------------

@dataclass(frozen=True)
class Scheme:
    """One URL scheme: ``parse`` (``module:function``, URL → spec) and ``source``
    (``module:Class``, called with the spec). Both are imported on first use, so that pyserial,
    bleak or pylsl cost nothing to an app that never uses their scheme."""

    name: str
    parse: str
    source: str
    example: str


_SCHEMES: dict[str, Scheme] = {}


def register_scheme(name: str, parse: str, source: str, example: str) -> None:
    """Add (or replace) a URL scheme: ``parse`` and ``source`` as ``module:attribute``."""
    _SCHEMES[name.lower()] = Scheme(name.lower(), parse, source, example)


def schemes() -> dict[str, Scheme]:
    """The registered schemes, by name."""
    return dict(_SCHEMES)


def _load(ref: str) -> Any:
    module, attribute = ref.split(":")
    return getattr(importlib.import_module(module), attribute)


def parse_source_url(url: str) -> SourceSpec:
    """Parse ``url`` once into the typed spec its scheme defines.

    Raises:
        ConfigError: not a URL, unknown scheme (names the known ones), or bad parameters.
    """
    parts, _ = query_of(url)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ConfigError(f"unknown source scheme {parts.scheme!r} in {url!r}; use one of "
                          + ", ".join(f"{s}://" for s in _SCHEMES))
    spec: SourceSpec = _load(scheme.parse)(url)
    return spec


def source_class(spec: SourceSpec) -> Any:
    """The class that opens ``spec`` (imported on first use)."""
    return _load(_SCHEMES[spec.scheme].source)


register_scheme("serial", f"{__name__}:parse_serial", "emotionkd.firmware_bridge.sources:GsrSource",
                "serial:///dev/ttyUSB0?protocol=ekd")
register_scheme("ble", f"{__name__}:parse_ble", "emotionkd.firmware_bridge.sources:GsrSource",
                "ble://AA:BB:CC:DD:EE:FF?protocol=ekd")

__all__ = [
    "DEFAULT_NO_DATA_TIMEOUT_S",
    "DEFAULT_PROBE_S",
    "DEFAULT_SCAN_TIMEOUT_S",
    "PROTOCOLS",
    "BleSpec",
    "DeviceSpec",
    "Scheme",
    "SerialSpec",
    "SourceSpec",
    "SourceUrl",
    "parse_ble",
    "parse_serial",
    "parse_source_url",
    "query_of",
    "register_scheme",
    "schemes",
    "source_class",
]
