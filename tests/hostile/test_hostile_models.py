"""Hostile and damaged models: a bit-flipped file is refused (unless --no-verify), a model that
answers NaN gives a per-window ``model_error`` verdict, never a crash and never a label."""

from __future__ import annotations

import io
import json
import logging
import os
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from emotionkd.firmware_bridge.errors import DataError, ModelError
from emotionkd.sdk.classifier import MODEL_ERROR, EmotionClassifier
from emotionkd.sdk.cli import app
from emotionkd.sdk.contract import ModelContract, Provenance
from emotionkd.sdk.integrity import check_integrity, stamp_integrity, strip_integrity
from emotionkd.sdk.model import OnnxEmotionModel, bundled_model_path
from emotionkd.sdk.outputs import CsvOutput, JsonlOutput, StreamStatus

runner = CliRunner()
WINDOW = 512


def linear_model(path: Path, weight: float, *, stamp: bool = True) -> Path:
    """A model with the emotionkd I/O whose every weight is ``weight`` (NaN gives NaN outputs)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    for name in ("arousal", "valence"):
        inits.append(numpy_helper.from_array(np.full((WINDOW, 2), weight, np.float32), f"w_{name}"))
        nodes += [helper.make_node("MatMul", ["gsr", f"w_{name}"], [f"l_{name}"]),
                  helper.make_node("Softmax", [f"l_{name}"], [name], axis=1)]
    graph = helper.make_graph(
        nodes, "hostile", [helper.make_tensor_value_info("gsr", TensorProto.FLOAT, ["batch", WINDOW])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 2]) for n in ("arousal", "valence")],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    contract = ModelContract(provenance=Provenance(data_kind="synthetic", dataset="hostile", method="test"),
                             export={"exporter_version": "test", "opset": 17, "int8": False})
    helper.set_model_props(model, contract.to_onnx_metadata())
    data = model.SerializeToString()
    path.write_bytes(stamp_integrity(data) if stamp else data)
    return path


def features(n: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, WINDOW)).astype(np.float32)


# --- integrity ---------------------------------------------------------------------------------

def test_stamping_the_bundled_model_left_its_predictions_bit_identical(tmp_path: Path) -> None:
    bundled = bundled_model_path()
    assert check_integrity(bundled.read_bytes(), str(bundled)) == "verified"
    original = tmp_path / "unstamped.onnx"
    original.write_bytes(strip_integrity(bundled.read_bytes()))
    x = features(64)
    stamped_out = OnnxEmotionModel(bundled).run(x)
    original_out = OnnxEmotionModel(original, verify=False).run(x)
    for target, value in stamped_out.items():
        np.testing.assert_array_equal(value, original_out[target])  # bit for bit
    assert stamp_integrity(original.read_bytes()) == bundled.read_bytes()


def flipped_copies(source: Path, tmp_path: Path, count: int = 5) -> list[Path]:
    data = source.read_bytes()
    rng = random.Random(4)
    out = []
    for i in range(count):
        damaged = bytearray(data)
        at = rng.randrange(len(data) // 10, len(data) * 9 // 10)  # inside graph and weights
        damaged[at] ^= 1 << rng.randrange(8)
        path = tmp_path / f"flipped-{i}.onnx"
        path.write_bytes(bytes(damaged))
        out.append(path)
    return out


def test_a_bit_flipped_model_is_refused_by_load_info_and_stream(tmp_path: Path) -> None:
    for path in flipped_copies(bundled_model_path(), tmp_path):
        with pytest.raises(ModelError, match=f"{path.name}.*integrity|{path.name}.*not a loadable ONNX"):
            OnnxEmotionModel(path)
        info = runner.invoke(app, ["info", str(path)])
        assert info.exit_code == 2 and path.name in info.stderr, info.stderr
        stream = runner.invoke(app, ["stream", "--simulate", "--speed", "0", "--duration", "5", "--model", str(path)])
        assert stream.exit_code == 2 and ("--no-verify" in stream.stderr or "not a loadable ONNX" in stream.stderr)


def test_no_verify_loads_a_flipped_weight(tmp_path: Path) -> None:
    path = linear_model(tmp_path / "m.onnx", 0.001)
    data = bytearray(path.read_bytes())
    at = data.index(np.float32(0.001).tobytes())  # the first weight
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="integrity"):
        OnnxEmotionModel(path)
    assert OnnxEmotionModel(path, verify=False).integrity == "not checked"
    result = runner.invoke(app, ["info", str(path), "--no-verify"])
    assert result.exit_code == 0, result.stderr


def test_a_model_without_hash_loads_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = linear_model(tmp_path / "old.onnx", 0.001, stamp=False)
    with caplog.at_level(logging.WARNING):
        model = OnnxEmotionModel(path)
    assert model.integrity == "unstamped"
    assert "no integrity hash" in caplog.text


def test_garbage_and_truncated_files_are_model_errors(tmp_path: Path) -> None:
    whole = bundled_model_path().read_bytes()
    cases = {"empty": b"", "text": b"hello world\n" * 10, "truncated": whole[: len(whole) // 2],
             "zeros": bytes(4096), "random": random.Random(1).randbytes(10_000)}
    for name, data in cases.items():
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(data)
        with pytest.raises(ModelError):
            OnnxEmotionModel(path)
        result = runner.invoke(app, ["info", str(path)])
        assert result.exit_code == 2 and "Traceback" not in result.stderr, (name, result.stderr)


# --- NaN outputs -------------------------------------------------------------------------------

def test_nan_outputs_are_a_model_error_verdict_never_a_label(tmp_path: Path) -> None:
    classifier = EmotionClassifier(linear_model(tmp_path / "nan.onnx", float("nan")))
    t = np.arange(0, 12, 1 / 32)
    predictions = classifier.predict(5 + 0.1 * np.sin(t), sample_rate_hz=32)
    assert predictions and all(p.quality == MODEL_ERROR for p in predictions)
    assert all(p.arousal is None and p.arousal_label is None and p.valence_label is None for p in predictions)
    for writer in (JsonlOutput(io.StringIO()), CsvOutput(io.StringIO())):
        for p in predictions:
            writer.write(p, StreamStatus())
    text = io.StringIO()
    JsonlOutput(text).write(predictions[0], StreamStatus())
    assert json.loads(text.getvalue())["quality"] == MODEL_ERROR


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_cli_stream_with_a_nan_model_writes_model_error_rows(tmp_path: Path, fmt: str) -> None:
    model = linear_model(tmp_path / "nan.onnx", float("nan"))
    result = runner.invoke(app, ["stream", "--simulate", "--speed", "0", "--duration", "8", "--format", fmt,
                                 "--model", str(model)])
    assert result.exit_code == 0, result.stderr
    rows = result.stdout.splitlines()
    assert len(rows) >= 4 and all(MODEL_ERROR in row for row in rows[1 if fmt == "csv" else 0:])
    assert "nan" not in result.stdout.lower() and "inf" not in result.stdout.lower()


def test_writers_refuse_non_finite_numbers() -> None:
    from emotionkd.sdk.classifier import Prediction

    bad = Prediction(0.0, 4.0, float("nan"), 0.5, "high", "high", "ok", "", 0, 5.0)
    for writer in (JsonlOutput(io.StringIO()), CsvOutput(io.StringIO())):
        with pytest.raises(DataError, match="arousal"):
            writer.write(bad, StreamStatus())


# --- absurd contracts ----------------------------------------------------------------------------

ABSURD = {
    "rate 1e308 Hz": {"sample_rate_hz": 1e308, "params": {"rate_hz": 1e308}},
    "rate 0.001 Hz": {"sample_rate_hz": 0.001, "params": {"rate_hz": 0.001}},
    "window 10^12 samples": {"window_samples": 10**12, "params": {"window_samples": 10**12}},
    "hop 10^15 samples": {"train_hop_samples": 10**15},
}


def absurd_model(path: Path, changes: dict) -> Path:
    """A model file whose contract JSON says something no model can be (written by hand: the
    contract class refuses to build it)."""
    import onnx

    good = linear_model(path, 0.001, stamp=False)
    model = onnx.load(str(good))
    contract = ModelContract.from_onnx_metadata({p.key: p.value for p in model.metadata_props}).to_dict()
    params = changes.get("params", {})
    contract.update({k: v for k, v in changes.items() if k != "params"})
    contract["preprocessing"]["params"].update(params)
    for prop in model.metadata_props:
        if prop.key == "emotionkd.contract":
            prop.value = json.dumps(contract)
    path.write_bytes(stamp_integrity(model.SerializeToString()))
    return path


@pytest.mark.parametrize("name", sorted(ABSURD))
def test_absurd_contracts_are_refused_by_info_and_stream(name: str, tmp_path: Path) -> None:
    from emotionkd.firmware_bridge.errors import EmotionKDError

    path = absurd_model(tmp_path / "absurd.onnx", ABSURD[name])
    with pytest.raises(EmotionKDError, match="sample_rate_hz|window_samples|train_hop_samples"):
        OnnxEmotionModel(path)
    for args in (["info", str(path)], ["stream", "--simulate", "--speed", "0", "--duration", "3", "--model", str(path)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (name, args[0], result.stdout[-300:])
        assert result.stderr.splitlines()[-1].startswith("error: ")


def test_stream_refuses_an_absurd_hop(tmp_path: Path) -> None:
    result = runner.invoke(app, ["stream", "--simulate", "--speed", "0", "--duration", "3", "--hop", "1e15"])
    assert result.exit_code == 2 and "hop" in result.stderr


# --- fuzzed contracts and model bytes ------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(["sample_rate_hz", "window_samples", "train_hop_samples", "input_unit", "targets",
                            "class_names", "label_threshold", "label_rule", "provenance", "preprocessing",
                            "contract_version", "metrics", "export", "model"]),
       value=JSON_VALUES)
def test_any_contract_field_value_loads_or_is_a_contract_error(key: str, value: object) -> None:
    from emotionkd.firmware_bridge.errors import ContractError

    data = ModelContract(provenance=Provenance(data_kind="synthetic", dataset="x", method="t")).to_dict()
    data[key] = value
    try:
        text = json.dumps(data)
    except ValueError:
        return
    try:
        contract = ModelContract.from_json(text)
    except ContractError:
        return
    assert 2 <= contract.window_samples <= 2**20 and 0.5 <= contract.sample_rate_hz <= 32768


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), flips=st.integers(1, 8))
def test_mutated_model_bytes_load_or_are_model_errors(tmp_path: Path, seed: int, flips: int) -> None:
    from emotionkd.firmware_bridge.errors import EmotionKDError

    base = linear_model(tmp_path / "base.onnx", 0.001).read_bytes()
    rng = random.Random(seed)
    data = bytearray(base)
    for _ in range(flips):
        op = rng.randrange(3)
        at = rng.randrange(len(data))
        if op == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            del data[at : at + rng.randint(1, 64)]
        else:
            data[at:at] = rng.randbytes(rng.randint(1, 16))
    path = tmp_path / "mutated.onnx"
    path.write_bytes(bytes(data))
    for verify in (True, False):
        try:
            model = OnnxEmotionModel(path, verify=verify)
        except EmotionKDError:
            continue
        assert verify is False or bytes(data) == base  # a verified load is the unaltered file
        out = model.run(features(2))
        assert all(v.shape == (2, 2) for v in out.values())


def test_external_data_outside_the_model_folder_is_never_read(tmp_path: Path) -> None:
    """A model may name weight files beside it; the SDK loads only the verified bytes of the
    .onnx itself, so a file elsewhere (here: absolute path) is never opened."""
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    folder = tmp_path / "models"
    folder.mkdir()
    path = linear_model(folder / "m.onnx", 0.001, stamp=False)
    model = onnx.load(str(path))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    onnx.save(model, str(path))
    outside = tmp_path / "outside.bin"
    (folder / "w.bin").rename(outside)
    model = onnx.load(str(path), load_external_data=False)
    for init in model.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                entry.value = str(outside)
    path.write_bytes(stamp_integrity(model.SerializeToString()))
    before = outside.stat().st_atime_ns
    with pytest.raises(ModelError):
        OnnxEmotionModel(path)
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 2
    assert outside.stat().st_atime_ns == before or os.environ.get("CI_NOATIME_UNRELIABLE")
