"""Byte-exact device emulators on a real pseudo-terminal, one module per device.

Each emulator owns a pty (``pty.openpty`` in raw mode) and a background thread that streams
realistic skin conductance from :class:`~emotionkd.firmware_bridge.gsr_synth.GsrSynthesizer` in
the device's own wire format, answers the device's commands, and injects faults on request::

    with EkdEmulator(EmulatorConfig(seed=3)) as emu:   # rate: the registry's (EKD: 128 Hz)
        print(emu.port_path)          # a stable symlink to the current /dev/pts/N
        emu.inject_garbage(40)        # random bytes on the line
        emu.drop_frames(3)            # the next 3 frames/packets/lines never leave the device
        emu.electrode_off = True      # the device reports open electrodes
        emu.unplug(); emu.replug()    # the port disappears, then comes back (new /dev/pts/N)

Like a real device, the emulator keeps sampling while nobody has the port open or while it is
unplugged: those samples are lost (counted in ``samples_unsent``), so a host that reconnects sees
a true gap on the device's time base.

Modules: :mod:`.base` (options, counters, the pty), :mod:`.ekd`, :mod:`.ascii`, :mod:`.shimmer3`,
:mod:`.bitalino`. The device registry (:mod:`emotionkd.firmware_bridge.devices`) names each
device's emulator; :func:`make_emulator` builds it from there.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from emotionkd.firmware_bridge.devices import DEVICES as _REGISTRY
from emotionkd.firmware_bridge.emulators.ascii import AsciiEmulator
from emotionkd.firmware_bridge.emulators.base import (
    MAX_SPEED,
    DeviceEmulator,
    EmulatorConfig,
    EmulatorCounters,
)
from emotionkd.firmware_bridge.emulators.bitalino import BitalinoEmulator
from emotionkd.firmware_bridge.emulators.ekd import EkdEmulator
from emotionkd.firmware_bridge.emulators.shimmer3 import Shimmer3Emulator
from emotionkd.firmware_bridge.errors import ConfigError, TransportError

#: the devices that can be emulated (every device in the registry)
DEVICES = tuple(_REGISTRY)


def make_emulator(device: str, config: EmulatorConfig | None = None) -> DeviceEmulator:
    """An emulator for ``device`` (one of :data:`DEVICES`; the registry names its class), not
    started yet.

    Raises:
        ConfigError: unknown device.
    """
    try:
        descriptor = _REGISTRY[device]
    except KeyError:
        raise ConfigError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}") from None
    emulator: DeviceEmulator = descriptor.emulator_class()(config)
    return emulator


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
    "MAX_SPEED",
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

