"""Per-window latency of the exported student: onnxruntime FP32 and INT8 vs PyTorch eager.

All on one thread, batch 1 (a wearable or gateway classifies one window at a time), on
preprocessed synthetic windows. Prints numbers; asserts nothing.

    .venv/bin/python tests/benchmarks/onnx_vs_torch.py [--checkpoint student.pt] [--runs 300]

Without a checkpoint it benchmarks the faithful EmotionNet-Student (993,986 parameters) with
fresh weights; latency does not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from emotionkd.exporters.onnx_export import ExportOptions, export_checkpoint
from emotionkd.exporters.reference_windows import synthetic_windows
from emotionkd.exporters.runtime import cpu_session, latency_ms
from emotionkd.sdk.contract import ModelContract
from emotionkd.training.checkpoint import (
    StudentCheckpoint,
    load_student_checkpoint,
    save_student_checkpoint,
)
from emotionkd.training.models import EmotionNetStudent, StudentConfig


def torch_latency_ms(students: dict[str, torch.nn.Module], gsr: np.ndarray, runs: int, warmup: int = 10) -> float:
    """Median time of both students on one window, softmax included (what the ONNX graph does)."""
    windows = [torch.from_numpy(gsr[i:i + 1]) for i in range(gsr.shape[0])]

    def once(x: torch.Tensor) -> None:
        for model in students.values():
            torch.softmax(model(x), dim=-1)

    times = []
    with torch.inference_mode():
        for i in range(warmup):
            once(windows[i % len(windows)])
        for i in range(runs):
            started = time.perf_counter()
            once(windows[i % len(windows)])
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="student.pt (default: the faithful student, fresh weights)")
    parser.add_argument("--runs", type=int, default=300, help="timed batch-1 runs per engine")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as work:
        checkpoint = args.checkpoint
        if checkpoint is None:
            torch.manual_seed(0)
            config = StudentConfig()
            students = {t: EmotionNetStudent(config).eval() for t in ("arousal", "valence")}
            checkpoint = save_student_checkpoint(
                StudentCheckpoint(ModelContract(), config, {t: m.state_dict() for t, m in students.items()}),
                Path(work) / "student.pt")
        loaded = load_student_checkpoint(checkpoint)
        students = loaded.build_all()
        windows = synthetic_windows(loaded.contract, 64, seed=123).gsr
        fp32 = export_checkpoint(checkpoint, Path(work) / "s.onnx")
        int8 = export_checkpoint(checkpoint, Path(work) / "s.int8.onnx",
                                 ExportOptions(int8=True, int8_min_agreement=0.0, latency_runs=50))

        rows = [("PyTorch eager FP32", torch_latency_ms(students, windows, args.runs), None)]
        for label, report in (("onnxruntime FP32", fp32), (f"onnxruntime INT8 ({int8.quantization['mode']})", int8)):
            session = cpu_session(report.path.read_bytes(), threads=1)
            rows.append((label, latency_ms(session, windows, args.runs), report.size_bytes))

    params = sum(p.numel() for p in next(iter(students.values())).parameters())
    print(f"student: {params:,} trainable parameters per target, both targets per window; "
          f"torch {torch.__version__}, onnxruntime {ort.__version__}, {platform.processor() or platform.machine()}")
    print(f"1 thread, batch 1, median of {args.runs} runs on preprocessed synthetic windows")
    base = rows[0][1]
    print(f"{'engine':<28}{'ms/window':>10}{'vs torch':>10}{'file MB':>9}")
    for label, ms, size in rows:
        size_text = f"{size / 1e6:9.2f}" if size else f"{'':>9}"
        print(f"{label:<28}{ms:10.3f}{base / ms:9.2f}x{size_text}")
    q = int8.quantization
    print("INT8 candidates (agreement with FP32 on held-out windows, ms/window): " + "; ".join(
        f"{n}: " + ", ".join(f"{t} {a:.1%}" for t, a in c["agreement"].items()) + f", {c['latency_ms']:.3f} ms"
        for n, c in q["candidates"].items()))


if __name__ == "__main__":
    main()
