"""Personal calibration: a rest recording seeds a v2 model's causal baseline (classifier and CLI)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from onnx_test_models import build_test_model, expected_probabilities
from typer.testing import CliRunner

from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.firmware_bridge.gsr_synth import synthesize_gsr
from emotionkd.sdk import EmotionClassifier
from emotionkd.sdk.cli import app
from emotionkd.sdk.preprocessing import (
    DEFAULT_PREPROCESSING,
    preprocess_recording,
    rest_baseline_us,
)

REST = 3.0 + 0.1 * np.sin(np.arange(4 * 180) / 40.0)  # 3 min of rest at 4 Hz around 3 µS
TASK = synthesize_gsr(90.0, arousal=0.8, seed=3)  # 128 Hz, µS


@pytest.fixture(scope="module")
def v2_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_test_model(tmp_path_factory.mktemp("cal") / "v2.onnx", preprocessing=DEFAULT_PREPROCESSING)


def _e4(path: Path, values: np.ndarray) -> Path:
    path.write_text("1644227574.000000\n4.000000\n" + "\n".join(f"{v:.6f}" for v in values) + "\n")
    return path


def test_a_rest_recording_seeds_the_baseline_of_every_stream(v2_model: Path, tmp_path: Path) -> None:
    rest = _e4(tmp_path / "EDA.csv", REST)
    seeded = EmotionClassifier(v2_model, hop_s=1.0, baseline=rest)
    expected_us = rest_baseline_us(REST, 4.0, "uS", DEFAULT_PREPROCESSING)
    assert seeded.baseline_us == pytest.approx(expected_us) and 2.9 < expected_us < 3.1
    predictions = seeded.predict(TASK, 128.0)
    windows = preprocess_recording(TASK, 128.0, config=DEFAULT_PREPROCESSING, hop_samples=16,
                                   initial_baseline_us=expected_us)
    np.testing.assert_allclose([p.arousal for p in predictions],
                               expected_probabilities(windows.features)["arousal"], atol=1e-5)
    cold = EmotionClassifier(v2_model, hop_s=1.0).predict(TASK, 128.0)
    assert not np.allclose([p.arousal for p in cold], [p.arousal for p in predictions], atol=1e-4)
    assert EmotionClassifier(v2_model, baseline=2.5).baseline_us == 2.5


def test_bad_baselines_are_clear_errors(v2_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="positive resting conductance"):
        EmotionClassifier(v2_model, baseline=-1.0)
    with pytest.raises(DataError, match="no valid conductance"):
        EmotionClassifier(v2_model, baseline=_e4(tmp_path / "flat.csv", np.full(40, np.nan)))
    (tmp_path / "junk.csv").write_text("hello\nworld\n")
    with pytest.raises(DataError, match="junk.csv: not a rest recording"):
        EmotionClassifier(v2_model, baseline=tmp_path / "junk.csv")
    v1 = build_test_model(tmp_path / "v1.onnx")
    with pytest.raises(ConfigError, match="no causal baseline to seed"):
        EmotionClassifier(v1, baseline=3.0)


def test_stream_baseline_option(v2_model: Path, tmp_path: Path) -> None:
    rest = _e4(tmp_path / "rest.csv", REST)
    replay = _e4(tmp_path / "task.csv", TASK[::32])  # 4 Hz
    result = CliRunner().invoke(app, ["stream", "--model", str(v2_model), "--replay", str(replay), "--speed", "0",
                                      "--format", "jsonl", "--baseline", str(rest)])
    assert result.exit_code == 0, result.output
    assert "baseline: seeded at 3.0" in result.output
    bad = CliRunner().invoke(app, ["stream", "--model", str(v2_model), "--replay", str(replay), "--speed", "0",
                                   "--format", "jsonl", "--baseline", str(tmp_path / "missing.csv")])
    assert bad.exit_code == 2 and "missing.csv" in bad.output


def test_a_model_trained_on_rest_seeded_streams_asks_for_a_rest_recording(v2_model: Path, tmp_path: Path) -> None:
    rest_trained = build_test_model(tmp_path / "rest.onnx",
                                    preprocessing=replace(DEFAULT_PREPROCESSING, baseline_seed="rest"))
    replay = _e4(tmp_path / "task.csv", TASK[::32])
    runner = CliRunner()

    def stream(model: Path, *extra: str) -> str:
        result = runner.invoke(app, ["stream", "--model", str(model), "--replay", str(replay), "--speed", "0",
                                     "--format", "jsonl", *extra])
        assert result.exit_code == 0, result.output
        return result.output

    assert "--baseline REST.csv" in stream(rest_trained)
    assert "--baseline REST.csv" not in stream(rest_trained, "--baseline", str(_e4(tmp_path / "r.csv", REST)))
    assert "--baseline REST.csv" not in stream(v2_model)  # trained cold: nothing to ask
    from emotionkd.sdk.model_card import read_model_info, render_model_card

    assert "calibration" in render_model_card(read_model_info(rest_trained))
    assert "calibration" not in render_model_card(read_model_info(v2_model))
