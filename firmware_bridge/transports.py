"""The transports behind :class:`~emotionkd.firmware_bridge.sources.GsrSource`: serial and BLE.

Both run in the source's background thread, feed the source's decoder and survive link loss:

* **Serial** (pyserial): open (exclusive), assert DTR/RTS where the port has them (a
  pseudo-terminal answers ENOTTY: tolerated), send the protocol's start-up commands (EKD: HELLO
  request + START, sent again after every reconnect), read with a 0.1 s timeout. An unplugged
  device makes pyserial fail (EIO / "readiness to read but returned no data"): that is a
  :class:`TransportError`, followed by reconnection attempts with capped exponential backoff.
* **BLE** (bleak): find the device by address or advertised name, connect with a disconnected
  callback, subscribe to the DATA characteristic (or Nordic UART TX), write the start-up commands
  to CONTROL (or Nordic UART RX, split to the characteristic's maximum write size), and watch for
  silence: no notification for ``stall_timeout_s`` counts as a disconnect (a device flushes at
  least every 250 ms). Reconnects with the same backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from typing import TYPE_CHECKING, Any

from emotionkd.firmware_bridge import ekd
from emotionkd.firmware_bridge.errors import TransportError

if TYPE_CHECKING:
    import serial

    from emotionkd.firmware_bridge.sources import GsrSource

logger = logging.getLogger(__name__)

#: pause between start-up commands (devices such as the Shimmer3 process one at a time)
COMMAND_GAP_S = 0.05
SCAN_TIMEOUT_S = 10.0


class _LinkKeeper:
    """Link bookkeeping shared by the transports: first failure, outage, counters, backoff."""

    def __init__(self, source: GsrSource) -> None:
        self.source = source
        self.attempt = 0
        self.connected_once = False
        self.down_since: float | None = None

    def resume(self) -> None:
        """The link is back: let the decoder account for the outage (drop partial bytes, fill)."""
        if self.down_since is None:
            return
        with self.source._decoder_lock:
            fill = self.source.decoder.link_reset(time.monotonic() - self.down_since)
        self.source._deliver(fill)

    def connected(self) -> None:
        self.source._connected()
        self.connected_once = True
        self.attempt = 0
        self.down_since = None

    def failed(self, error: TransportError) -> float | None:
        """Account a failure; returns the delay before the next attempt, or None to give up."""
        source = self.source
        if not self.connected_once:
            source._failed_first(error)
            return None
        if self.down_since is None:
            source.transport_counters.disconnects += 1
            self.down_since = time.monotonic()
        source.transport_counters.last_error = str(error)
        if not source.reconnect:
            source._fatal(error)
            return None
        delay = source.backoff.delay_s(self.attempt)
        self.attempt += 1
        logger.info("%s; reconnecting in %.1f s", error, delay)
        return delay


def open_serial(path: str, baud: int, *, read_timeout_s: float = 0.1) -> serial.Serial:
    """Open a serial port for streaming.

    Raises:
        TransportError: the port does not exist, is busy or is not accessible.
    """
    import serial

    port = serial.Serial()
    port.port = path
    port.baudrate = baud
    port.timeout = read_timeout_s
    port.write_timeout = 2.0
    port.exclusive = True
    try:
        port.open()
    except (serial.SerialException, OSError, ValueError) as exc:
        raise TransportError(
            f"cannot open serial port {path}: {exc}. Check the path (ls /dev/tty* or "
            "`emotionkd-sdk devices`), that no other program holds it, and on Linux that you are in "
            "the 'dialout' group", url=f"serial://{path}") from exc
    assert_modem_lines(port)
    return port


def assert_modem_lines(port: Any) -> None:
    """Raise DTR and RTS (USB-serial boards wait for DTR); pseudo-terminals have none: ignore."""
    for line in ("dtr", "rts"):
        try:
            setattr(port, line, True)
        except OSError as exc:
            if exc.errno not in (errno.ENOTTY, errno.EINVAL):
                raise TransportError(f"cannot set {line.upper()} on {port.port}: {exc}") from exc
        except Exception as exc:  # pyserial wraps some ioctl errors in SerialException
            inner = exc.__context__ or exc.__cause__
            if not (isinstance(inner, OSError) and inner.errno in (errno.ENOTTY, errno.EINVAL)):
                raise TransportError(f"cannot set {line.upper()} on {port.port}: {exc}") from exc


def run_serial(source: GsrSource) -> None:
    """Thread body: keep a serial link up and feed the source until it is closed."""
    import serial

    spec, decoder, stop = source.spec, source.decoder, source._stop
    url = source.url
    link = _LinkKeeper(source)
    while not stop.is_set():
        port = None
        try:
            port = open_serial(spec.target, spec.baud)
            port.reset_input_buffer()
            link.resume()
            for command in decoder.startup_commands():
                port.write(command)
                port.flush()
                _drain(port, source, COMMAND_GAP_S)
            link.connected()
            last_rx = time.monotonic()
            while not stop.is_set():
                waiting = port.in_waiting
                data = port.read(max(1, min(waiting, 65536)))
                now = time.monotonic()
                if data:
                    last_rx = now
                    source._feed(data)
                elif source.stall_timeout_s is not None and now - last_rx > source.stall_timeout_s:
                    source.transport_counters.stalls += 1
                    raise TransportError(f"{url}: no data for {source.stall_timeout_s:g} s (stalled link)", url=url)
            with contextlib.suppress(Exception):
                for command in decoder.stop_commands():
                    port.write(command)
                port.flush()
            port.close()
            return
        except (serial.SerialException, OSError) as exc:
            error = exc if isinstance(exc, TransportError) else TransportError(
                f"serial link {spec.target} lost: {exc}; the device was unplugged or reset", url=url)
            if port is not None:
                with contextlib.suppress(Exception):
                    port.close()
            delay = link.failed(error)
            if delay is None:
                return
            stop.wait(delay)


def _drain(port: Any, source: GsrSource, seconds: float) -> None:
    """Read (and decode) whatever arrives during ``seconds``: replies between commands."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        data = port.read(max(1, port.in_waiting))
        if data:
            source._feed(data)


# --- BLE ------------------------------------------------------------------------------------------

def run_ble(source: GsrSource) -> None:
    """Thread body: an asyncio loop running the BLE link."""
    try:
        asyncio.run(_ble_main(source))
    except Exception as exc:  # an unexpected failure must still reach the consumer
        error = TransportError(f"BLE transport for {source.url} failed: {exc!r}", url=source.url)
        source._failed_first(error)
        source._fatal(error)


async def _find_ble_device(source: GsrSource) -> Any:
    from bleak import BleakScanner

    spec = source.spec
    timeout = float(spec.options.get("scan_timeout", SCAN_TIMEOUT_S))
    if spec.by_name:
        device = await BleakScanner.find_device_by_name(spec.target, timeout=timeout)
    else:
        device = await BleakScanner.find_device_by_address(spec.target, timeout=timeout)
    if device is None:
        kind = "name" if spec.by_name else "address"
        raise TransportError(f"BLE device with {kind} {spec.target!r} not found within {timeout:g} s; "
                             "is it powered, advertising and in range (and not connected to another host)?",
                             url=source.url)
    return device


def _att_mtu(client: Any, char_uuid: str) -> int:
    """The link's ATT MTU, from the characteristic's maximum write size (+3 bytes of ATT header).

    (``BleakClient.mtu_size`` warns on BlueZ unless the MTU was acquired; the characteristic
    carries BlueZ's ``MTU`` property since 5.62 and the 23-byte minimum otherwise.)
    """
    char = client.services.get_characteristic(char_uuid)
    if char is None:
        return 23
    return int(char.max_write_without_response_size) + 3


async def _ble_write(client: Any, char_uuid: str, data: bytes, nus: bool) -> None:
    char = client.services.get_characteristic(char_uuid)
    if char is None:
        raise TransportError(f"the device has no characteristic {char_uuid}; is it running EKD firmware?")
    if nus:
        # the byte stream may be split anywhere: send pieces that fit one ATT write
        size = max(20, int(getattr(char, "max_write_without_response_size", 20)))
        for start in range(0, len(data), size):
            await client.write_gatt_char(char, data[start : start + size], response=False)
    else:
        # a CMD frame must arrive whole: write with response (BlueZ does long writes when needed)
        await client.write_gatt_char(char, data, response=True)


async def _ble_main(source: GsrSource) -> None:
    from bleak import BleakClient
    from bleak.exc import BleakError

    spec, decoder, stop = source.spec, source.decoder, source._stop
    nus = spec.options.get("mode", "gatt") == "nus"
    notify_uuid = ekd.NUS_TX_CHAR_UUID if nus else ekd.DATA_CHAR_UUID
    write_uuid = ekd.NUS_RX_CHAR_UUID if nus else ekd.CONTROL_CHAR_UUID
    loop = asyncio.get_running_loop()
    link = _LinkKeeper(source)
    while not stop.is_set():
        lost = asyncio.Event()
        last_rx = [time.monotonic()]

        def on_disconnect(_client: Any, lost: asyncio.Event = lost) -> None:
            loop.call_soon_threadsafe(lost.set)

        def on_notify(_char: Any, data: bytearray, last_rx: list[float] = last_rx) -> None:
            last_rx[0] = time.monotonic()
            source._feed(bytes(data))

        try:
            device = await _find_ble_device(source)
            client = BleakClient(device, disconnected_callback=on_disconnect)
            await client.connect()
            try:
                await client.start_notify(notify_uuid, on_notify)
                source.transport_counters.mtu = _att_mtu(client, notify_uuid)
                link.resume()
                for command in decoder.startup_commands():
                    await _ble_write(client, write_uuid, command, nus)
                link.connected()
                last_rx[0] = time.monotonic()
                while not stop.is_set() and not lost.is_set():
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(lost.wait(), 0.1)
                    if (source.stall_timeout_s is not None
                            and time.monotonic() - last_rx[0] > source.stall_timeout_s):
                        source.transport_counters.stalls += 1
                        raise TransportError(f"{source.url}: no notification for {source.stall_timeout_s:g} s "
                                             "(stalled link)", url=source.url)
                if lost.is_set():
                    raise TransportError(f"{source.url}: the BLE device disconnected", url=source.url)
                with contextlib.suppress(Exception):
                    for command in decoder.stop_commands():
                        await _ble_write(client, write_uuid, command, nus)
                return
            finally:
                with contextlib.suppress(Exception):
                    await client.disconnect()
        except (TimeoutError, BleakError, TransportError, OSError) as exc:
            error = exc if isinstance(exc, TransportError) else TransportError(
                f"BLE link to {spec.target} failed: {exc}", url=source.url)
            delay = link.failed(error)
            if delay is None:
                return
            await asyncio.to_thread(stop.wait, delay)


__all__ = ["COMMAND_GAP_S", "assert_modem_lines", "open_serial", "run_ble", "run_serial"]
