"""Reliability figures: unplug/replug survival, kill -9 during ``record``, memory over a soak.

    python tests/benchmarks/reliability.py                       # all three, default sizes
    python tests/benchmarks/reliability.py --unplugs 200 --kills 20 --soak-hours 24
    python tests/benchmarks/reliability.py --only kill

* **unplug**: an EKD emulator on a pseudo-terminal is streamed through ``serial://`` (the stable
  symlink the emulator keeps across replugs); it is unplugged for ``--unplug-for`` seconds, then
  replugged, ``--unplugs`` times. A cycle passes when finite samples read after the replug arrive
  within 10 s and the sample axis stays contiguous.
* **kill**: ``emotionkd-sdk record`` of ``sim://`` at real time is killed with SIGKILL at a random
  moment; the seconds lost = (kill time − the recording's ``start_time``) − samples on disk / rate.
* **soak**: ``EmotionClassifier`` streams ``sim://`` as fast as it can for ``--soak-hours`` hours
  of signal; RSS is sampled along the way; the figure is the RSS growth from the first to the
  last quarter, per hour of signal (a leak shows as growth that scales with signal, not time).

Prints one line per figure. Linux only (pty, /proc).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def unplug_cycles(cycles: int, unplug_for_s: float) -> str:
    from emotionkd.firmware_bridge.emulators import EkdEmulator, EmulatorConfig
    from emotionkd.firmware_bridge.sources import Backoff, GsrSource

    passed = 0
    expected_index = 0
    with EkdEmulator(EmulatorConfig(rate_hz=128.0, seed=1), name="EKD-UNPLUG") as emu:
        source = GsrSource(f"serial://{emu.port_path}?protocol=ekd",
                           backoff=Backoff(initial_s=0.05, factor=2.0, max_s=0.5)).start()
        try:
            for _ in range(cycles):
                emu.unplug()
                time.sleep(unplug_for_s)
                emu.replug()
                replugged_at = time.time()
                deadline = time.monotonic() + 10.0
                got = False
                while time.monotonic() < deadline and not got:
                    for block in source.read(0.2):
                        if block.first_index != expected_index:
                            raise AssertionError(f"axis jumped: {block.first_index} != {expected_index}")
                        expected_index += len(block)
                        fresh = block.host_time_s > replugged_at  # bytes read after the replug
                        got = got or (fresh and bool(np.isfinite(block.conductance_us).any()))
                passed += got
            counters = source.counters()
        finally:
            source.close()
    return (f"unplug/replug: {passed}/{cycles} cycles resumed (unplugged {unplug_for_s:g} s each; "
            f"{counters['disconnects']} disconnects, {counters['connects']} connects, {counters['samples_lost']} samples filled as gaps, "
            f"{counters['discontinuities']} discontinuities)")


def kill_during_record(kills: int, seed: int) -> str:
    from emotionkd.sdk.recording import read_recording

    rng = random.Random(seed)
    losses = []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(kills):
            path = Path(folder) / f"rec{i}.csv"
            cmd = [sys.executable, "-c", "from emotionkd.sdk.cli import main; main()", "record", str(path),
                   "--simulate", "--speed", "1"]
            child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # wait for the header (the recording has started), then a random while
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (path.exists() and path.stat().st_size > 0):
                time.sleep(0.05)
            time.sleep(rng.uniform(2.0, 6.0))
            killed_at = time.time()
            child.send_signal(signal.SIGKILL)
            child.wait()
            rec = read_recording(path)
            started = dt.datetime.fromisoformat(rec.metadata["start_time"]).timestamp()
            losses.append(max(0.0, (killed_at - started) - len(rec) / rec.rate_hz))
    return (f"kill -9 during record: {kills} kills, seconds lost median {np.median(losses):.2f}, "
            f"max {max(losses):.2f} (the writer flushes every second)")


def soak(hours: float) -> str:
    from emotionkd.sdk.classifier import EmotionClassifier

    classifier = EmotionClassifier()
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    predictions = 0
    for prediction in classifier.stream("sim://?rate=32&speed=0", duration_s=hours * 3600):
        predictions += 1
        if predictions % 600 == 0:
            samples.append((prediction.end_s / 3600, rss_mb()))
    wall = time.monotonic() - started
    if len(samples) < 8:
        return f"soak: too short ({len(samples)} RSS samples); give --soak-hours ≥ 2"
    quarter = len(samples) // 4
    first = np.median([m for _, m in samples[:quarter]])
    last = np.median([m for _, m in samples[-quarter:]])
    span_h = np.mean([h for h, _ in samples[-quarter:]]) - np.mean([h for h, _ in samples[:quarter]])
    return (f"soak: {hours:g} h of 32 Hz signal ({predictions} predictions) in {wall:.0f} s wall; RSS "
            f"{first:.1f} -> {last:.1f} MB ({(last - first) / span_h:+.2f} MB per hour of signal)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unplugs", type=int, default=50)
    parser.add_argument("--unplug-for", type=float, default=0.5)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--soak-hours", type=float, default=4.0)
    parser.add_argument("--only", choices=["unplug", "kill", "soak"], default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.only in (None, "unplug"):
        print(unplug_cycles(args.unplugs, args.unplug_for), flush=True)
    if args.only in (None, "kill"):
        print(kill_during_record(args.kills, args.seed), flush=True)
    if args.only in (None, "soak"):
        print(soak(args.soak_hours), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
