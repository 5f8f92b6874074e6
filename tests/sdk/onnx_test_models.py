"""Test models for the SDK (imported by tests/sdk/conftest.py and the tests): small ONNX files with exactly the emotionkd I/O and a real contract.

The graph is a fixed linear map of the normalised window → softmax, so a test can compute the
probabilities it must get with numpy (:func:`expected_probabilities`):

* arousal "high" logit − "low" logit = ``RAMP · x`` (a rising conductance reads as arousal),
* valence = ``WAVE · x`` (one slow cosine over the window),

each scaled so that typical windows land well inside (0, 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emotionkd.sdk.contract import ModelContract, PreprocessingSpec, Provenance
from emotionkd.sdk.preprocessing import PreprocessingConfig

WINDOW = 512


def head_weights(window: int = WINDOW) -> dict[str, np.ndarray]:
    """(window, 2) weights per head: column 0 = "low" logit, column 1 = "high" logit."""
    ramp = np.linspace(-1.0, 1.0, window) * (4.0 / window)
    wave = np.cos(np.linspace(0.0, 2 * np.pi, window)) * (4.0 / window)
    return {
        "arousal": np.stack([-ramp / 2, ramp / 2], axis=1).astype(np.float32),
        "valence": np.stack([-wave / 2, wave / 2], axis=1).astype(np.float32),
    }


def expected_probabilities(features: np.ndarray) -> dict[str, np.ndarray]:
    """Probability of "high" per head for (N, W) features, as the test model computes it."""
    out = {}
    for name, w in head_weights(features.shape[1]).items():
        logits = features.astype(np.float64) @ w.astype(np.float64)
        out[name] = 1.0 / (1.0 + np.exp(logits[:, 0] - logits[:, 1]))
    return out


def build_test_model(path: Path, *, data_kind: str = "synthetic", batch: str | int = "batch",
                     input_name: str = "gsr", with_contract: bool = True,
                     preprocessing: PreprocessingConfig | None = None) -> Path:
    """Write a test ONNX model with the emotionkd I/O to ``path``.

    ``preprocessing``: the contract's preprocessing (default: the v1 paper configuration);
    its ``window_samples`` must be :data:`WINDOW`.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    for name, w in head_weights().items():
        inits.append(numpy_helper.from_array(w, f"w_{name}"))
        nodes += [
            helper.make_node("MatMul", [input_name, f"w_{name}"], [f"logits_{name}"]),
            helper.make_node("Softmax", [f"logits_{name}"], [name], axis=1),
        ]
    graph = helper.make_graph(
        nodes, "emotionkd-test",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, WINDOW])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [batch, 2]) for n in ("arousal", "valence")],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if with_contract:
        extra = {}
        if preprocessing is not None:
            extra = dict(preprocessing=PreprocessingSpec.from_config(preprocessing),
                         sample_rate_hz=preprocessing.rate_hz, window_samples=preprocessing.window_samples)
        contract = ModelContract(
            **extra,  # type: ignore[arg-type]
            provenance=Provenance(data_kind=data_kind, dataset="test-linear", method="test"),
            export={"exporter_version": "test", "opset": 17, "int8": False},
        )
        helper.set_model_props(model, contract.to_onnx_metadata())
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


__all__ = ["WINDOW", "build_test_model", "expected_probabilities", "head_weights"]
