"""``emotionkd-sdk plot``: a session as a picture, flagged stretches shaded, predictions underneath."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emotionkd.firmware_bridge.samples import SampleFlag
from emotionkd.sdk.cli import app
from emotionkd.sdk.session_plot import flagged_spans

pytest.importorskip("matplotlib")
runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stderr


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rec = tmp_path_factory.mktemp("plot") / "rec.csv"
    code, err = _run("record", str(rec), "--source", "sim://?rate=32&speed=0&faults=electrode_off@10:6,gap@25:2",
                     "--duration", "40")
    assert code == 0, err
    return rec


def test_flagged_spans_are_the_runs_of_one_bit() -> None:
    flags = np.array([0, 2, 2, 0, 32, 34, 2, 0], dtype=np.uint8)
    assert flagged_spans(flags, SampleFlag.ELECTRODE_OFF, 2.0) == [(0.5, 1.5), (2.5, 3.5)]
    assert flagged_spans(flags, SampleFlag.GAP, 2.0) == [(2.0, 3.0)]
    assert flagged_spans(flags, SampleFlag.SATURATED, 2.0) == []


def _has_colour(image: np.ndarray, rgb: tuple[float, float, float], tol: float = 0.03) -> bool:
    return bool((np.abs(image[..., :3] - np.array(rgb)) < tol).all(axis=-1).any())


def test_plot_with_predictions_shades_the_flags_and_marks_the_windows(
        session: Path, test_model: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    preds = tmp_path / "p.jsonl"
    code, err = _run("stream", "--replay", str(session), "--speed", "0", "--model", str(test_model),
                     "--format", "jsonl", "--output", str(preds))
    assert code == 0, err
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    out = tmp_path / "session.png"
    code, err = _run("plot", str(session), "--predictions", str(preds), "-o", str(out))
    assert code == 0, err
    flagged = sum(r["quality"] != "ok" for r in rows)
    assert f"wrote {out} ({len(rows)} windows, {flagged} failed the quality gate)" in err and flagged >= 6
    image = imread(out)
    assert image.shape[:2] == (600, 1100)
    orange_on_white = tuple(0.7 + 0.3 * c for c in (253 / 255, 126 / 255, 20 / 255))
    grey_on_white = tuple(0.7 + 0.3 * c for c in (173 / 255, 181 / 255, 189 / 255))
    top = image[: image.shape[0] // 2]
    assert _has_colour(top, orange_on_white) and _has_colour(top, grey_on_white)  # electrode off, gap
    assert _has_colour(image, (217 / 255, 72 / 255, 15 / 255))  # the arousal line


def test_plot_without_predictions_predicts_the_recording(session: Path, test_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.svg"
    code, err = _run("plot", str(session), "--model", str(test_model), "-o", str(out))
    assert code == 0, err
    assert "windows" in err and out.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("content", "message"),
    [('{"start_s": 0, "end_s": 4, "quality": "ok"}\nnot json\n', "line 2: not JSON"),
     ('{"start_s": 0}\n', "line 1: not a prediction")],
)
def test_bad_predictions_are_one_line_with_the_line_number(
        session: Path, tmp_path: Path, content: str, message: str) -> None:
    preds = tmp_path / "p.jsonl"
    preds.write_text(content)
    code, err = _run("plot", str(session), "--predictions", str(preds), "-o", str(tmp_path / "x.png"))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_plot_refuses_an_unknown_image_type_before_reading(tmp_path: Path) -> None:
    code, err = _run("plot", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "x.txt"))
    assert code == 2 and "write a .png, .svg or .pdf" in err


def test_the_sdk_and_its_cli_load_no_matplotlib_until_plot_runs() -> None:
    import subprocess
    import sys

    code = ("import sys, emotionkd.sdk, emotionkd.sdk.cli, emotionkd.sdk.session_plot; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
