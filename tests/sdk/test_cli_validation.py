"""Bad options are refused before anything opens, as one line that names the fix; no internals leak."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotionkd.sdk.cli import app

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--duration", "0"), "--duration must be a positive number of seconds, got 0"),
        (("--duration", "-5"), "--duration must be a positive number of seconds, got -5"),
        (("--hop", "0"), "--hop must be a positive"),
        (("--speed", "-1"), "--speed must be 0"),
        (("--timeout", "0"), "--timeout must be a positive"),
        (("--protocol", "foo"), "unknown --protocol 'foo'; use one of auto, ekd, ascii, shimmer3, bitalino"),
        (("--unit", "furlong"), "unknown GSR unit 'furlong'"),
        (("--hysteresis", "-0.1"), "hysteresis must be >= 0"),
        (("--hysteresis", "1.2"), "hysteresis must be >= 0"),
    ],
)
def test_stream_refuses_bad_options_even_with_simulate(test_model: Path, args: tuple[str, ...], message: str) -> None:
    code, out, err = _run("stream", "--simulate", "--model", str(test_model), *args)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"error: {err.strip().removeprefix('error: ')}"]
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("duration", ["0", "-1"])
def test_record_refuses_a_non_positive_duration_and_writes_nothing(tmp_path: Path, duration: str) -> None:
    path = tmp_path / "rec.csv"
    code, _, err = _run("record", str(path), "--simulate", "--duration", duration)
    assert code == 2 and "--duration must be a positive" in err and not path.exists()


def test_auto_on_a_silent_port_says_no_data_quickly(test_model: Path) -> None:
    master, slave = os.openpty()  # a port nobody answers on
    port = os.ttyname(slave)
    try:
        code, _, err = _run("stream", "--port", port, "--protocol", "auto", "--format", "jsonl",
                            "--model", str(test_model))
    finally:
        os.close(master)
        os.close(slave)
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: no data from {port} in ") and "protocol decodes" not in last


def test_a_replay_row_that_is_not_a_sample_names_its_line(test_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("time,value\n0,1\n0.1,1\n\n@@@###\n0.3,1\n")
    code, _, err = _run("stream", "--replay", str(path), "--model", str(test_model), "--format", "jsonl")
    assert code == 2 and f"{str(path)!r} line 5: every row needs time,value" in err


def test_help_shows_flags_without_a_value_placeholder() -> None:
    result = runner.invoke(app, ["stream", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "--simulate" in result.stdout and "<bool>" not in result.stdout and "<float>" in result.stdout
    bench = runner.invoke(app, ["bench", "--help"], env={"COLUMNS": "200"}).stdout
    assert "issue" not in bench


def test_info_without_a_path_describes_the_bundled_model() -> None:
    code, out, err = _run("info")
    assert code == 0, err
    assert out.startswith("emotionkd model: emotionkd-student.onnx")


def test_bench_render_rounds_the_load_average() -> None:
    from emotionkd.sdk.bench import _load

    assert _load(4.68701171875) == "4.69" and _load(None) == "unknown"


def test_export_of_a_text_file_says_what_to_pass(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from emotionkd.exporters.cli import app as export_app

    notes = tmp_path / "notes.txt"
    notes.write_text("hello notes\n")
    result = runner.invoke(export_app, [str(notes)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: {notes} is not a PyTorch checkpoint (torch.load cannot read it); "
                                     "pass a student.pt written by emotionkd-train")


@pytest.mark.parametrize(
    ("args", "message"),
    [(("demo", "--rate", "0"), "--rate must be a positive number of Hz, got 0"),
     (("demo", "--duration", "-1"), "--duration must be positive"),
     (("demo", "--speed", "0"), "--speed must be in (0, 16]"),
     (("demo", "--speed", "100"), "--speed must be in (0, 16]"),
     (("simulate", "--duration", "-3"), "--duration must be 0 (until Ctrl-C) or a positive"),
     (("simulate", "--rate", "-5"), "--rate must be a positive number of Hz, got -5")],
)
def test_demo_and_simulate_refuse_bad_rates_and_durations_first(args: tuple[str, ...], message: str) -> None:
    code, _, err = _run(*args)
    assert code == 2 and err.strip().splitlines() == [f"error: {err.strip().removeprefix('error: ')}"]
    assert message in err and "synthetic" not in err  # refused before the model was even loaded


@pytest.mark.parametrize("url", ["serial:///dev/ttyS0?protocol=foo", "ble://AA:BB:CC:DD:EE:FF?protocol=foo"])
def test_an_unknown_protocol_in_a_source_url_lists_auto(test_model: Path, url: str) -> None:
    code, _, err = _run("stream", "--source", url, "--model", str(test_model))
    assert code == 2 and "unknown protocol 'foo'" in err and "use one of auto, ekd" in err
