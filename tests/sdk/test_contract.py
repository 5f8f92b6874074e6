import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from emotionkd.firmware_bridge.errors import ContractError
from emotionkd.sdk.contract import (
    CONTRACT_VERSION,
    ONNX_METADATA_KEY,
    ModelContract,
    PreprocessingSpec,
    Provenance,
    label_rule_operator,
)
from emotionkd.sdk.preprocessing import PreprocessingConfig


def _rich_contract() -> ModelContract:
    cfg = PreprocessingConfig(lowpass_hz=3.5, max_missing_fraction=0.1)
    return ModelContract(
        preprocessing=PreprocessingSpec.from_config(cfg),
        label_threshold=4.5,
        label_rule=">=",
        provenance=Provenance("real", "deap", "loso", 32, "kd+feedback", "fold 3 of 32"),
        metrics={"arousal": {"accuracy": 0.5506, "macro_f1": 0.535}, "valence": {"accuracy": 0.6918}},
        model={"name": "EmotionNet-Student", "parameters": 993986, "fusion": "fixed"},
        export={"exporter_version": "0.1.0", "opset": 17, "int8": False, "max_abs_diff": 3.1e-07},
    )


def test_round_trip_json_and_checkpoint_dict_exactly() -> None:
    c = _rich_contract()
    assert ModelContract.from_json(c.to_json()) == c
    d = c.to_dict()
    # a checkpoint dict holds plain types only (weights_only=True loads them)
    json.dumps(d)
    assert ModelContract.from_dict(d) == c
    assert c.preprocessing_config() == PreprocessingConfig(lowpass_hz=3.5, max_missing_fraction=0.1)


def test_round_trip_through_a_real_onnx_file(tmp_path) -> None:
    c = _rich_contract()
    x = helper.make_tensor_value_info("gsr", TensorProto.FLOAT, ["batch", 512])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 512])
    graph = helper.make_graph([helper.make_node("Identity", ["gsr"], ["out"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, c.to_onnx_metadata())
    onnx.checker.check_model(model)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    loaded = onnx.load(path)
    props = {p.key: p.value for p in loaded.metadata_props}
    assert ModelContract.from_onnx_metadata(props) == c
    # onnxruntime exposes the same metadata to the SDK
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert ModelContract.from_onnx_metadata(session.get_modelmeta().custom_metadata_map) == c
    out = session.run(None, {"gsr": np.zeros((2, 512), np.float32)})[0]
    assert out.shape == (2, 512)


def test_newer_contract_version_is_refused_clearly() -> None:
    d = ModelContract().to_dict()
    d["contract_version"] = CONTRACT_VERSION + 1
    with pytest.raises(ContractError, match="newer than this emotionkd understands") as info:
        ModelContract.from_dict(d)
    assert info.value.field == "contract_version"


def test_newer_preprocessing_is_refused_clearly() -> None:
    d = ModelContract().to_dict()
    d["preprocessing"]["version"] = 99
    with pytest.raises(ContractError, match="upgrade emotionkd"):
        ModelContract.from_dict(d)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("contract_version"), "contract_version"),
        (lambda d: d.update(surprise=1), "unknown contract fields"),
        (lambda d: d.update(input_unit="Ohm"), "input_unit"),
        (lambda d: d["provenance"].update(data_kind="imagined"), "data_kind"),
        (lambda d: d.update(label_rule="<"), "label_rule"),
        (lambda d: d.update(sample_rate_hz=256.0), "disagree"),
        (lambda d: d["preprocessing"].pop("params"), "malformed"),
    ],
)
def test_malformed_contracts_are_refused(mutate, message) -> None:
    d = ModelContract().to_dict()
    mutate(d)
    with pytest.raises(ContractError, match=message):
        ModelContract.from_dict(d)


def test_missing_metadata_and_bad_json() -> None:
    with pytest.raises(ContractError, match="emotionkd-export"):
        ModelContract.from_onnx_metadata({"producer": "x"})
    with pytest.raises(ContractError, match="not valid JSON"):
        ModelContract.from_onnx_metadata({ONNX_METADATA_KEY: "{oops"})


def test_json_is_canonical() -> None:
    assert _rich_contract().to_json() == _rich_contract().to_json()
    assert ModelContract().is_synthetic


def test_one_label_rule_vocabulary_read_in_either_spelling() -> None:
    assert [label_rule_operator(r) for r in ("gt", "ge", ">", ">=")] == [">", ">=", ">", ">="]
    with pytest.raises(ContractError, match=r"label_rule must be one of \['gt', 'ge'\] or \['>', '>='\], got '<'"):
        label_rule_operator("<")
