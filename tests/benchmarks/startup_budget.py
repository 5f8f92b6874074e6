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

# Until the bundled student exists, the probe builds a model of the student's size in ONNX
# with onnx.helper (a 3904x128 + 128x128 MLP head over the 512-sample window) so the number
# reflects onnxruntime's real cost.
RSS_PROBE = textwrap.dedent(
    """
    import resource, sys, tempfile, os
    import numpy as np
    MODEL = sys.argv[1] if len(sys.argv) > 1 else ""
    import emotionkd.sdk as sdk
    from emotionkd.firmware_bridge.gsr_synth import synthesize_gsr
    import onnxruntime as ort
    opts = ort.SessionOptions(); opts.intra_op_num_threads = 1
    session = ort.InferenceSession(MODEL, opts, providers=["CPUExecutionProvider"])
    w = sdk.preprocess_recording(synthesize_gsr(8, seed=0), 128.0)
    name = session.get_inputs()[0].name
    session.run(None, {name: w.features[:1]})
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    """
)


def _write_probe_model(path: str) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(size=(512, 1000)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(size=(1000, 2)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["gsr", "w1"], ["h"]), helper.make_node("MatMul", ["h", "w2"], ["out"])],
        "probe",
        [helper.make_tensor_value_info("gsr", TensorProto.FLOAT, ["batch", 512])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 2])],
        initializer=[w1, w2],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


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
        "model": model if len(sys.argv) > 1 else "probe (onnx.helper, 0.5 M weights)",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
