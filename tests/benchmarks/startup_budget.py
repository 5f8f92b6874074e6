"""Prints the SDK's start-up numbers: import time and peak RSS after loading a model and
running one window (budget: ≤ 0.3 s import, ≤ 80 MB RSS on the reference 2-core machine).

Run: ``python tests/benchmarks/startup_budget.py`` (each measurement in a fresh process).
"""

from __future__ import annotations

import json
import sys

# Without a model argument it builds a model of the student's size with the emotionkd I/O and
# contract in ONNX with onnx.helper (a 512x1000 hidden layer and two softmax heads) so the number
# reflects onnxruntime's real cost; pass an exported student (FP32 or INT8) for the real figure.


def _write_probe_model(path: str) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from emotionkd.sdk.contract import ModelContract

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.normal(size=(512, 1000)) / 30).astype(np.float32), "w1")]
    nodes = [helper.make_node("MatMul", ["gsr", "w1"], ["h"])]
    for head in ("arousal", "valence"):
        inits.append(numpy_helper.from_array((rng.normal(size=(1000, 2)) / 30).astype(np.float32), f"w_{head}"))
        nodes += [helper.make_node("MatMul", ["h", f"w_{head}"], [f"logits_{head}"]),
                  helper.make_node("Softmax", [f"logits_{head}"], [head], axis=1)]
    graph = helper.make_graph(
        nodes,
        "probe",
        [helper.make_tensor_value_info("gsr", TensorProto.FLOAT, ["batch", 512])],
        [helper.make_tensor_value_info(h, TensorProto.FLOAT, ["batch", 2]) for h in ("arousal", "valence")],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, ModelContract().to_onnx_metadata())
    onnx.save(model, path)


def main() -> None:
    import tempfile

    from emotionkd.sdk.bench import TARGETS, startup

    model = sys.argv[1] if len(sys.argv) > 1 else ""
    with tempfile.TemporaryDirectory() as tmp:
        if not model:
            model = f"{tmp}/probe.onnx"
            _write_probe_model(model)
        figures = startup(model, threads=1, runs=5)  # fresh processes: sdk.bench's probes
    result = {
        "import_emotionkd_sdk_s_median": figures["import_s"],
        "first_prediction_s_median": figures["first_prediction_s"],
        "import_budget_s": TARGETS["import_s"],
        "peak_rss_after_one_window_mb": round(figures["peak_rss_mb"], 1),
        "rss_budget_mb": TARGETS["peak_rss_mb"],
        "model": model if len(sys.argv) > 1 else "probe (onnx.helper, 0.5 M weights, emotionkd I/O)",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
