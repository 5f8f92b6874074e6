"""``emotionkd-sdk stream | record | devices`` as a person at a terminal meets them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotionkd.sdk import EmotionClassifier
from emotionkd.sdk.cli import app
from emotionkd.sdk.recording import read_recording

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_stream_jsonl_at_the_hop_cadence_says_synthetic_once(test_model: Path) -> None:
    code, out, err = _run("stream", "--simulate", "--speed", "0", "--duration", "12", "--format", "jsonl",
                          "--model", str(test_model))
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["start_s"] for r in rows] == [float(i) for i in range(len(rows))] and len(rows) >= 7
    assert all(0 <= r["arousal"] <= 1 and 0 <= r["valence"] <= 1 and r["quality"] == "ok" for r in rows)
    assert err.count("trained on synthetic data") == 1


def test_a_real_data_model_gets_no_synthetic_note(real_data_model: Path) -> None:
    code, _, err = _run("stream", "--simulate", "--speed", "0", "--duration", "6", "--format", "jsonl",
                        "--model", str(real_data_model))
    assert code == 0 and "synthetic" not in err


def test_record_then_replay_gives_the_same_predictions(test_model: Path, tmp_path: Path) -> None:
    rec, out1, out2 = tmp_path / "rec.csv", tmp_path / "live.csv", tmp_path / "replayed.csv"
    url = "sim://?rate=32&speed=0&duration=15&faults=saturation@8:1"
    code, _, err = _run("stream", "--source", url, "--model", str(test_model), "--format", "csv",
                        "--output", str(out1), "--record", str(rec), "--hop", "2")
    assert code == 0, err
    assert read_recording(rec).rate_hz == 32.0 and len(read_recording(rec)) == 480
    code, _, err = _run("stream", "--replay", str(rec), "--speed", "0", "--model", str(test_model),
                        "--format", "csv", "--output", str(out2), "--hop", "2")
    assert code == 0, err
    live, replayed = out1.read_text().splitlines(), out2.read_text().splitlines()
    assert live[0].startswith("start_s,end_s,arousal,valence")
    assert [r.split(",")[:2] for r in live] == [r.split(",")[:2] for r in replayed]
    assert any(",saturation," in r for r in replayed) and any(",ok," in r for r in replayed)
    # csv: a window that failed the gate has empty probability cells
    bad = next(r for r in replayed if ",saturation," in r).split(",")
    assert bad[2] == "" and bad[3] == ""


def test_record_writes_raw_samples_only(tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    code, _, err = _run("record", str(path), "--source", "sim://?rate=16&speed=0", "--duration", "5")
    assert code == 0, err
    rec = read_recording(path)
    assert rec.metadata["protocol"] == "sim" and rec.rate_hz == 16.0 and len(rec) >= 80
    assert "80 samples written" in err or f"{len(rec)} samples written" in err


def test_table_view_shows_bars_when_live(test_model: Path) -> None:
    from io import StringIO

    from emotionkd.sdk.classifier import EmotionClassifier
    from emotionkd.sdk.live_view import TableOutput
    from emotionkd.sdk.outputs import StreamStatus

    screen = StringIO()
    status = StreamStatus(counters={"frames_lost": 2, "crc_failures": 3, "frames": 10})
    table = TableOutput(screen, live=True, status=status, width=80)
    for p in EmotionClassifier(test_model).stream("sim://?speed=0&duration=7&faults=gap@5:1"):
        status.count(p)
        table.write(p, status)
    table.close()
    text = screen.getvalue()
    assert "█" in text and "arousal" in text and "valence" in text and "P(high)" in text
    assert "lost 2" in text and "bad 3" in text and "quality gap" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "choose a source"),
        (("--simulate", "--replay", "x.csv"), "choose one source"),
        (("--replay", "/no/such.csv"), "does not exist"),
        (("--source", "sim://?rate=0"), "rate"),
        (("--simulate", "--format", "xml"), "unknown --format"),
    ],
)
def test_errors_are_one_clear_line(test_model: Path, args: tuple[str, ...], message: str) -> None:
    code, _, err = _run("stream", "--model", str(test_model), *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1]
    assert "Traceback" not in err


def test_a_missing_model_is_one_line(tmp_path: Path) -> None:
    code, _, err = _run("stream", "--simulate", "--model", str(tmp_path / "none.onnx"))
    assert code == 2 and "does not exist" in err and "Traceback" not in err


def test_devices_lists_serial_ports_and_explains_ble() -> None:
    code, out, err = _run("devices", "--ble-timeout", "1")
    assert code == 0, err
    assert out.startswith("serial ports")
    assert "BLE" in out  # either a scan result or why there is no BLE here


def test_the_console_script_streams(test_model: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "emotionkd.sdk.cli", "stream", "--simulate", "--speed", "0", "--duration", "6",
         "--format", "jsonl", "--model", str(test_model)],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) >= 2


def test_demo_streams_an_emulated_ekd_sensor_through_a_pty(test_model: Path) -> None:
    code, out, err = _run("demo", "--duration", "8", "--format", "jsonl", "--model", str(test_model))
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) >= 4 and [r["start_s"] for r in rows] == [float(i) for i in range(len(rows))]
    assert all(0 <= r["arousal"] <= 1 and 0 <= r["valence"] <= 1 for r in rows if r["quality"] == "ok")
    assert "--port /dev/pts/" in err and "arousal rises" in err and "line noise" in err
    assert err.count("synthetic data") == 1
    summary = err[err.index("summary"):]
    assert re.search(rf"windows +{len(rows)}: \d+ ok, \d+ flagged", summary)
    lost, bad = map(int, re.search(r"(\d+) lost, (\d+) bad", summary).groups())  # type: ignore[union-attr]
    assert lost + bad >= 1  # the injected garbage was seen, and the stream went on
    assert "48 garbage bytes sent" in summary


def test_demo_table_without_faults_and_a_bad_duration(test_model: Path) -> None:
    code, out, err = _run("demo", "--duration", "6", "--no-faults", "--model", str(test_model))
    assert code == 0, err
    assert out.startswith("EKD sensor emulated on /dev/pts/") and "window (s)" in out
    assert "line noise" not in out + err and "0 garbage bytes sent" in err
    code, _, err = _run("demo", "--duration", "0", "--model", str(test_model))
    assert code == 2 and "--duration must be positive" in err
    window_s = EmotionClassifier(test_model).window_s
    code, _, err = _run("demo", "--duration", f"{window_s / 2:g}", "--model", str(test_model))
    assert code == 2 and f"shorter than the model's {window_s:g} s window" in err


def test_demo_timing_leaves_whole_windows_before_and_after_the_change() -> None:
    from emotionkd.sdk.cli import demo_timing

    # minutes of wearer by default (skin conductance answers a stressor over minutes), the change at 40 %
    assert demo_timing(4.0, None) == (360.0, 144.0)
    duration_s, change_s = demo_timing(32.0, None)  # v2: 32 s windows
    assert (duration_s, change_s) == (360.0, 144.0)
    assert change_s >= 32.0 and duration_s - change_s >= 32.0  # windows wholly before and after
    assert demo_timing(200.0, None) == (412.0, 204.0)  # a long window: two of them + 12 s
    assert demo_timing(32.0, 40.0) == (40.0, 16.0)  # too short for both: the 40 % rule stays


def test_simulate_runs_each_device_at_its_own_rate_by_default() -> None:
    # the BITalino has no 128 Hz mode: an emulator default of 128 refused `simulate --device bitalino`
    code, out, err = _run("simulate", "--device", "bitalino", "--duration", "0.2")
    assert code == 0, err
    assert "bitalino emulator at 100 Hz" in err and "protocol=bitalino&rate=100" in err
