"""The parts every device emulator shares: options, counters, the pty and its streaming thread
(see the package docstring for what an emulator does and its fault injection)."""

from __future__ import annotations

import contextlib
import os
import pty
import random
import select
import shutil
import tempfile
import threading
import time
import tty
from dataclasses import dataclass, field, replace
from typing import ClassVar, Final

import numpy as np

from emotionkd.firmware_bridge import ekd
from emotionkd.firmware_bridge.bounds import rate_problem
from emotionkd.firmware_bridge.devices import device
from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, GsrSynthesizer

#: the fastest an emulator plays its signal (a faster pty would only fill its buffer and drop)
MAX_SPEED: Final = 16.0
#: the EKD emulator's ``sample_format`` names and the wire format each sends
EKD_SAMPLE_FORMATS: Final = {"ns": ekd.SampleFormat.U32_NANOSIEMENS, "u16": ekd.SampleFormat.U16_ADC,
                             "u24": ekd.SampleFormat.U24_ADC}


@dataclass(frozen=True)
class EmulatorConfig:
    """Options shared by the emulators.

    Attributes:
        rate_hz: sampling rate (BITalino: 1, 10, 100 or 1000); None: the device's default rate
            in the device registry (:mod:`emotionkd.firmware_bridge.devices`), its one owner.
        seed, arousal: of the synthetic skin conductance.
        frames_per_s: how often the device flushes (EKD frames; the other protocols send the
            same bytes, only batched per flush).
        garbage_per_s: mean rate of random garbage bursts (1–32 bytes) on the line.
        drop_probability: chance that a frame/packet/line is lost on the device.
        sample_format: EKD only: ``"ns"`` (u32 nanosiemens), ``"u16"`` or ``"u24"`` (raw ADC
            with a linear HELLO calibration).
        unit: ASCII only: ``"adc"`` (Grove raw values) or ``"uS"``.
        autostart: stream without waiting for the start command (ASCII always streams).
        speed: seconds of signal sent per second of wall time (1: real time). A demo plays
            minutes of a wearer in seconds this way: skin conductance answers a stressor over
            minutes (see gsr_synth), far longer than anyone watches a demo.
    """

    rate_hz: float | None = None
    seed: int = 0
    arousal: float = 0.3
    frames_per_s: float = 8.0
    garbage_per_s: float = 0.0
    drop_probability: float = 0.0
    sample_format: str = "ns"
    unit: str = "adc"
    autostart: bool = False
    speed: float = 1.0

    def __post_init__(self) -> None:
        problem = None if self.rate_hz is None else rate_problem(self.rate_hz)
        if problem is not None:  # the one rule for what a sampling rate may be (bounds)
            raise ConfigError(f"emulator {problem}")
        if not (0 < self.frames_per_s <= 1000):
            raise ConfigError(f"frames_per_s must be in (0, 1000], got {self.frames_per_s!r}")
        if not (0 < self.speed <= MAX_SPEED):
            raise ConfigError(f"emulator speed must be in (0, {MAX_SPEED:g}] (seconds of signal per second), "
                              f"got {self.speed!r}")
        if not 0.0 <= self.drop_probability <= 1.0:
            raise ConfigError(f"drop_probability must be in [0, 1], got {self.drop_probability!r}")
        if self.garbage_per_s < 0:
            raise ConfigError(f"garbage_per_s must be ≥ 0, got {self.garbage_per_s!r}")
        if self.sample_format not in EKD_SAMPLE_FORMATS:
            raise ConfigError(f"sample_format must be one of {', '.join(EKD_SAMPLE_FORMATS)}, got {self.sample_format!r}")


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
    """Base: pty management, sample clock, fault injection. Subclasses speak the protocol.

    Attributes:
        config: the options, with ``rate_hz`` resolved (the device's registry rate when the
            caller gave none).
        rate_hz: the sampling rate it emulates (Hz).
    """

    device: ClassVar[str] = "base"
    _streaming: bool = False  # START/STOP state (subclasses flip it on commands)

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        config = config or EmulatorConfig()
        # the device's rate has one owner, the registry; the config only overrides it
        self.rate_hz: float = device(self.device).default_rate_hz if config.rate_hz is None else config.rate_hz
        self.config = replace(config, rate_hz=self.rate_hz)
        self.counters = EmulatorCounters()
        self.electrode_off = False
        self._synth = GsrSynthesizer(GsrSynthConfig(rate_hz=self.rate_hz), seed=self.config.seed,
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
            due = int((now - self._sample_clock_start) * self.rate_hz * self.config.speed) - self._samples_done
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
