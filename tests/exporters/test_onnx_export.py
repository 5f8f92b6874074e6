"""student.pt → ONNX: parity with PyTorch, dynamic batch, the contract inside, INT8, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from emotionkd.exporters import onnx_export, quantize
from emotionkd.exporters.errors import ExportError
from emotionkd.exporters.onnx_export import (
    ExportOptions,
    ExportReport,
    export_checkpoint,
    file_sha256,
)
from emotionkd.exporters.reference_windows import load_windows, synthetic_windows
from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.sdk.contract import ModelContract
from emotionkd.sdk.model_card import read_model_info

from .conftest import CONTRACT


def _torch_probabilities(students, gsr: np.ndarray) -> dict[str, np.ndarray]:
    with torch.no_grad():
        x = torch.from_numpy(gsr)
        return {t: torch.softmax(m(x), -1).numpy() for t, m in students.items()}


def test_fp32_graph_matches_pytorch_on_preprocessed_windows(fp32_export: ExportReport, students) -> None:
    assert fp32_export.path.name == "student.onnx"  # default: next to the checkpoint
    windows = synthetic_windows(CONTRACT, 16, seed=42)  # not the exporter's own windows
    session = ort.InferenceSession(str(fp32_export.path), providers=["CPUExecutionProvider"])
    got = dict(zip(["arousal", "valence"], session.run(["arousal", "valence"], {"gsr": windows.gsr}), strict=True))
    expected = _torch_probabilities(students, windows.gsr)
    for target in ("arousal", "valence"):
        assert got[target].shape == (16, 2) and got[target].dtype == np.float32
        np.testing.assert_allclose(got[target].sum(1), 1.0, atol=1e-5)
        assert np.abs(got[target] - expected[target]).max() <= 1e-4
    # the windows discriminate: the model is not answering a constant
    assert np.ptp(got["arousal"][:, 1]) > 1e-3
    assert 0 <= fp32_export.parity_max_abs_diff <= 1e-4
    assert fp32_export.parity_windows == 64


@pytest.mark.parametrize("batch", [1, 7])
def test_dynamic_batch(fp32_export: ExportReport, students, batch: int) -> None:
    gsr = synthetic_windows(CONTRACT, batch, seed=3).gsr
    session = ort.InferenceSession(str(fp32_export.path), providers=["CPUExecutionProvider"])
    arousal, valence = session.run(None, {"gsr": gsr})
    expected = _torch_probabilities(students, gsr)
    assert arousal.shape == valence.shape == (batch, 2)
    assert np.abs(valence - expected["valence"]).max() <= 1e-4


def test_graph_interface_and_checker(fp32_export: ExportReport) -> None:
    model = onnx.load(str(fp32_export.path))
    onnx.checker.check_model(model, full_check=True)
    (graph_input,) = model.graph.input
    assert graph_input.name == "gsr"
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].dim_value  # symbolic batch axis
    assert dims[1].dim_value == 512
    assert [o.name for o in model.graph.output] == ["arousal", "valence"]
    assert {o.domain: o.version for o in model.opset_import}[""] == 18
    # no exporter debug metadata (stack traces with the exporting machine's paths)
    assert not any(node.metadata_props for node in model.graph.node)
    assert str(Path.cwd()) not in model.SerializeToString().decode("latin-1")


def test_export_stamps_an_integrity_hash_the_sdk_verifies(fp32_export: ExportReport, int8_export: ExportReport) -> None:
    from emotionkd.sdk.integrity import INTEGRITY_KEY, check_integrity

    for report in (fp32_export, int8_export):
        data = report.path.read_bytes()
        assert check_integrity(data, str(report.path)) == "verified"
        keys = [p.key for p in onnx.load_from_string(data).metadata_props]
        assert keys.count(INTEGRITY_KEY) == 1


def test_contract_round_trips_with_export_filled(fp32_export: ExportReport, checkpoint: Path) -> None:
    info = read_model_info(fp32_export.path)
    assert info.contract == fp32_export.contract
    assert info.contract.with_updates(export={}) == CONTRACT
    export = info.contract.export
    assert export["int8"] is False and export["opset"] == 18
    assert export["exporter_version"] and export["torch_exporter"] == "dynamo"
    assert export["parity"]["max_abs_diff"] == fp32_export.parity_max_abs_diff
    assert export["parity"]["tolerance"] == 1e-4
    assert export["source_checkpoint"]["sha256"] == file_sha256(checkpoint)
    assert fp32_export.sha256 == file_sha256(fp32_export.path)
    assert ModelContract.from_json(info.contract.to_json()) == info.contract


def test_int8_is_valid_smaller_and_measured(int8_export: ExportReport, fp32_export: ExportReport) -> None:
    model = onnx.load(str(int8_export.path))
    onnx.checker.check_model(model, full_check=True)
    assert any("Integer" in n.op_type or "Quant" in n.op_type for n in model.graph.node)
    contract = read_model_info(int8_export.path).contract
    q = contract.export["quantization"]
    assert contract.export["int8"] is True and q == int8_export.quantization
    assert q["mode"] in ("dynamic", "static") and set(q["candidates"]) == {"dynamic", "static"}
    assert q["held_out_windows"] == 24 and q["held_out_source"] == "windows.npz"
    assert all(0.5 <= a <= 1 for a in q["agreement"].values())
    assert q["latency_ms"]["fp32"] > 0 and q["latency_ms"]["int8"] > 0 and q["latency_ms"]["threads"] == 1
    assert set(q["macro_f1"]) == {"fp32", "int8"} and set(q["macro_f1"]["int8"]) == {"arousal", "valence"}
    # weight matrices stored as 8-bit integers (the file itself is not smaller at this tiny width:
    # the per-node scales and zero points outweigh the saving on 8-wide weights)
    assert any(i.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8) and np.prod(i.dims) >= 64
               for i in model.graph.initializer)
    assert q["size_bytes"]["int8"] > 0 and q["size_bytes"]["fp32"] > 0
    # it still serves any batch, close to the FP32 graph
    gsr = synthetic_windows(CONTRACT, 7, seed=9).gsr
    fp32 = ort.InferenceSession(str(fp32_export.path)).run(None, {"gsr": gsr})
    int8 = ort.InferenceSession(str(int8_export.path)).run(None, {"gsr": gsr})
    for a, b in zip(fp32, int8, strict=True):
        assert b.shape == (7, 2) and np.abs(a - b).max() < 0.2


def test_int8_refused_below_the_agreement_floor(fp32_export: ExportReport, monkeypatch) -> None:
    fp32 = onnx.load(str(fp32_export.path))
    broken = onnx.load(str(fp32_export.path))
    for init in broken.graph.initializer:  # a "quantised" model whose last layer swaps the classes
        if init.name.endswith((".classifier.weight", ".classifier.bias")):  # the (collapsed) last Linear
            swapped = onnx.numpy_helper.to_array(init)[::-1].copy()
            init.CopyFrom(onnx.numpy_helper.from_array(swapped, init.name))
    monkeypatch.setattr(quantize, "_candidates", lambda *a: {"dynamic": broken.SerializeToString()})
    windows = synthetic_windows(CONTRACT, 16, seed=1)
    with pytest.raises(ExportError, match=r"disagrees with FP32 .*dynamic: arousal \d"):
        quantize.quantize_int8(fp32.SerializeToString(), CONTRACT.targets, windows, windows,
                               "dynamic", min_agreement=0.99, latency_runs=2)


def test_parity_failure_refuses_to_write(checkpoint: Path, tmp_path: Path, monkeypatch) -> None:
    real = onnx_export._optimise_graph

    def tampered(proto: onnx.ModelProto) -> onnx.ModelProto:
        proto = real(proto)
        init = max(proto.graph.initializer, key=lambda i: np.prod(i.dims))
        weights = onnx.numpy_helper.to_array(init)
        # a perturbation that changes the function (a constant shift of the classifier's weights
        # would move both logits alike and leave the softmax unchanged)
        weights = weights + np.random.default_rng(0).normal(0, 0.3, weights.shape).astype(np.float32)
        init.CopyFrom(onnx.numpy_helper.from_array(weights, init.name))
        return proto

    monkeypatch.setattr(onnx_export, "_optimise_graph", tampered)
    out = tmp_path / "bad.onnx"
    # the legacy tracer here: fast, and this exercises its path too
    with pytest.raises(ExportError, match="parity check failed") as caught:
        export_checkpoint(checkpoint, out, ExportOptions(torch_exporter="torchscript"))
    assert caught.value.max_abs_diff is not None and caught.value.max_abs_diff > 1e-4
    assert f"{caught.value.max_abs_diff:.3g}" in str(caught.value)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_torchscript_path_passes_parity(checkpoint: Path, tmp_path: Path) -> None:
    report = export_checkpoint(checkpoint, tmp_path / "ts.onnx", ExportOptions(torch_exporter="torchscript", opset=17))
    assert report.parity_max_abs_diff <= 1e-4
    assert read_model_info(report.path).contract.export["opset"] == 17


def test_inconsistent_checkpoint_and_options(tmp_path: Path, checkpoint: Path) -> None:
    with pytest.raises(ConfigError, match="opset"):
        ExportOptions(opset=11)
    with pytest.raises(ConfigError, match="INT8 mode"):
        ExportOptions(int8_mode="fp16")
    with pytest.raises(ExportError, match="checkpoint itself"):
        export_checkpoint(checkpoint, checkpoint)


def test_windows_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_windows(tmp_path / "none.npz", CONTRACT)
    np.savez(tmp_path / "a.npz", x=np.zeros((4, 512), np.float32))
    with pytest.raises(DataError, match="no 'gsr'"):
        load_windows(tmp_path / "a.npz", CONTRACT)
    np.savez(tmp_path / "b.npz", gsr=np.zeros((4, 256), np.float32))
    with pytest.raises(DataError, match=r"\(N, 512\)"):
        load_windows(tmp_path / "b.npz", CONTRACT)
    np.savez(tmp_path / "c.npz", gsr=np.zeros((4, 512), np.float32), labels=np.zeros((4, 3), np.int64))
    with pytest.raises(DataError, match="labels"):
        load_windows(tmp_path / "c.npz", CONTRACT)
    np.savez(tmp_path / "c2.npz", gsr=np.zeros((4, 512), np.float32), labels=np.full((4, 2), 7))
    with pytest.raises(DataError, match="0 \\(low\\) or 1"):
        load_windows(tmp_path / "c2.npz", CONTRACT)
    (tmp_path / "d.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="not a readable"):
        load_windows(tmp_path / "d.npz", CONTRACT)
    gsr = np.zeros((5, 512), np.float32)
    gsr[1] = np.nan  # an unusable window is dropped, not fed to the model
    np.savez(tmp_path / "e.npz", gsr=gsr)
    assert len(load_windows(tmp_path / "e.npz", CONTRACT)) == 4


def test_a_prepared_dataset_file_is_a_windows_file(tmp_path: Path) -> None:
    from emotionkd.training.windowed import WindowedDataset

    windows = synthetic_windows(CONTRACT, 6, seed=2)
    n = len(windows)
    labels = np.array([[0, 1], [1, 1], [0, 0], [1, 0], [0, 1], [1, 0]], np.int64)
    WindowedDataset(gsr=windows.gsr, eeg=None, labels=labels, ratings=np.full((n, 2), 5.0, np.float32),
                    subject=np.zeros(n, np.int64), trial=np.arange(n), start_s=np.zeros(n, np.float32),
                    meta={"dataset": "synthetic"}).save_npz(tmp_path / "prepared.npz")
    loaded = load_windows(tmp_path / "prepared.npz", CONTRACT)
    np.testing.assert_array_equal(loaded.gsr, windows.gsr)
    np.testing.assert_array_equal(loaded.labels, labels)


def test_default_graph_is_the_inference_twin_and_plain_graph_still_exports(
        fp32_export: ExportReport, checkpoint: Path, tmp_path: Path) -> None:
    twin = onnx.load(str(fp32_export.path))
    assert fp32_export.contract.export["graph_rewrite"].startswith("inference twin")
    assert not any(n.op_type == "BatchNormalization" for n in twin.graph.node)
    plain = export_checkpoint(checkpoint, tmp_path / "plain.onnx",
                              ExportOptions(inference_twin=False, torch_exporter="torchscript"))
    assert plain.contract.export["graph_rewrite"] == "none" and plain.parity_max_abs_diff <= 1e-4
    gsr = synthetic_windows(CONTRACT, 5, seed=3).gsr
    a = ort.InferenceSession(str(fp32_export.path)).run(None, {"gsr": gsr})
    b = ort.InferenceSession(str(plain.path)).run(None, {"gsr": gsr})
    for x, y in zip(a, b, strict=True):
        assert np.abs(x - y).max() <= 1e-5


def test_a_pooled_readout_student_exports_with_parity(tmp_path: Path) -> None:
    from dataclasses import replace

    from emotionkd.training.checkpoint import StudentCheckpoint, save_student_checkpoint
    from emotionkd.training.models import EmotionNetStudent

    from .conftest import TINY, _trained_like

    config = replace(TINY, readout="pool")
    torch.manual_seed(3)
    students = {t: _trained_like(EmotionNetStudent(config), 10 + i) for i, t in enumerate(CONTRACT.targets)}
    path = save_student_checkpoint(
        StudentCheckpoint(contract=CONTRACT, student_config=config, state_dicts={t: s.state_dict() for t, s in students.items()},
                          metrics=dict(CONTRACT.metrics), train_config={"seed": 0}), tmp_path / "pooled.pt")
    report = export_checkpoint(path)
    assert report.parity_max_abs_diff <= 1e-4
    gsr = synthetic_windows(CONTRACT, 9, seed=4).gsr
    got = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"]).run(["arousal"], {"gsr": gsr})[0]
    assert np.abs(got - _torch_probabilities(students, gsr)["arousal"]).max() <= 1e-4
    assert np.ptp(got[:, 1]) > 1e-4  # not a constant answer
