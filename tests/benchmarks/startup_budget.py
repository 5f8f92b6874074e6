"""Prints the SDK's start-up numbers: import time and peak RSS after loading a model and
running one window (budget: ≤ 0.3 s import, ≤ 80 MB RSS on the reference 2-core machine).

Run: ``python tests/benchmarks/startup_budget.py`` (each measurement in a fresh process).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

IMPORT_PROBE = """
import time
t0 = time.perf_counter()
import emotionkd.sdk
t1 = time.perf_counter()
emotionkd.sdk.preprocess_recording  # first use loads numpy and the preprocessing core
print(t1 - t0, time.perf_counter() - t0)
"""

# The RSS probe runs the real thing: EmotionClassifier (onnxruntime with the SDK's session
# options) on one window. Until the bundled student exists, it builds a model of the student's
# size with the emotionkd I/O and contract in ONNX with onnx.helper (a 512x1000 hidden layer and
# two softmax heads) so the number reflects onnxruntime's real cost.
RSS_PROBE = textwrap.dedent(
    """
    import resource, sys
    from emotionkd.sdk import EmotionClassifier
    from emotionkd.firmware_bridge.gsr_synth import synthesize_gsr
    clf = EmotionClassifier(sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None)
    predictions = clf.predict(synthesize_gsr(4.0, seed=0), 128.0)
    assert len(predictions) == 1 and predictions[0].ok
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    """
)


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

    model = sys.argv[1] if len(sys.argv) > 1 else ""
    runs = [
        [float(v) for v in subprocess.check_output([sys.executable, "-c", IMPORT_PROBE], text=True).split()]
        for _ in range(5)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        if not model:
            model = f"{tmp}/probe.onnx"
            _write_probe_model(model)
        rss_mb = float(subprocess.check_output([sys.executable, "-c", RSS_PROBE, model], text=True))
    result = {
        "import_emotionkd_sdk_s_median": sorted(r[0] for r in runs)[len(runs) // 2],
        "import_plus_first_use_s_median": sorted(r[1] for r in runs)[len(runs) // 2],
        "import_budget_s": 0.3,
        "peak_rss_after_one_window_mb": round(rss_mb, 1),
        "rss_budget_mb": 80,
        "model": model if len(sys.argv) > 1 else "probe (onnx.helper, 0.5 M weights, emotionkd I/O)",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
