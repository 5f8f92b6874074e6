"""The bundled model (sdk/models/emotionkd-student.onnx, `make bundled-model`) is what the
README says: the project's own INT8 KD+feedback student, trained on synthetic data, small."""

from __future__ import annotations

from emotionkd.firmware_bridge.gsr_synth import synthesize_gsr
from emotionkd.sdk import EmotionClassifier
from emotionkd.sdk.model import BUNDLED_MODEL_NAME, bundled_model_path


def test_the_bundled_model_is_the_pipelines_int8_student_on_synthetic_data() -> None:
    path = bundled_model_path()
    assert path.name == BUNDLED_MODEL_NAME and path.stat().st_size < 3_000_000
    clf = EmotionClassifier()
    contract = clf.contract
    assert clf.trained_on_synthetic_data and contract.provenance.data_kind == "synthetic"
    assert contract.provenance.method == "kd+feedback" and contract.provenance.dataset == "deap"
    assert contract.export["int8"] is True
    assert min(contract.export["quantization"]["agreement"].values()) >= 0.9
    # ekd-gsr v2 input: 32 s windows every 1 s, so 40 s of signal give 9 windows
    assert contract.preprocessing.version == 2 and contract.window_s == 32.0
    predictions = clf.predict(synthesize_gsr(40.0, seed=4), sample_rate_hz=128.0)
    assert len(predictions) >= 8 and all(p.ok and 0 <= p.arousal <= 1 and 0 <= p.valence <= 1 for p in predictions)
