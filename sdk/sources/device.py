"""``serial://`` and ``ble://``: live sensors through the firmware bridge's transports.

The bridge (:mod:`emotionkd.firmware_bridge.sources`) does the hard parts: the pyserial and
bleak transports, reconnection with backoff, the stall watchdog and the protocol decoders. This
adapter adds what a person at a terminal and an app need on top:

* ``protocol=auto`` (serial): tries EKD, Shimmer3, BITalino and ASCII lines in turn, each for
  ``probe`` seconds (default 3), and keeps the first that decodes samples;
* ``timeout`` (default 10 s): no sample within it after connecting is an error that says what
  happened: bytes arrive but do not decode (wrong protocol or baud) or nothing arrives at all;
* errors opening a port that say the fix: not found, busy, permission denied (with the group
  to join).

Every other query parameter (``baud``, ``rate``, ``unit``, ``channels``, ``name``, ``mode`` …)
goes to the bridge unchanged.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np

from emotionkd.firmware_bridge.errors import ConfigError, ProtocolError, TransportError
from emotionkd.firmware_bridge.samples import SampleBlock
from emotionkd.sdk.sources.base import Source, SourceInfo

logger = logging.getLogger(__name__)

#: the order ``protocol=auto`` tries (ASCII last: its decoder accepts any line with a number)
AUTO_ORDER = ("ekd", "shimmer3", "bitalino", "ascii")
#: seconds a protocol probe waits for a first byte before it passes over a silent port
SILENT_PROBE_S = 1.2


def _bytes_in(source: Any) -> int:
    return int(source.counters().get("bytes_received", 0) or 0)


def _split_own_params(url: str) -> tuple[str, dict[str, str]]:
    """Remove this adapter's parameters (``timeout``, ``probe``, ``protocol=auto``) from a URL."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    own = {k: query.pop(k) for k in ("timeout", "probe") if k in query}
    if query.get("protocol", "").lower() == "auto":
        own["protocol"] = query.pop("protocol").lower()
    return _join(parts.scheme, parts.netloc + parts.path, query), own


def _with_protocol(url: str, protocol: str) -> str:
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    query["protocol"] = protocol
    return _join(parts.scheme, parts.netloc + parts.path, query)


def _join(scheme: str, location: str, query: dict[str, str]) -> str:
    # urlunsplit would turn serial:///dev/x into serial:/dev/x
    return f"{scheme}://{location}" + (f"?{urlencode(query, safe=':,')}" if query else "")


def explain_open_error(exc: BaseException, path: str) -> str | None:
    """One line with the fix for a serial port that cannot be opened, or None if unknown."""
    code = None
    for err in (exc, exc.__cause__, exc.__context__, getattr(exc.__cause__, "__cause__", None)):
        code = getattr(err, "errno", None) or code
    text = " ".join(str(e) for e in (exc, exc.__cause__) if e is not None).lower()
    if code == errno.ENOENT or "no such file" in text:
        return (f"serial port {path} does not exist: is the sensor plugged in? "
                "(`emotionkd-sdk devices` lists the ports)")
    if code in (errno.EACCES, errno.EPERM) or "permission denied" in text:
        group = _owning_group(path)
        return (f"permission denied on {path}: join the group that owns it ({group}): "
                f"sudo usermod -aG {group} $USER, then log out and in again")
    if code in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in text or "busy" in text:
        return (f"serial port {path} is busy: another program holds it (a serial monitor, "
                "another emotionkd, ModemManager); close it and try again")
    return None


def _owning_group(path: str) -> str:
    """The group that owns a device file (``dialout`` on Debian/Ubuntu, ``uucp`` on Arch)."""
    try:
        import grp

        return grp.getgrgid(os.stat(path).st_gid).gr_name
    except (ImportError, KeyError, OSError):
        return "dialout on Debian/Ubuntu/Fedora, uucp on Arch"


class DeviceSource(Source):
    """A serial or BLE sensor (see the module docstring for the URL)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        from emotionkd.firmware_bridge.sources import PROTOCOLS, parse_source_url

        bridge_url, own = _split_own_params(url)
        protocol = (parse_qs(urlsplit(bridge_url).query).get("protocol") or [own.get("protocol", "ekd")])[-1]
        if protocol.lower() not in ("auto", *PROTOCOLS):  # the bridge does not know "auto"; this adapter does
            raise ConfigError(f"unknown protocol {protocol!r} in {url!r}; use one of auto, {', '.join(PROTOCOLS)}")
        try:
            self.timeout_s = float(own.get("timeout", 10.0))
            self.probe_s = float(own.get("probe", 3.0))
        except ValueError as exc:
            raise ConfigError(f"{url}: timeout and probe must be numbers of seconds") from exc
        self.auto = own.get("protocol") == "auto"
        if self.auto and urlsplit(url).scheme.lower() != "serial":
            bridge_url = _with_protocol(bridge_url, "ekd")  # BLE sensors speak EKD
            self.auto = False
        self._bridge_url = bridge_url
        # Parse now so that a bad URL fails before any device is touched.
        self.spec = parse_source_url(_with_protocol(bridge_url, AUTO_ORDER[0]) if self.auto else bridge_url)
        self._gsr: Any = None
        self._pending: list[SampleBlock] = []

    # -- life cycle -------------------------------------------------------------------------
    def open(self) -> None:
        if self._gsr is not None:
            return
        if self.auto:
            self._gsr, self._pending = self._detect()
        else:
            self._gsr = self._start(self._bridge_url)

    def _start(self, url: str, **kwargs: Any) -> Any:
        from emotionkd.firmware_bridge.sources import GsrSource

        try:
            return GsrSource(url, **kwargs).start()
        except TransportError as exc:
            if self.spec.scheme == "serial":
                line = explain_open_error(exc, self.spec.target)
                if line:
                    raise TransportError(line, url=self.url) from exc
            raise

    def _detect(self) -> tuple[Any, list[SampleBlock]]:
        """Try each protocol for ``probe_s``; keep the first that decodes valid samples.

        A protocol that gets no byte at all within :data:`SILENT_PROBE_S` of its start command
        is passed over early, and a port silent to every protocol is reported as "no data" (a
        switched-off sensor), not as a protocol mismatch.
        """
        tried = []
        started = time.monotonic()
        for protocol in AUTO_ORDER:
            url = _with_protocol(self._bridge_url, protocol)
            source = self._start(url, reconnect=False)
            blocks: list[SampleBlock] = []
            opened = time.monotonic()
            deadline = opened + self.probe_s
            try:
                while time.monotonic() < deadline and not self.closed:
                    blocks += source.read(0.1)
                    if any(np.isfinite(b.conductance_us).any() for b in blocks):
                        logger.info("%s speaks %s", self.spec.target, protocol)
                        source.reconnect = True  # probed without; from now on a live link
                        return source, blocks
                    if time.monotonic() - opened > SILENT_PROBE_S and not _bytes_in(source):
                        break
            except TransportError:
                pass
            tried.append((protocol, _bytes_in(source)))
            source.close()
        if not any(n for _, n in tried):
            raise TransportError(
                f"no data from {self.spec.target} in {time.monotonic() - started:.0f} s (tried "
                f"{', '.join(p for p, _ in tried)}): is the sensor switched on and streaming?", url=self.url)
        raise ProtocolError(f"{self.spec.target}: no protocol decodes its bytes (tried "
                            f"{', '.join(f'{p} ({n} bytes, none decoded)' for p, n in tried)}); "
                            "check --baud, or name the protocol with --protocol")

    def close(self) -> None:
        super().close()
        if self._gsr is not None:
            self._gsr.close()
            self._gsr = None

    # -- description ------------------------------------------------------------------------
    @property
    def info(self) -> SourceInfo:
        gsr = self._gsr
        protocol = gsr.spec.protocol if gsr is not None else self.spec.protocol
        rate = gsr.rate_hz if gsr is not None else self.spec.rate_hz
        hello = getattr(getattr(gsr, "decoder", None), "hello", None)  # EKD devices say their name
        name = getattr(hello, "name", None)
        return SourceInfo(device=f"{name or self.spec.target} ({self.spec.scheme})", protocol=protocol, rate_hz=rate)

    def counters(self) -> dict[str, int]:
        if self._gsr is None:
            return {}
        return {k: v for k, v in self._gsr.counters().items() if isinstance(v, int) and not isinstance(v, bool)}

    # -- data -------------------------------------------------------------------------------
    def blocks(self) -> Iterator[SampleBlock]:
        self.open()
        gsr = self._gsr
        pending, self._pending = self._pending, []
        yield from pending
        got_samples = bool(pending)
        started = time.monotonic()
        while not self.closed and self._gsr is not None:
            blocks = gsr.read(0.25)
            if blocks:
                got_samples = True
                yield from blocks
            elif not got_samples and time.monotonic() - started > self.timeout_s:
                raise self._no_data_error()

    def _no_data_error(self) -> Exception:
        counters = self._gsr.counters() if self._gsr is not None else {}
        received = int(counters.get("bytes_received", 0) or counters.get("bytes_read", 0))
        if received:
            return ProtocolError(
                f"{received} bytes arrived from {self.spec.target} in {self.timeout_s:g} s but none decode as "
                f"{self.spec.protocol}: wrong protocol or baud rate? (try --protocol auto, or --baud)")
        return TransportError(
            f"no data from {self.spec.target} in {self.timeout_s:g} s: is the sensor switched on, "
            "streaming and (for BLE) in range?", url=self.url)


__all__ = ["AUTO_ORDER", "DeviceSource", "explain_open_error"]
