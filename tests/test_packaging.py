"""The wheel users get: every package under emotionkd.*, typed, no bare top-level modules."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{proc.stderr[-2000:]}")
    (built,) = out.glob("emotionkd-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_wheel_holds_namespaced_packages_only(wheel_names: set[str]) -> None:
    top = {name.split("/")[0] for name in wheel_names if not name.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"emotionkd"}, top
    for package in ("firmware_bridge", "sdk", "training", "exporters"):
        assert f"emotionkd/{package}/__init__.py" in wheel_names
        assert f"emotionkd/{package}/py.typed" in wheel_names


def test_wheel_declares_the_three_console_scripts(wheel: Path, wheel_names: set[str]) -> None:
    (entry_points,) = [n for n in wheel_names if n.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(entry_points).decode()
    for script, target in [
        ("emotionkd-sdk", "emotionkd.sdk.cli:main"),
        ("emotionkd-train", "emotionkd.training.cli:main"),
        ("emotionkd-export", "emotionkd.exporters.cli:main"),
    ]:
        assert f"{script} = {target}" in text


def test_wheel_carries_the_bundled_model(wheel_names: set[str]) -> None:
    assert "emotionkd/sdk/models/emotionkd-student.onnx" in wheel_names


def test_wheel_carries_the_dashboard_page_and_the_vendored_chart_library(wheel_names: set[str]) -> None:
    from emotionkd.sdk.dashboard.server import STATIC_FILES

    for name, _ in STATIC_FILES.values():
        assert f"emotionkd/sdk/dashboard/static/{name}" in wheel_names, name
    assert "emotionkd/sdk/dashboard/static/vendor/uPlot.LICENSE" in wheel_names


def test_the_build_says_nothing_to_fix(tmp_path: Path) -> None:
    """No setuptools warnings (deprecated licence table, data folders missing from packages):
    `make test` output stays readable."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    output = proc.stdout + proc.stderr
    assert "Warning" not in output and "deprecated" not in output, output[-3000:]
