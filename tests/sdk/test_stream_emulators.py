"""End to end: ``emotionkd-sdk stream --port /dev/pts/N --format jsonl`` against every emulator.

All four devices run at once (each a real pseudo-terminal, a real ``emotionkd-sdk`` process
reading it in real time), so the suite pays for one stream, not four. While they stream, the
test takes the electrodes off for 2 s and later unplugs the device for 1.5 s.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from emotionkd.firmware_bridge.devices import PROTOCOLS
from emotionkd.firmware_bridge.emulators import EmulatorConfig, make_emulator

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX only")

DURATION_S = 17.0
ELECTRODE_OFF_AT_S, ELECTRODE_OFF_FOR_S = 5.0, 2.0
UNPLUG_AT_S, UNPLUG_FOR_S = 10.5, 1.5
DEVICES = PROTOCOLS  # every device in the registry, each emulated at its registry rate
PROTOCOL_ARG = {"ekd": "auto"}  # the EKD run also proves auto-detection


@dataclass
class Run:
    device: str
    returncode: int | None = None
    predictions: list[dict] = field(default_factory=list)
    stderr: str = ""
    unplugs: int = 0
    connects: int = 0


def _stream(device: str, model: Path, run: Run) -> None:
    with make_emulator(device, EmulatorConfig(seed=3)) as emu:
        cmd = [sys.executable, "-m", "emotionkd.sdk.cli", "stream", "--port", emu.port_path,
               "--protocol", PROTOCOL_ARG.get(device, device), "--format", "jsonl",
               "--duration", f"{DURATION_S:g}", "--model", str(model), "--timeout", "8"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while emu.counters.bytes_sent == 0 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            started = time.monotonic()

            def at(t: float) -> None:
                time.sleep(max(0.0, started + t - time.monotonic()))

            at(ELECTRODE_OFF_AT_S)
            emu.electrode_off = True
            at(ELECTRODE_OFF_AT_S + ELECTRODE_OFF_FOR_S)
            emu.electrode_off = False
            at(UNPLUG_AT_S)
            emu.unplug()
            at(UNPLUG_AT_S + UNPLUG_FOR_S)
            emu.replug()
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        run.returncode, run.stderr = proc.returncode, err
        run.predictions = [json.loads(line) for line in out.splitlines() if line.strip()]
        run.unplugs, run.connects = emu.counters.unplugs, emu.counters.connects


@pytest.fixture(scope="module")
def runs(test_model: Path) -> dict[str, Run]:
    results = {device: Run(device) for device in DEVICES}
    threads = [threading.Thread(target=_stream, args=(d, test_model, results[d])) for d in DEVICES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


@pytest.mark.parametrize("device", DEVICES)
def test_stream_against_the_emulator(runs: dict[str, Run], device: str) -> None:
    run = runs[device]
    assert run.returncode == 0, run.stderr
    p = run.predictions
    assert len(p) >= 9, (len(p), run.stderr)
    # predictions at the hop cadence, on one continuous time axis across the unplug
    starts = [r["start_s"] for r in p]
    assert starts == [starts[0] + i for i in range(len(p))], starts
    for r in p:
        assert r["end_s"] - r["start_s"] == 4.0
        if r["quality"] == "ok":
            assert 0.0 <= r["arousal"] <= 1.0 and 0.0 <= r["valence"] <= 1.0
            assert r["arousal_label"] in ("low", "high")
        else:
            assert r["arousal"] is None and r["quality_detail"]
    assert p[0]["quality"] == "ok"
    # the electrodes came off: windows over that span are flagged, not predicted
    # (EKD, ASCII/Grove and Shimmer3 flag it; BITalino reads ~0 µS, which the gate catches)
    assert any(r["quality"] == "electrode_off" for r in p), p
    # the unplug left a gap on the time axis, reported as such
    assert any(r["quality"] == "gap" for r in p), p
    # the stream survived the unplug and streamed on after the replug
    assert run.unplugs == 1 and run.connects >= 2
    assert p[-1]["start_s"] >= UNPLUG_AT_S + UNPLUG_FOR_S - 4.0
    assert "synthetic data" in run.stderr


def _one_shot(args: list[str], timeout: float = 40) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emotionkd.sdk.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_wrong_protocol_and_no_data_are_one_clear_line(test_model: Path) -> None:
    with make_emulator("ascii", EmulatorConfig(rate_hz=10.0)) as emu:  # prints lines at once
        out = _one_shot(["stream", "--port", emu.port_path, "--protocol", "ekd", "--timeout", "2",
                         "--model", str(test_model), "--format", "jsonl"])
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "none decode as ekd" in out.stderr and "--protocol auto" in out.stderr
    controller, device = pty.openpty()  # a port on which nothing ever arrives
    try:
        out = _one_shot(["stream", "--port", os.ttyname(device), "--protocol", "ascii", "--timeout", "2",
                         "--model", str(test_model)])
    finally:
        os.close(controller)
        os.close(device)
    assert out.returncode == 2 and "no data from" in out.stderr and "Traceback" not in out.stderr
    out = _one_shot(["stream", "--port", "/dev/ttyEKD-none", "--model", str(test_model)])
    assert out.returncode == 2 and "does not exist" in out.stderr and "Traceback" not in out.stderr


def test_record_from_a_serial_device_replays(test_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "ekd.csv"
    with make_emulator("ekd", EmulatorConfig(rate_hz=128.0, seed=5)) as emu:
        out = _one_shot(["record", str(path), "--port", emu.port_path, "--protocol", "ekd", "--duration", "5"])
    assert out.returncode == 0, out.stderr
    text = path.read_text()
    assert "# protocol: ekd\n" in text and "# rate_hz: 128\n" in text and "EKD-EMU" in text
    out = _one_shot(["stream", "--replay", str(path), "--speed", "0", "--format", "jsonl", "--model", str(test_model)])
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) >= 1


def test_a_busy_port_is_one_clear_line(test_model: Path) -> None:
    import serial

    with make_emulator("ekd", EmulatorConfig(rate_hz=128.0)) as emu:
        holder = serial.Serial(emu.port_path, exclusive=True)  # another program has the port
        try:
            out = _one_shot(["stream", "--port", emu.port_path, "--protocol", "ekd", "--model", str(test_model)])
        finally:
            holder.close()
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: ") and "busy" in out.stderr
