"""The transports behind :class:`~emotionkd.firmware_bridge.sources.GsrSource`: serial and BLE.

A transport only moves bytes: it calls a :class:`~emotionkd.firmware_bridge.link.LinkProtocol`
(connection_made → start-up commands, data_received, connection_lost, stop_commands) and asks a
:class:`~emotionkd.firmware_bridge.link.LinkSupervisor` whether and when to reconnect. Serial
runs in a thread (pyserial blocks); BLE is a coroutine (:func:`ble_session`) that runs in the
caller's event loop (the source's async face) or in a thread's loop (its sync face). Both survive
link loss:

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
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from emotionkd.firmware_bridge.errors import TransportError
from emotionkd.firmware_bridge.link import LinkProtocol, LinkSupervisor
from emotionkd.firmware_bridge.source_spec import BleSpec, SerialSpec

if TYPE_CHECKING:
    import serial

logger = logging.getLogger(__name__)

#: pause between start-up commands (devices such as the Shimmer3 process one at a time)
COMMAND_GAP_S = 0.05


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


def run_serial(spec: SerialSpec, protocol: LinkProtocol, supervisor: LinkSupervisor, stop: threading.Event,
               stall_timeout_s: float | None) -> None:
    """Thread body: keep a serial link up and feed ``protocol`` until ``stop`` is set."""
    import serial

    url = spec.url
    while not stop.is_set():
        port = None
        try:
            port = open_serial(spec.target, spec.baud)
            port.reset_input_buffer()
            for command in protocol.connection_made():
                port.write(command)
                port.flush()
                _drain(port, protocol, COMMAND_GAP_S)
            supervisor.connected()
            last_rx = time.monotonic()
            while not stop.is_set():
                waiting = port.in_waiting
                data = port.read(max(1, min(waiting, 65536)))
                now = time.monotonic()
                if data:
                    last_rx = now
                    protocol.data_received(data)
                else:
                    supervisor.check_stall(now - last_rx, stall_timeout_s, url, "data")
            with contextlib.suppress(Exception):
                for command in protocol.stop_commands():
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
            delay = supervisor.link_failed(error, protocol)
            if delay is None:
                return
            stop.wait(delay)


def _drain(port: Any, protocol: LinkProtocol, seconds: float) -> None:
    """Read (and decode) whatever arrives during ``seconds``: replies between commands."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        data = port.read(max(1, port.in_waiting))
        if data:
            protocol.data_received(data)


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


# --- BLE ------------------------------------------------------------------------------------------

async def _find_ble_device(spec: BleSpec) -> Any:
    from bleak import BleakScanner

    timeout = spec.scan_timeout_s
    if spec.by_name:
        device = await BleakScanner.find_device_by_name(spec.target, timeout=timeout)
    else:
        device = await BleakScanner.find_device_by_address(spec.target, timeout=timeout)
    if device is None:
        kind = "name" if spec.by_name else "address"
        raise TransportError(f"BLE device with {kind} {spec.target!r} not found within {timeout:g} s; "
                             "is it powered, advertising and in range (and not connected to another host)?",
                             url=spec.url)
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


async def ble_session(spec: BleSpec, protocol: LinkProtocol, supervisor: LinkSupervisor, stop: threading.Event,
                      stall_timeout_s: float | None) -> None:
    """Keep a BLE link up and feed ``protocol`` until ``stop`` is set (runs in the caller's loop:
    notifications reach the decoder in that loop, no thread in between)."""
    from bleak import BleakClient
    from bleak.exc import BleakError

    profile = spec.profile
    nus = not profile.framed
    url = spec.url
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        lost = asyncio.Event()
        last_rx = [time.monotonic()]

        def on_disconnect(_client: Any, lost: asyncio.Event = lost) -> None:
            loop.call_soon_threadsafe(lost.set)  # safe whichever thread a backend calls back from

        def on_notify(_char: Any, data: bytearray, last_rx: list[float] = last_rx) -> None:
            last_rx[0] = time.monotonic()
            protocol.data_received(bytes(data))

        try:
            device = await _find_ble_device(spec)
            client = BleakClient(device, disconnected_callback=on_disconnect)
            await client.connect()
            try:
                await client.start_notify(profile.notify_uuid, on_notify)
                supervisor.counters.mtu = _att_mtu(client, profile.notify_uuid)
                for command in protocol.connection_made():
                    await _ble_write(client, profile.write_uuid, command, nus)
                supervisor.connected()
                last_rx[0] = time.monotonic()
                while not stop.is_set() and not lost.is_set():
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(lost.wait(), 0.1)
                    supervisor.check_stall(time.monotonic() - last_rx[0], stall_timeout_s, url, "notification")
                if lost.is_set():
                    raise TransportError(f"{url}: the BLE device disconnected", url=url)
                with contextlib.suppress(Exception):
                    for command in protocol.stop_commands():
                        await _ble_write(client, profile.write_uuid, command, nus)
                return
            finally:
                with contextlib.suppress(Exception):
                    await client.disconnect()
        except (TimeoutError, BleakError, TransportError, OSError) as exc:
            error = exc if isinstance(exc, TransportError) else TransportError(
                f"BLE link to {spec.target} failed: {exc}", url=url)
            delay = supervisor.link_failed(error, protocol)
            if delay is None:
                return
            end = time.monotonic() + delay
            while not stop.is_set() and time.monotonic() < end:
                await asyncio.sleep(min(0.05, delay))


def run_ble(spec: BleSpec, protocol: LinkProtocol, supervisor: LinkSupervisor, stop: threading.Event,
            stall_timeout_s: float | None) -> None:
    """Thread body for the sync face: :func:`ble_session` in this thread's own event loop."""
    try:
        asyncio.run(ble_session(spec, protocol, supervisor, stop, stall_timeout_s))
    except Exception as exc:  # an unexpected failure must still reach the consumer
        error = TransportError(f"BLE transport for {spec.url} failed: {exc!r}", url=spec.url)
        supervisor.first_error = supervisor.first_error or error
        supervisor.first_result.set()
        supervisor.on_fatal(error)


__all__ = ["COMMAND_GAP_S", "assert_modem_lines", "ble_session", "explain_open_error", "open_serial", "run_ble", "run_serial"]
