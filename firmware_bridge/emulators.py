"""Byte-exact device emulators on a real pseudo-terminal (EKD, ASCII/Grove, Shimmer3, BITalino).

Each emulator owns a pty (``pty.openpty`` in raw mode) and a background thread that streams
realistic skin conductance from :class:`~emotionkd.firmware_bridge.gsr_synth.GsrSynthesizer` in
the device's own wire format, answers the device's commands, and injects faults on request::

    with EkdEmulator(EmulatorConfig(rate_hz=128)) as emu:
        print(emu.port_path)          # a stable symlink to the current /dev/pts/N
        emu.inject_garbage(40)        # random bytes on the line
        emu.drop_frames(3)            # the next 3 frames/packets/lines never leave the device
        emu.electrode_off = True      # the device reports open electrodes
        emu.unplug(); emu.replug()    # the port disappears, then comes back (new /dev/pts/N)

Like a real device, the emulator keeps sampling while nobody has the port open or while it is
unplugged: those samples are lost (counted in ``samples_unsent``), so a host that reconnects sees
a true gap on the device's time base.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pty
import random
import select
import shutil
import struct
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from emotionkd.firmware_bridge import bitalino, ekd, shimmer3
from emotionkd.firmware_bridge.cobs import cobs_decode
from emotionkd.firmware_bridge.errors import ConfigError, ProtocolError, TransportError
from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, GsrSynthesizer

logger = logging.getLogger(__name__)

DEVICES = ("ekd", "ascii", "shimmer3", "bitalino")


@dataclass(frozen=True)
class EmulatorConfig:
    """Options shared by the emulators.

    Attributes:
        rate_hz: sampling rate (BITalino: 1, 10, 100 or 1000).
        seed, arousal: of the synthetic skin conductance.
        frames_per_s: how often the device flushes (EKD frames; the other protocols send the
            same bytes, only batched per flush).
        garbage_per_s: mean rate of random garbage bursts (1–32 bytes) on the line.
        drop_probability: chance that a frame/packet/line is lost on the device.
        sample_format: EKD only: ``"ns"`` (u32 nanosiemens), ``"u16"`` or ``"u24"`` (raw ADC
            with a linear HELLO calibration).
        unit: ASCII only: ``"adc"`` (Grove raw values) or ``"uS"``.
        autostart: stream without waiting for the start command (ASCII always streams).
    """

    rate_hz: float = 128.0
    seed: int = 0
    arousal: float = 0.3
    frames_per_s: float = 8.0
    garbage_per_s: float = 0.0
    drop_probability: float = 0.0
    sample_format: str = "ns"
    unit: str = "adc"
    autostart: bool = False

    def __post_init__(self) -> None:
        if not (self.rate_hz > 0 and math.isfinite(self.rate_hz)):
            raise ConfigError(f"emulator rate_hz must be positive, got {self.rate_hz!r}")
        if not (0 < self.frames_per_s <= 1000):
            raise ConfigError(f"frames_per_s must be in (0, 1000], got {self.frames_per_s!r}")
        if not 0.0 <= self.drop_probability <= 1.0:
            raise ConfigError(f"drop_probability must be in [0, 1], got {self.drop_probability!r}")
        if self.garbage_per_s < 0:
            raise ConfigError(f"garbage_per_s must be ≥ 0, got {self.garbage_per_s!r}")
        if self.sample_format not in ("ns", "u16", "u24"):
            raise ConfigError(f"sample_format must be 'ns', 'u16' or 'u24', got {self.sample_format!r}")


@dataclass
class EmulatorCounters:
    """What the emulator did (for tests that check the host's counters against the truth)."""

    samples_generated: int = 0
    samples_unsent: int = 0  # generated while no host was connected / unplugged
    frames_sent: int = 0
    frames_dropped: int = 0  # fault injection
    garbage_bytes: int = 0
    bytes_sent: int = 0
    bytes_dropped: int = 0  # the host did not read fast enough (full pty buffer, like a UART FIFO)
    commands: int = 0
    connects: int = 0
    unplugs: int = 0
    host_bytes: list[int] = field(default_factory=list)  # command bytes seen (first 4096)


class DeviceEmulator:
    """Base: pty management, sample clock, fault injection. Subclasses speak the protocol."""

    device: ClassVar[str] = "base"

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.counters = EmulatorCounters()
        self.electrode_off = False
        self._synth = GsrSynthesizer(GsrSynthConfig(rate_hz=self.config.rate_hz), seed=self.config.seed,
                                     arousal=self.config.arousal)
        self._rng = random.Random(self.config.seed + 1)
        self._lock = threading.RLock()
        self._master: int | None = None
        self._pts_path = ""
        self._dir = tempfile.mkdtemp(prefix="emotionkd-emu-")
        self._link = os.path.join(self._dir, f"tty{self.device.upper()}0")
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pending_garbage = 0
        self._drop_next = 0
        self._connected = False
        self._streaming = self.config.autostart
        self._sample_clock_start = 0.0
        self._samples_done = 0  # device samples produced so far (sent or not)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def port_path(self) -> str:
        """A stable path (symlink) to the current pseudo-terminal; survives unplug/replug."""
        return self._link

    @property
    def pts_path(self) -> str:
        """The current ``/dev/pts/N`` (changes at every replug)."""
        return self._pts_path

    @property
    def connected(self) -> bool:
        """Whether a host has the port open."""
        return self._connected

    @property
    def streaming(self) -> bool:
        return self._streaming

    def start(self) -> DeviceEmulator:
        """Create the pty and start the device thread."""
        if self._thread is not None:
            return self
        self._open_pty()
        self._sample_clock_start = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"emotionkd-{self.device}-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread, close the pty and remove the symlink."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        with self._lock:
            self._close_pty()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> DeviceEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _open_pty(self) -> None:
        master, slave = pty.openpty()
        tty.setraw(slave)
        self._pts_path = os.ttyname(slave)
        os.close(slave)  # the host opens it; POLLHUP on the master tells us whether it did
        os.set_blocking(master, False)
        self._master = master
        tmp = self._link + ".new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(self._pts_path, tmp)
        os.replace(tmp, self._link)

    def _close_pty(self) -> None:
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._link)
        self._connected = False

    # -- faults ----------------------------------------------------------------------------
    def inject_garbage(self, n_bytes: int = 16) -> None:
        """Send ``n_bytes`` random bytes at the next flush."""
        with self._lock:
            self._pending_garbage += int(n_bytes)

    def drop_frames(self, count: int = 1) -> None:
        """The next ``count`` frames (packets, lines) are lost on the device."""
        with self._lock:
            self._drop_next += int(count)

    def unplug(self) -> None:
        """The port disappears: the host's reads fail (EIO/hang-up). The device keeps sampling."""
        with self._lock:
            self._close_pty()
            self.counters.unplugs += 1

    def replug(self) -> None:
        """The port comes back (a new /dev/pts/N behind the same :attr:`port_path`)."""
        with self._lock:
            if self._master is None:
                self._open_pty()

    def set_arousal(self, arousal: float) -> None:
        with self._lock:
            self._synth.set_arousal(arousal)

    # -- the device thread -----------------------------------------------------------------
    def _run(self) -> None:
        tick_s = 1.0 / self.config.frames_per_s
        next_tick = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_tick:
                self._tick(now)
                next_tick += tick_s
                if next_tick < now - 1.0:  # we were suspended: do not try to catch up in a burst
                    next_tick = now + tick_s
                continue
            self._wait_for_host(next_tick - now)

    def _wait_for_host(self, timeout_s: float) -> None:
        with self._lock:
            master = self._master
        if master is None:
            self._stop.wait(timeout_s)
            return
        poller = select.poll()
        poller.register(master, select.POLLIN)
        try:
            events = poller.poll(max(0.0, timeout_s) * 1000.0)
        except (OSError, ValueError):
            return
        hang_up = any(ev & select.POLLHUP for _, ev in events)
        with self._lock:
            if self._master != master:
                return  # unplugged meanwhile
            self._set_connected(not hang_up)
            if events and not hang_up:
                try:
                    data = os.read(master, 4096)
                except (BlockingIOError, InterruptedError):
                    data = b""
                except OSError:
                    self._set_connected(False)
                    data = b""
                if data:
                    if len(self.counters.host_bytes) < 4096:
                        self.counters.host_bytes.extend(data[: 4096 - len(self.counters.host_bytes)])
                    self._on_host_bytes(data)
        if hang_up:
            self._stop.wait(min(timeout_s, 0.02))  # no host: poll would return at once

    def _set_connected(self, connected: bool) -> None:
        if connected and not self._connected:
            self.counters.connects += 1
            self._connected = True
            self._on_connect()
        elif not connected:
            self._connected = False

    def _tick(self, now: float) -> None:
        with self._lock:
            due = int((now - self._sample_clock_start) * self.config.rate_hz) - self._samples_done
            if due <= 0:
                return
            values = self._synth.read(due)
            self.counters.samples_generated += due
            first = self._samples_done
            self._samples_done += due
            if not self._streaming:
                return
            units = self._encode(values, first)
            out = bytearray()
            for unit in units:
                if self._drop_next > 0:
                    self._drop_next -= 1
                    self.counters.frames_dropped += 1
                    continue
                if self.config.drop_probability and self._rng.random() < self.config.drop_probability:
                    self.counters.frames_dropped += 1
                    continue
                out += unit
                self.counters.frames_sent += 1
            garbage = self._pending_garbage
            self._pending_garbage = 0
            if self.config.garbage_per_s and self._rng.random() < self.config.garbage_per_s / self.config.frames_per_s:
                garbage += self._rng.randint(1, 32)
            if garbage:
                insert_at = self._rng.randint(0, len(out))
                noise = bytes(self._rng.getrandbits(8) for _ in range(garbage))
                out[insert_at:insert_at] = noise
                self.counters.garbage_bytes += garbage
            if not self._connected:
                self.counters.samples_unsent += due
                return
            self._write(bytes(out))

    def _write(self, data: bytes) -> None:
        """Write to the host (caller holds the lock); a full pty buffer drops like a UART FIFO."""
        if self._master is None or not self._connected or not data:
            return
        try:
            sent = os.write(self._master, data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._set_connected(False)
            return
        self.counters.bytes_sent += sent
        self.counters.bytes_dropped += len(data) - sent

    # -- protocol hooks ----------------------------------------------------------------------
    def _encode(self, values_us: np.ndarray, first_index: int) -> list[bytes]:  # pragma: no cover
        raise NotImplementedError

    def _on_host_bytes(self, data: bytes) -> None:
        """Commands from the host (caller holds the lock)."""

    def _on_connect(self) -> None:
        """A host opened the port (caller holds the lock)."""


class EkdEmulator(DeviceEmulator):
    """An EKD v1 device on a serial line (COBS + 0x00): HELLO, STATUS, DATA, ACK; answers CMDs."""

    device = "ekd"
    #: linear calibration of the raw formats: µS = GAIN · adc + OFFSET
    GAIN_US = 0.01
    OFFSET_US = 0.0

    def __init__(self, config: EmulatorConfig | None = None, name: str = "EKD-EMU") -> None:
        super().__init__(config)
        self.name = name
        self._seq = 0
        self._stream_start_index = 0
        self._rx = bytearray()
        self._device_us0 = time.monotonic()
        self._next_status = 0.0
        self._format = {"ns": ekd.SampleFormat.U32_NANOSIEMENS, "u16": ekd.SampleFormat.U16_ADC,
                        "u24": ekd.SampleFormat.U24_ADC}[self.config.sample_format]
        self._per_frame = max(1, min(255, int(math.ceil(self.config.rate_hz / self.config.frames_per_s))))

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFFFF
        return seq

    def _device_us(self) -> int:
        return int((time.monotonic() - self._device_us0) * 1e6) & 0xFFFFFFFF

    def hello(self) -> ekd.Hello:
        adc_bits = {ekd.SampleFormat.U16_ADC: 16, ekd.SampleFormat.U24_ADC: 24}.get(self._format, 0)
        kind = ekd.CalibrationKind.NANOSIEMENS if self._format == ekd.SampleFormat.U32_NANOSIEMENS else ekd.CalibrationKind.LINEAR
        return ekd.Hello(0x0100, int(round(self.config.rate_hz * 1000)), adc_bits, kind, self.GAIN_US,
                         self.OFFSET_US, self.name)

    def _send_frame(self, frame: bytes) -> None:
        self._write(ekd.serial_encode(frame))

    def _on_connect(self) -> None:
        self._rx.clear()
        self._send_frame(ekd.control_frame(ekd.FrameType.HELLO, self._next_seq(), self._device_us(),
                                           self.hello().encode()))

    def _on_host_bytes(self, data: bytes) -> None:
        self._rx += data
        while True:
            end = self._rx.find(0)
            if end < 0:
                if len(self._rx) > 4096:
                    self._rx.clear()
                return
            chunk = bytes(self._rx[:end])
            del self._rx[: end + 1]
            if not chunk:
                continue
            try:
                frame = ekd.decode_frame(cobs_decode(chunk))
            except ProtocolError:
                continue  # a real device ignores what it cannot parse
            if frame.frame_type != ekd.FrameType.CMD or not frame.payload:
                continue
            self.counters.commands += 1
            self._command(ekd.Command.decode(frame.payload), frame.seq)

    def _command(self, cmd: ekd.Command, seq: int) -> None:
        status = 0
        if cmd.opcode == ekd.Opcode.START:
            if not self._streaming:  # idempotent: a second START changes nothing
                self._streaming = True
                self._stream_start_index = self._samples_done  # t0 counts from here
        elif cmd.opcode == ekd.Opcode.STOP:
            self._streaming = False
        elif cmd.opcode == ekd.Opcode.HELLO_REQUEST:
            pass
        elif cmd.opcode in (ekd.Opcode.SET_RATE, ekd.Opcode.TIMESYNC):
            status = 2 if cmd.opcode == ekd.Opcode.SET_RATE else 0  # the emulator's rate is fixed
        else:
            status = 1
        self._send_frame(ekd.control_frame(ekd.FrameType.ACK, seq, self._device_us(),
                                           ekd.Ack(cmd.opcode, status).encode()))
        if cmd.opcode == ekd.Opcode.HELLO_REQUEST:
            self._send_frame(ekd.control_frame(ekd.FrameType.HELLO, self._next_seq(), self._device_us(),
                                               self.hello().encode()))

    def _encode(self, values_us: np.ndarray, first_index: int) -> list[bytes]:
        flags = ekd.FrameFlag.ELECTRODE_OFF if self.electrode_off else 0
        if self._format == ekd.SampleFormat.U32_NANOSIEMENS:
            ints = np.clip(np.round(values_us * 1000.0), 0, 2**32 - 1).astype(np.int64)
            if self.electrode_off:
                ints[:] = 0
        else:
            top = 2**16 - 1 if self._format == ekd.SampleFormat.U16_ADC else 2**24 - 1
            ints = np.clip(np.round((values_us - self.OFFSET_US) / self.GAIN_US), 0, top).astype(np.int64)
            if self.electrode_off:
                ints[:] = top
        units = []
        for start in range(0, ints.size, self._per_frame):
            chunk = ints[start : start + self._per_frame].tolist()
            t0 = first_index + start - self._stream_start_index  # sample index since START
            units.append(ekd.serial_encode(ekd.data_frame(self._next_seq(), t0, chunk,
                                                          self._format, flags=flags)))
        now = time.monotonic()
        if now >= self._next_status:
            self._next_status = now + 1.0
            status = ekd.Status(3900, flags).encode()
            units.append(ekd.serial_encode(ekd.control_frame(ekd.FrameType.STATUS, self._next_seq(),
                                                             self._device_us(), status)))
        return units


class AsciiEmulator(DeviceEmulator):
    """A Grove GSR sketch: one ``analogRead`` value per line (or µS with ``unit="uS"``)."""

    device = "ascii"
    CAL = 512.0

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        super().__init__(config)
        if self.config.unit not in ("adc", "uS"):
            raise ConfigError(f"the ASCII emulator prints 'adc' or 'uS', not {self.config.unit!r}")
        self._streaming = True

    def _on_connect(self) -> None:
        self._write(b"Grove GSR emulator ready\r\n")

    def _encode(self, values_us: np.ndarray, first_index: int) -> list[bytes]:
        if self.config.unit == "uS":
            if self.electrode_off:
                return [b"0.0000\r\n" for _ in values_us]
            return [f"{v:.4f}\r\n".encode() for v in values_us]
        ohm = 1e6 / values_us
        adc = np.round((ohm * self.CAL - 10_240_000.0) / (ohm + 20_000.0)).astype(int)
        adc = np.clip(adc, 0, 1023)
        if self.electrode_off:
            adc[:] = 520  # ≥ CAL: open circuit
        return [f"{a}\r\n".encode() for a in adc]


class Shimmer3Emulator(DeviceEmulator):
    """A Shimmer3 GSR+ (LogAndStream): ACKs, inquiry, set sensors/rate, start/stop, data packets."""

    device = "shimmer3"
    _ARG_BYTES: ClassVar[dict[int, int]] = {shimmer3.SET_SENSORS_COMMAND: 3, shimmer3.SET_SAMPLING_RATE_COMMAND: 2}

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        super().__init__(config)
        self.divider = shimmer3.rate_to_divider(self.config.rate_hz)
        self.sensors = bytes([shimmer3.SENSOR_GSR_BYTE0, 0, 0])
        self._rx = bytearray()
        self._ts0 = 12345

    def _channels(self) -> list[int]:
        # battery first when enabled (bit 13 → byte 1, 0x20), then GSR: the firmware's order
        channels = []
        if self.sensors[1] & 0x20:
            channels.append(0x03)
        if self.sensors[0] & shimmer3.SENSOR_GSR_BYTE0:
            channels.append(shimmer3.GSR_CHANNEL)
        return channels

    def _on_host_bytes(self, data: bytes) -> None:
        self._rx += data
        while self._rx:
            op = self._rx[0]
            need = 1 + self._ARG_BYTES.get(op, 0)
            if len(self._rx) < need:
                return
            args = bytes(self._rx[1:need])
            del self._rx[:need]
            self.counters.commands += 1
            reply = bytes([shimmer3.ACK])
            if op == shimmer3.INQUIRY_COMMAND:
                channels = self._channels()
                reply += bytes([shimmer3.INQUIRY_RESPONSE]) + struct.pack(
                    "<HIBB", self.divider, 0, len(channels), 1) + bytes(channels)
            elif op == shimmer3.SET_SENSORS_COMMAND:
                self.sensors = args
            elif op == shimmer3.SET_SAMPLING_RATE_COMMAND:
                (divider,) = struct.unpack("<H", args)
                if divider != self.divider:
                    logger.info("shimmer3 emulator keeps its divider %d (asked %d)", self.divider, divider)
            elif op == shimmer3.START_STREAMING_COMMAND:
                self._streaming = True
            elif op == shimmer3.STOP_STREAMING_COMMAND:
                self._streaming = False
            self._write(reply)

    def _encode(self, values_us: np.ndarray, first_index: int) -> list[bytes]:
        channels = self._channels()
        units = []
        for i, us in enumerate(values_us):
            ts = (self._ts0 + (first_index + i) * self.divider) % shimmer3.TIMESTAMP_WRAP
            packet = bytearray([shimmer3.DATA_PACKET]) + ts.to_bytes(3, "little")
            for channel in channels:
                if channel == 0x03:
                    packet += struct.pack("<H", 3000)
                else:
                    word = (3 << 14) | 600 if self.electrode_off else shimmer3.us_to_gsr_word(float(us), _range_for(us))
                    packet += struct.pack("<H", word)
            units.append(bytes(packet))
        return units


def _range_for(us: float) -> int:
    """The Shimmer3 auto-range choice for a conductance (ranges 0…3 cover high to low µS)."""
    if us > 18.0:
        return 0
    if us > 4.5:
        return 1
    if us > 1.5:
        return 2
    return 3


class BitalinoEmulator(DeviceEmulator):
    """A BITalino with the EDA sensor on A3: set rate, start (channel mask), stop, version."""

    device = "bitalino"

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        super().__init__(config)
        if int(self.config.rate_hz) not in bitalino.RATE_CODES or self.config.rate_hz != int(self.config.rate_hz):
            raise ConfigError(f"BITalino samples at 1, 10, 100 or 1000 Hz, not {self.config.rate_hz!r}")
        self.channels: tuple[int, ...] = (bitalino.DEFAULT_EDA_CHANNEL,)
        self._seq = 0

    def _on_host_bytes(self, data: bytes) -> None:
        for cmd in data:
            self.counters.commands += 1
            if self._streaming:
                if cmd == 0x00:
                    self._streaming = False
                continue
            if cmd & 0x03 == 0x01:
                mask = cmd >> 2
                self.channels = tuple(c for c in range(6) if mask & (1 << c)) or self.channels
                self._streaming = True
            elif cmd == 0x07:
                self._write(b"BITalino_v5.2\n")
            # 0x03 | code << 6 sets the rate: the emulator's rate is fixed by its config

    def _encode(self, values_us: np.ndarray, first_index: int) -> list[bytes]:
        eda_pos = self.channels.index(bitalino.DEFAULT_EDA_CHANNEL) if bitalino.DEFAULT_EDA_CHANNEL in self.channels else -1
        units = []
        for us in values_us:
            values = [512] * len(self.channels)
            if eda_pos >= 0:
                bits = 10 if eda_pos < 4 else 6
                values[eda_pos] = 0 if self.electrode_off else bitalino.us_to_eda_adc(float(us), bits)
            for k in range(4, len(values)):
                values[k] &= 0x3F
            units.append(bitalino.pack_frame(values, self._seq))
            self._seq = (self._seq + 1) & 0x0F
        return units


_EMULATORS: dict[str, type[DeviceEmulator]] = {
    "ekd": EkdEmulator,
    "ascii": AsciiEmulator,
    "shimmer3": Shimmer3Emulator,
    "bitalino": BitalinoEmulator,
}


def make_emulator(device: str, config: EmulatorConfig | None = None) -> DeviceEmulator:
    """An emulator for ``device`` (one of :data:`DEVICES`), not started yet.

    Raises:
        ConfigError: unknown device.
    """
    try:
        cls = _EMULATORS[device]
    except KeyError:
        raise ConfigError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}") from None
    return cls(config)


def run_emulator(
    emulator: DeviceEmulator,
    duration_s: float | None = None,
    *,
    unplug_every_s: float | None = None,
    unplug_for_s: float = 1.0,
    electrode_off_after_s: float | None = None,
    report_every_s: float = 5.0,
    report: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> EmulatorCounters:
    """Run a started emulator for ``duration_s`` (None: until ``stop`` is set or Ctrl-C),
    with scheduled faults; ``report`` receives one status line every ``report_every_s``.
    """
    stop = stop or threading.Event()
    started = time.monotonic()
    next_report = started + report_every_s
    next_unplug = started + unplug_every_s if unplug_every_s else None
    replug_at: float | None = None
    while not stop.is_set():
        now = time.monotonic()
        if duration_s is not None and now - started >= duration_s:
            break
        if electrode_off_after_s is not None and not emulator.electrode_off and now - started >= electrode_off_after_s:
            emulator.electrode_off = True
            if report:
                report("fault: electrodes off")
        if next_unplug is not None and now >= next_unplug and replug_at is None:
            emulator.unplug()
            replug_at = now + unplug_for_s
            if report:
                report(f"fault: unplugged for {unplug_for_s:g} s")
        if replug_at is not None and now >= replug_at:
            emulator.replug()
            replug_at = None
            next_unplug = now + (unplug_every_s or 0.0)
            if report:
                report(f"replugged: {emulator.pts_path} (link {emulator.port_path})")
        if report and now >= next_report:
            c = emulator.counters
            report(f"{'host connected' if emulator.connected else 'waiting for host'}; "
                   f"{'streaming' if emulator.streaming else 'idle'}; samples {c.samples_generated}, "
                   f"frames sent {c.frames_sent}, dropped {c.frames_dropped}, garbage bytes {c.garbage_bytes}")
            next_report = now + report_every_s
        stop.wait(0.05)
    return emulator.counters


def require_pty() -> None:
    """Raise :class:`TransportError` where pseudo-terminals are unavailable (not POSIX)."""
    if os.name != "posix":
        raise TransportError("device emulators need POSIX pseudo-terminals (Linux or macOS)")


__all__ = [
    "DEVICES",
    "AsciiEmulator",
    "BitalinoEmulator",
    "DeviceEmulator",
    "EkdEmulator",
    "EmulatorConfig",
    "EmulatorCounters",
    "Shimmer3Emulator",
    "make_emulator",
    "require_pty",
    "run_emulator",
]
