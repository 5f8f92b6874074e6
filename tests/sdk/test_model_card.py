"""The model card reads an ONNX file's contract through onnxruntime alone (small graphs built
with onnx.helper here, no torch) and renders it; bad files give typed errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emotionkd.firmware_bridge.errors import ContractError, ModelError
from emotionkd.sdk.contract import ONNX_METADATA_KEY, ModelContract, Provenance
from emotionkd.sdk.model_card import read_model_info, render_model_card

onnx = pytest.importorskip("onnx")
helper = onnx.helper


def _model(path: Path, metadata: dict[str, str] | None) -> Path:
    """gsr [batch, 512] → arousal, valence [batch, 2]: softmax of a tiny linear map."""
    weight = onnx.numpy_helper.from_array(np.full((512, 2), 0.01, np.float32), "w")
    nodes = [helper.make_node("MatMul", ["gsr", "w"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["arousal"], axis=-1),
             helper.make_node("Softmax", ["logits"], ["valence"], axis=-1)]
    graph = helper.make_graph(
        nodes, "card", [helper.make_tensor_value_info("gsr", onnx.TensorProto.FLOAT, ["batch", 512])],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, ["batch", 2]) for n in ("arousal", "valence")],
        [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="test")
    model.ir_version = 10
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


REAL = ModelContract(
    provenance=Provenance(data_kind="real", dataset="deap", protocol="loso", subjects=32, method="kd+feedback",
                          notes="student distilled from the EEG+GSR teacher"),
    metrics={"arousal": {"accuracy": 0.5506, "macro_f1": 0.535}},
    model={"name": "EmotionNet-Student", "parameters": 993986},
    export={"exporter": "emotionkd-export", "exporter_version": "9.9", "torch_version": "2.13.0",
            "torch_exporter": "dynamo", "opset": 18, "int8": True,
            "parity": {"max_abs_diff": 6e-8, "tolerance": 1e-4, "windows": 64},
            "quantization": {"mode": "dynamic", "agreement": {"arousal": 0.984, "valence": 1.0},
                             "held_out_windows": 64, "latency_ms": {"fp32": 2.5, "int8": 1.7, "threads": 1, "batch": 1},
                             "macro_f1": {"fp32": {"arousal": 0.53}, "int8": {"arousal": 0.52}}},
            "source_checkpoint": {"name": "student.pt", "sha256": "ab" * 32}},
)


def test_reads_contract_and_signature(tmp_path: Path) -> None:
    info = read_model_info(_model(tmp_path / "m.onnx", REAL.to_onnx_metadata()))
    assert info.contract == REAL
    assert [str(s) for s in info.inputs] == ["gsr float [batch, 512]"]
    assert [s.name for s in info.outputs] == ["arousal", "valence"]
    assert info.size_bytes == (tmp_path / "m.onnx").stat().st_size
    data = info.to_dict()
    assert json.loads(json.dumps(data))["contract"] == REAL.to_dict()
    assert ModelContract.from_dict(data["contract"]) == REAL


def test_card_says_what_it_expects_and_what_it_is(tmp_path: Path) -> None:
    card = render_model_card(read_model_info(_model(tmp_path / "m.onnx", REAL.to_onnx_metadata())))
    for expected in ("128 Hz", "512 samples = 4 s", "ekd-gsr v1", "lowpass_hz = 5.0", "skin conductance in uS",
                     "real (deap), 32 subjects", "protocol       loso", "accuracy 0.551", "macro_f1 0.535",
                     "993986", "INT8 (dynamic)", "arousal 98.4%", "FP32 2.5 ms -> INT8 1.7 ms",
                     "rating > 5 is 'high'", "student.pt (sha256 abababababab", "opset 18"):
        assert expected in card, expected
    assert "SYNTHETIC" not in card


def test_synthetic_fp32_model_says_so(tmp_path: Path) -> None:
    contract = ModelContract(export={"int8": False, "opset": 18})
    card = render_model_card(read_model_info(_model(tmp_path / "m.onnx", contract.to_onnx_metadata())))
    assert "SYNTHETIC" in card and "FP32" in card and "none recorded" in card


def test_no_contract(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="carries no emotionkd contract") as caught:
        read_model_info(_model(tmp_path / "plain.onnx", None))
    assert "plain.onnx" in str(caught.value)


def test_newer_contract(tmp_path: Path) -> None:
    newer = json.dumps({**REAL.to_dict(), "contract_version": 7})
    with pytest.raises(ContractError, match="newer than this emotionkd"):
        read_model_info(_model(tmp_path / "new.onnx", {ONNX_METADATA_KEY: newer}))


def test_broken_contract_json(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="not valid JSON"):
        read_model_info(_model(tmp_path / "bad.onnx", {ONNX_METADATA_KEY: "{not json"}))


def test_missing_corrupt_and_truncated_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        read_model_info(tmp_path / "absent.onnx")
    good = _model(tmp_path / "m.onnx", REAL.to_onnx_metadata()).read_bytes()
    (tmp_path / "cut.onnx").write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        read_model_info(tmp_path / "cut.onnx")
    (tmp_path / "text.onnx").write_text("definitely not protobuf")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        read_model_info(tmp_path / "text.onnx")
