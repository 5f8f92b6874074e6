"""EmotionClassifier with an ``ekd-gsr`` v2 contract: 32 s windows at 16 Hz, log-baseline input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx_test_models import build_test_model, expected_probabilities

from emotionkd.firmware_bridge.gsr_synth import synthesize_gsr
from emotionkd.firmware_bridge.samples import SampleBlock
from emotionkd.sdk import EmotionClassifier, Prediction
from emotionkd.sdk.contract import ModelContract
from emotionkd.sdk.preprocessing import DEFAULT_PREPROCESSING, preprocess_recording
from emotionkd.sdk.recording import RecordingWriter

GSR = synthesize_gsr(90.0, arousal=0.7, seed=12)  # 128 Hz, µS


@pytest.fixture(scope="module")
def v2_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_test_model(tmp_path_factory.mktemp("v2") / "v2.onnx", preprocessing=DEFAULT_PREPROCESSING)


def _probs(predictions: list[Prediction], target: str) -> np.ndarray:
    return np.array([getattr(p, target) for p in predictions], dtype=float)


def test_v2_contract_is_read_and_streamed_end_to_end(v2_model: Path, tmp_path: Path) -> None:
    clf = EmotionClassifier(v2_model, hop_s=1.0)
    contract: ModelContract = clf.contract
    assert contract.preprocessing.version == 2 and contract.sample_rate_hz == 16.0
    assert clf.hop_samples == 16
    predictions = clf.predict(GSR, 128.0)
    windows = preprocess_recording(GSR, 128.0, config=DEFAULT_PREPROCESSING, hop_samples=16)
    assert len(predictions) == len(windows) == 90 - 32 + 1
    assert [p.start_s for p in predictions[:3]] == [0.0, 1.0, 2.0]
    assert all(p.end_s - p.start_s == 32.0 and p.ok for p in predictions)
    expected = expected_probabilities(windows.features)
    for target in ("arousal", "valence"):
        np.testing.assert_allclose(_probs(predictions, target), expected[target], atol=1e-5)
    # push in chunks and a replayed recording give the same numbers
    clf.reset()
    pushed: list[Prediction] = []
    for chunk in np.array_split(GSR, 37):
        pushed += clf.push(chunk, sample_rate_hz=128.0)
    pushed += clf.flush()
    np.testing.assert_allclose(_probs(pushed, "arousal"), _probs(predictions, "arousal"), atol=1e-6)
    path = tmp_path / "rec.csv"
    with RecordingWriter(path, device="test", protocol="sim", rate_hz=128.0) as writer:
        for start in range(0, GSR.size, 500):
            chunk = GSR[start : start + 500]
            writer.write(SampleBlock(start, chunk, np.zeros(chunk.size, np.uint8), 128.0))
    streamed = list(EmotionClassifier(v2_model, hop_s=1.0).stream(f"replay://{path}?speed=0"))
    np.testing.assert_allclose(_probs(streamed, "valence"), _probs(predictions, "valence"), atol=1e-5)
