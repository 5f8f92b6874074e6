"""INT8 dynamic-quantisation settings of the exported student, side by side with FP32.

For each onnxruntime ``quantize_dynamic`` setting (per-tensor or per-channel weights,
``reduce_range``, unsigned weights, only the weight matrix multiplies): batch-1 CPU time of
one window through the SDK's session, agreement of the predicted class with FP32, the largest
probability change, and macro-F1 FP32 → INT8 when the windows carry labels. Prints numbers;
asserts nothing. The exporter (``emotionkd-export --int8``) uses the first row's setting.

    .venv/bin/python tests/benchmarks/int8_variants.py student.onnx [--windows prepared.npz] [--runs 300]

``--windows``: an .npz with ``gsr`` (N, 512) preprocessed windows and optional ``labels`` (N, 2)
(``emotionkd-train prepare … --out``); default: synthetic windows (no labels, no F1).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process

from emotionkd.sdk.bench import synthetic_features
from emotionkd.sdk.model import OnnxEmotionModel
from emotionkd.training.evaluation import binary_metrics

VARIANTS: dict[str, dict] = {
    "s8 per-tensor (exporter)": {"weight_type": QuantType.QInt8},
    "s8 per-channel": {"weight_type": QuantType.QInt8, "per_channel": True},
    "s8 reduce_range": {"weight_type": QuantType.QInt8, "reduce_range": True},
    "u8 weights": {"weight_type": QuantType.QUInt8},
    "s8 weight MatMuls only": {"weight_type": QuantType.QInt8, "extra_options": {"MatMulConstBOnly": True}},
}


def cpu_ms(model: OnnxEmotionModel, gsr: np.ndarray, runs: int) -> float:
    """Median process CPU time of one batch-1 window (ms)."""
    windows = [gsr[i:i + 1] for i in range(min(64, gsr.shape[0]))]
    for i in range(20):
        model.run(windows[i % len(windows)])
    times = []
    for i in range(runs):
        started = time.process_time()
        model.run(windows[i % len(windows)])
        times.append(time.process_time() - started)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="FP32 .onnx from emotionkd-export")
    parser.add_argument("--windows", type=Path, help=".npz with gsr (N, 512) [+ labels (N, 2)]")
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    labels = None
    if args.windows:
        data = np.load(args.windows)
        gsr = np.ascontiguousarray(data["gsr"], dtype=np.float32)
        labels = data["labels"] if "labels" in data else None
    else:
        gsr = synthetic_features(300)
    fp32 = OnnxEmotionModel(args.model)
    reference = fp32.run(gsr)
    metadata = {p.key: p.value for p in onnx.load(str(args.model)).metadata_props}

    def f1(probabilities: dict[str, np.ndarray]) -> str:
        if labels is None:
            return ""
        return " ".join(f"{t} {binary_metrics(labels[:, k], (probabilities[t][:, 1] >= 0.5).astype(int))['macro_f1']:.3f}"
                        for k, t in enumerate(("arousal", "valence")))

    print(f"{len(gsr)} windows; FP32: {cpu_ms(fp32, gsr, args.runs):.3f} ms CPU/window, macro-F1 {f1(reference) or '-'}")
    print(f"{'setting':<26}{'CPU ms':>8}{'agree A':>9}{'agree V':>9}{'max |dp|':>9}{'MB':>6}  macro-F1")
    with tempfile.TemporaryDirectory() as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(args.model), str(prepared), skip_symbolic_shape=False)
        for name, settings in VARIANTS.items():
            out = Path(work) / "int8.onnx"
            quantize_dynamic(str(prepared), str(out), op_types_to_quantize=["MatMul", "Gemm"], **settings)
            model = onnx.load(str(out))
            onnx.helper.set_model_props(model, metadata)  # the contract, so the SDK loads it
            onnx.save(model, str(out))
            int8 = OnnxEmotionModel(out)
            got = int8.run(gsr)
            agree = [float(np.mean((got[t][:, 1] >= 0.5) == (reference[t][:, 1] >= 0.5))) for t in ("arousal", "valence")]
            diff = max(float(np.abs(got[t] - reference[t]).max()) for t in got)
            print(f"{name:<26}{cpu_ms(int8, gsr, args.runs):8.3f}{agree[0]:9.1%}{agree[1]:9.1%}{diff:9.4f}"
                  f"{out.stat().st_size / 1e6:6.2f}  {f1(got)}")


if __name__ == "__main__":
    main()
