"""What keeps a wearable's stream small (issue 17: peak RSS after one window, bundled model):
the session options do not change the predictions, the session does not keep the model's
bytes, and the stream path imports nothing heavy it does not need (hashlib's OpenSSL,
importlib.resources' tempfile/shutil/zipfile, concurrent.futures; logging and threading, which
it needs only on rare events or for a background stream; fractions)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from emotionkd.sdk.bench_measures import synthetic_features, synthetic_signal
from emotionkd.sdk.integrity import _sha256
from emotionkd.sdk.model import OnnxEmotionModel, bundled_model_path, cpu_session


def test_the_sdk_session_predicts_what_a_default_onnxruntime_session_predicts() -> None:
    path = bundled_model_path()
    model = OnnxEmotionModel(path)
    features = synthetic_features(6, model.contract.window_samples, seed=3)
    reference = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # onnxruntime's defaults
    expected = reference.run(None, {"gsr": features})
    names = [o.name for o in reference.get_outputs()]
    got = model.run(features)
    for name, want in zip(names, expected, strict=True):
        np.testing.assert_allclose(got[name], want, atol=1e-5)


def test_the_session_does_not_keep_the_models_bytes() -> None:
    data = bundled_model_path().read_bytes()
    references = sys.getrefcount(data)
    session = cpu_session(data)
    assert sys.getrefcount(data) == references  # onnxruntime's wrapper would hold one more
    assert session.get_inputs()[0].name == "gsr"


def test_the_integrity_hash_is_sha256() -> None:
    payload = bytes(range(256)) * 4099
    digest = _sha256()
    digest.update(memoryview(payload)[:1000])
    digest.update(memoryview(payload)[1000:])
    assert digest.hexdigest() == hashlib.sha256(payload).hexdigest()


_STREAM_PATH = """
import sys
import numpy as np
from emotionkd.sdk import EmotionClassifier
clf = EmotionClassifier()
signal = np.load(sys.argv[1])
assert clf.push(signal[: int((clf.window_s + 1.0) * 128.0)], sample_rate_hz=128.0)[0].ok
heavy = ("hashlib", "_hashlib", "tempfile", "zipfile", "concurrent.futures", "logging", "threading", "fractions")
print(" ".join(m for m in heavy if m in sys.modules))
"""


def test_the_stream_path_imports_no_heavy_module_it_does_not_need(tmp_path: Path) -> None:
    np.save(tmp_path / "gsr.npy", synthetic_signal(40.0, seed=4))
    result = subprocess.run([sys.executable, "-c", _STREAM_PATH, str(tmp_path / "gsr.npy")],
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == []
