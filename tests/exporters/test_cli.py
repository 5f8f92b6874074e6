"""``emotionkd-export`` and ``emotionkd-sdk info`` as a user meets them: outputs, and one clear
line (exit code 2, no traceback) for every bad input."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from emotionkd.exporters.cli import app as export_app
from emotionkd.exporters.onnx_export import ExportReport
from emotionkd.sdk.cli import app as sdk_app
from emotionkd.sdk.model_card import read_model_info

runner = CliRunner()


def _one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_export_command_writes_and_reports(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.onnx"
    result = runner.invoke(export_app, [str(checkpoint), "-o", str(out), "--opset", "18"])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    assert f"wrote {out}" in result.stdout and "FP32" in result.stdout
    assert "max |diff|" in result.stdout and f"emotionkd-sdk info {out}" in result.stdout


def test_export_command_int8_with_labelled_windows(checkpoint: Path, labelled_windows: Path, tmp_path: Path) -> None:
    out = tmp_path / "q.onnx"
    result = runner.invoke(export_app, [str(checkpoint), "-o", str(out), "--int8", "--int8-mode", "dynamic",
                                        "--int8-min-agreement", "0.5", "--windows", str(labelled_windows),
                                        "--torch-exporter", "torchscript",  # the fast tracer: dynamo is covered above
                                        "--plain-graph"])  # the training modules, not the inference twin
    assert result.exit_code == 0, result.output
    assert read_model_info(out).contract.export["graph_rewrite"] == "none"
    assert "INT8 (dynamic)" in result.stdout and "macro-F1 FP32 -> INT8" in result.stdout
    assert "latency per window (1 thread, batch 1)" in result.stdout
    card = runner.invoke(sdk_app, ["info", str(out)])
    assert card.exit_code == 0 and "INT8 (dynamic)" in card.stdout and "INT8 agreement" in card.stdout


def test_info_card_and_json(fp32_export: ExportReport) -> None:
    card = runner.invoke(sdk_app, ["info", str(fp32_export.path)])
    assert card.exit_code == 0, card.output
    text = card.stdout
    for expected in ("128 Hz", "512 samples = 4 s", "ekd-gsr v1", "SYNTHETIC", "synthetic (synthetic-deap)",
                     "loso", "kd+feedback", "accuracy 0.61", "FP32", "gsr float [batch, 512]",
                     "opset 18", "student.pt"):
        assert expected in text, expected
    as_json = runner.invoke(sdk_app, ["info", str(fp32_export.path), "--json"])
    data = json.loads(as_json.stdout)
    assert data["contract"] == fp32_export.contract.to_dict()
    assert data["sha256"] == fp32_export.sha256
    assert [o["name"] for o in data["outputs"]] == ["arousal", "valence"]


class _RunsCode:
    """A pickle payload that would create a file if it were ever unpickled unsafely."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _bad_checkpoints(tmp_path: Path, checkpoint: Path) -> dict[str, tuple[Path, str]]:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    good = torch.load(checkpoint, weights_only=True)
    newer_format = tmp_path / "newer_format.pt"
    torch.save({**good, "format_version": 99}, newer_format)
    newer_contract = tmp_path / "newer_contract.pt"
    torch.save({**good, "contract": {**good["contract"], "contract_version": 99}}, newer_contract)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(checkpoint.read_bytes()[:2000])
    return {
        "missing": (tmp_path / "absent.pt", "does not exist"),
        "junk": (junk, "junk.pt is not a"),
        "foreign": (foreign, "not an emotionkd-student checkpoint"),
        "newer format": (newer_format, "upgrade emotionkd"),
        "newer contract": (newer_contract, "newer than this emotionkd"),
        "truncated": (truncated, "truncated.pt"),
    }


@pytest.mark.parametrize("case", ["missing", "junk", "foreign", "newer format", "newer contract", "truncated"])
def test_bad_checkpoints_give_one_line(case: str, checkpoint: Path, tmp_path: Path) -> None:
    path, fragment = _bad_checkpoints(tmp_path, checkpoint)[case]
    result = runner.invoke(export_app, [str(path), "-o", str(tmp_path / "out.onnx")])
    _one_line_error(result, fragment)
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_that_runs_code_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as handle:
        pickle.dump({"format": "emotionkd-student", "payload": _RunsCode(marker)}, handle)
    torch.save({"format": "emotionkd-student", "payload": _RunsCode(marker)}, tmp_path / "evil_zip.pt")
    assert not marker.exists()
    for path in (evil, tmp_path / "evil_zip.pt"):
        result = runner.invoke(export_app, [str(path)])
        _one_line_error(result, "not")
        assert not marker.exists()
    with open(evil, "rb") as handle:  # the payload is live: an unsafe load does run it
        pickle.load(handle)  # noqa: S301 - on purpose, to prove the test could fail
    assert marker.exists()


@pytest.mark.parametrize("case", ["missing", "truncated", "not onnx", "no contract"])
def test_bad_models_give_one_line(case: str, fp32_export: ExportReport, tmp_path: Path) -> None:
    import onnx

    path = tmp_path / "model.onnx"
    if case == "truncated":
        path.write_bytes(fp32_export.path.read_bytes()[:5000])
    elif case == "not onnx":
        path.write_text("hello")
    elif case == "no contract":
        model = onnx.load(str(fp32_export.path))
        del model.metadata_props[:]
        onnx.save(model, str(path))
    fragment = {"missing": "does not exist", "truncated": "not a loadable ONNX model",
                "not onnx": "not a loadable ONNX model", "no contract": "carries no emotionkd contract"}[case]
    _one_line_error(runner.invoke(sdk_app, ["info", str(path)]), fragment)


def test_console_scripts_exit_cleanly(tmp_path: Path) -> None:
    """The installed entry points, as a shell runs them: exit code 2 and one line on stderr."""
    bindir = Path(sys.executable).parent
    for command in ([str(bindir / "emotionkd-export"), str(tmp_path / "x.pt")],
                    [str(bindir / "emotionkd-sdk"), "info", str(tmp_path / "x.onnx")]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def test_bad_windows_file_gives_one_line(checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "w.npz").write_bytes(b"garbage")
    _one_line_error(runner.invoke(export_app, [str(checkpoint), "--windows", str(tmp_path / "w.npz")]),
                    "w.npz is not a readable .npz")
    _one_line_error(runner.invoke(export_app, [str(checkpoint), "--int8-mode", "fp16"]), "unknown INT8 mode")
