"""A source's name as a person reads it has one owner: its parsed spec's ``describe``. The
sources' ``info.device``, the CLI's live view and a recording's ``device`` line all show it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotionkd.firmware_bridge.sources import GsrSource
from emotionkd.sdk.cli import app
from emotionkd.sdk.recording import read_recording
from emotionkd.sdk.sources import open_source, parse_source
from emotionkd.sdk.sources.lsl import LslSource


@pytest.mark.parametrize(("url", "alone", "with_device"), [
    ("serial:///dev/ttyUSB0?protocol=ekd", "/dev/ttyUSB0 (serial)", "EKD-GSR-01 (serial)"),
    ("ble://AA:BB:CC:DD:EE:FF?protocol=ekd", "AA:BB:CC:DD:EE:FF (ble)", "EKD-GSR-01 (ble)"),
    ("ble://?name=EKD-GSR-02", "EKD-GSR-02 (ble)", "EKD-GSR-01 (ble)"),
    ("replay://some/dir/rec.csv?speed=0", "replay of rec.csv", "replay of rec.csv (recorded from EKD-GSR-01)"),
    ("sim://?seed=4", "simulated GSR sensor (seed 4)", "simulated GSR sensor (seed 4)"),
    ("lsl://Shimmer_GSR", "LSL Shimmer_GSR", "LSL EKD-GSR-01"),
    ("lsl://?type=EDA", "LSL type EDA", "LSL EKD-GSR-01"),
])
def test_each_spec_owns_its_display_form(url: str, alone: str, with_device: str) -> None:
    spec = parse_source(url)
    assert spec.describe() == alone
    assert spec.describe("EKD-GSR-01") == with_device


def test_sources_name_themselves_through_their_spec() -> None:
    serial = GsrSource("serial:///dev/ttyEKD-not-opened?protocol=ekd")  # made, never opened
    assert serial.info.device == serial.spec.describe() == "/dev/ttyEKD-not-opened (serial)"
    lsl = LslSource("lsl://Shimmer_GSR")
    assert lsl.info.device == "LSL Shimmer_GSR"
    with open_source("sim://?seed=9&speed=0") as sim:
        assert sim.info.device == "simulated GSR sensor (seed 9)"


def test_a_replay_and_a_recording_of_it_name_the_file_and_what_recorded_it(tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    code = CliRunner().invoke(app, ["record", str(first), "--source", "sim://?rate=16&speed=0&seed=3",
                                    "--duration", "2"]).exit_code
    assert code == 0
    assert read_recording(first).metadata["device"] == "simulated GSR sensor (seed 3)"
    with open_source(f"replay://{first}?speed=0") as replay:
        assert replay.info.device == "replay of first.csv (recorded from simulated GSR sensor (seed 3))"
    second = tmp_path / "second.csv"  # a recording of the replay says so, and what recorded the file
    assert CliRunner().invoke(app, ["record", str(second), "--source", f"replay://{first}?speed=0"]).exit_code == 0
    assert read_recording(second).metadata["device"] == replay.info.device


def test_the_stream_command_shows_the_spec_name(tmp_path: Path, test_model: Path) -> None:
    rec = tmp_path / "rec.csv"
    assert CliRunner().invoke(app, ["record", str(rec), "--source", "sim://?rate=16&speed=0&seed=5",
                                    "--duration", "2"]).exit_code == 0
    result = CliRunner().invoke(app, ["stream", "--replay", str(rec), "--speed", "0", "--format", "jsonl",
                                      "--model", str(test_model)])
    assert result.exit_code == 0, result.stderr
    assert "streaming replay of rec.csv (recorded from simulated GSR sensor (seed 5)) (replay-recording" in result.stderr
