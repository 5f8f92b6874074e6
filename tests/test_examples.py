"""Each script in examples/ runs, with small inputs, as a user would run it (a subprocess)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _run(name: str, *args: str, timeout_s: float = 120.0, cwd: Path = ROOT) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=timeout_s, cwd=cwd)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_wearable_app_reacts_to_predictions_through_a_callback() -> None:
    out = _run("wearable_app.py", "--duration", "48", "--speed", "0")  # 32 s windows
    rows = re.findall(r"arousal (\d\.\d\d) (low|high) +valence (\d\.\d\d) (low|high)", out)
    assert len(rows) >= 10 and all(0 <= float(r[0]) <= 1 and 0 <= float(r[2]) <= 1 for r in rows)
    assert re.search(r"\d+ notification\(s\)", out)


def test_custom_firmware_streams_ekd_frames_through_a_pty_to_the_sdk() -> None:
    out = _run("custom_firmware.py", "--duration", "36")  # one 32 s window + 4 hops, in real time
    assert "serial:///dev/pts/" in out
    assert len(re.findall(r"arousal \d\.\d\d valence \d\.\d\d", out)) >= 2
    sent = int(re.search(r"the firmware sent (\d+) frames", out).group(1))  # type: ignore[union-attr]
    assert sent >= 20  # DATA every 250 ms, STATUS every second, HELLO and ACKs


def test_lsl_lab_round_trips_gsr_and_predictions_or_says_why_not() -> None:
    out = _run("lsl_lab.py", "--duration", "36")  # one 32 s window + 4 hops, in real time
    if out.startswith("skipped:"):
        pytest.skip(out.strip())
    published, received = map(int, re.search(r"published (\d+) predictions .* received (\d+)", out).groups())  # type: ignore[union-attr]
    assert published >= 2 and received >= 1
    assert "channels arousal [probability], valence [probability], quality [code]" in out


def test_offline_analysis_plots_a_recording(tmp_path: Path) -> None:
    out = _run("offline_analysis.py", "--duration", "80", "--out", str(tmp_path))
    png = tmp_path / "analysis.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    rows = (tmp_path / "predictions.csv").read_text().splitlines()
    assert rows[0] == "start_s,end_s,arousal,valence,quality" and len(rows) > 30
    assert any(r.endswith(",electrode_off") for r in rows)  # the simulated fault is gated, not predicted
    assert re.search(r"\d+ SCRs", out)
    # and a file it did not write: a plain time,value CSV in kOhm
    plain = tmp_path / "plain.csv"
    lines = ["time,value"] + [f"{i / 8:.3f},{200 + (i % 40) * 0.5:.2f}" for i in range(8 * 30)]
    plain.write_text("\n".join(lines) + "\n")
    out = _run("offline_analysis.py", str(plain), "--unit", "kOhm", "--out", str(tmp_path / "plain"))
    assert (tmp_path / "plain" / "analysis.png").is_file() and "240 samples at 8 Hz" in out


@pytest.mark.slow
def test_pipeline_runs_every_stage_on_a_tiny_synthetic_set(tmp_path: Path) -> None:
    out = _run("pipeline.py", "--out", str(tmp_path / "run"), "--no-progress", "--stream-s", "6",
               "--set", "data.subjects=3", "--set", "data.trials=4", "--set", "data.trial_s=36",
               "--set", "teacher_optim.epochs=1", "--set", "student_optim.epochs=1",
               timeout_s=600.0)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert set(report["timings_s"]) >= {"synth", "teacher", "distill", "evaluate: baseline student",
                                        "export fp32", "export int8", "stream"}
    assert {"teacher (EEG+GSR)", "student, no teacher (GSR)", "student, KD + feedback (GSR)"} <= set(report["held_out"])
    assert report["fp32"]["provenance"]["data_kind"] == "synthetic"
    assert report["int8"]["export"]["int8"] is True
    assert report["stream"]["windows"] >= 2
    assert "wall time" in out and (tmp_path / "run" / "report.md").is_file()
