"""The bundled model (sdk/models/emotionkd-student.onnx, `make bundled-model` then
`make bundled-model-real`) is what the README says: the project's own INT8 KD+feedback student,
distilled on synthetic data, whose arousal head was fine-tuned on Stress-Predict (real wrist EDA,
MIT) and whose valence head stayed synthetic; small; the licence ships beside it."""

from __future__ import annotations

from emotionkd.firmware_bridge.gsr_synth import synthesize_gsr
from emotionkd.sdk import EmotionClassifier
from emotionkd.sdk.model import BUNDLED_MODEL_NAME, bundled_model_path


def test_the_bundled_model_is_the_pipelines_int8_student_with_a_real_arousal_head() -> None:
    path = bundled_model_path()
    assert path.name == BUNDLED_MODEL_NAME and path.stat().st_size < 3_000_000
    clf = EmotionClassifier()
    contract = clf.contract
    arousal, valence = contract.target_provenance["arousal"], contract.target_provenance["valence"]
    assert arousal.data_kind == "real" and "stress-predict" in arousal.dataset and arousal.subjects == 24
    assert arousal.method == "kd+feedback+finetune" and "MIT" in arousal.licence and "stress" in arousal.labels
    assert 0.5 < arousal.metrics["auc_median_per_person"] < 1.0  # measured on held-out people
    assert valence.data_kind == "synthetic" and valence.dataset == "deap" and valence.method == "kd+feedback"
    assert (path.parent / "STRESS-PREDICT-LICENSE").read_text().startswith("MIT License")
    assert contract.export["int8"] is True
    assert min(contract.export["quantization"]["agreement"].values()) >= 0.9
    # ekd-gsr v2 input: 32 s windows every 1 s, so 40 s of signal give 9 windows
    assert contract.preprocessing.version == 2 and contract.window_s == 32.0
    # the recipe docs/results-real.md measured: a 900 s baseline seeded from the wearer's rest, the
    # compact student (2 heads x 32, one block)
    pre = contract.preprocessing_config()
    assert pre.baseline_tau_s == 900.0 and pre.wants_rest_baseline
    assert arousal.metrics["auc_median_post_rest_seeded"] > 0.5
    assert (contract.model["config"]["heads"], contract.model["config"]["blocks"]) == (2, 1)
    predictions = clf.predict(synthesize_gsr(40.0, seed=4), sample_rate_hz=128.0)
    assert len(predictions) >= 8 and all(p.ok and 0 <= p.arousal <= 1 and 0 <= p.valence <= 1 for p in predictions)
