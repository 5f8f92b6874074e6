"""Per-window latency of the exported student: onnxruntime FP32 and INT8 vs PyTorch eager.

All on one thread, batch 1 (a wearable or gateway classifies one window at a time), on
preprocessed synthetic windows. Prints numbers; asserts nothing. Beside each engine: the FLOP
rate it reaches (FLOPs of both students counted by torch's FlopCounterMode) and how far that is
from this core's FP32 GEMM rate (numpy's BLAS on a 1024² product, one thread): the speed of
light for an FP32 engine on this CPU.

    .venv/bin/python tests/benchmarks/onnx_vs_torch.py [--checkpoint student.pt] [--runs 300] [--threads 1] [--plain]

``--plain`` also times the graph exported from the training module itself
(``ExportOptions(inference_twin=False)``), the exporter's default before the inference twin.

Without a checkpoint it benchmarks the faithful EmotionNet-Student (993,986 parameters) with
fresh weights; latency does not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from emotionkd.exporters.onnx_export import ExportOptions, export_checkpoint
from emotionkd.exporters.reference_windows import synthetic_windows
from emotionkd.sdk.bench import gemm_gflops
from emotionkd.sdk.contract import ModelContract
from emotionkd.sdk.model import OnnxEmotionModel
from emotionkd.training.checkpoint import (
    StudentCheckpoint,
    load_student_checkpoint,
    save_student_checkpoint,
)
from emotionkd.training.models import EmotionNetStudent, StudentConfig


def interleaved_ms(engines: dict[str, Callable[[np.ndarray], object]], gsr: np.ndarray, runs: int,
                   warmup: int = 10) -> dict[str, tuple[float, float]]:
    """Median (wall ms, CPU ms) of each engine on one window, the engines taking turns run by
    run so that a busy shared machine slows them alike. CPU time is the calling thread's
    (every engine here runs on it with one thread), which other processes cannot inflate."""
    windows = [np.ascontiguousarray(gsr[i:i + 1]) for i in range(gsr.shape[0])]
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
    for i in range(warmup + runs):
        for name, run in engines.items():
            wall0, cpu0 = time.perf_counter(), time.thread_time()
            run(windows[i % len(windows)])
            if i >= warmup:
                times[name].append((time.perf_counter() - wall0, time.thread_time() - cpu0))
    return {name: (statistics.median(t[0] for t in ts) * 1e3, statistics.median(t[1] for t in ts) * 1e3)
            for name, ts in times.items()}


def torch_engine(students: dict[str, torch.nn.Module]) -> Callable[[np.ndarray], object]:
    """Both students on one window, softmax included (what the ONNX graph does)."""

    def run(x: np.ndarray) -> object:
        with torch.inference_mode():
            t = torch.from_numpy(x)
            return [torch.softmax(model(t), dim=-1) for model in students.values()]

    return run


def window_flops(students: dict[str, torch.nn.Module], window_samples: int) -> int:
    """FLOPs (2 per multiply-add) of all students on one window, as torch counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        for model in students.values():
            model(torch.zeros(1, window_samples))
    return int(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="student.pt (default: the faithful student, fresh weights)")
    parser.add_argument("--runs", type=int, default=300, help="timed batch-1 runs per engine")
    parser.add_argument("--threads", type=int, default=1, help="threads of every engine (the target is stated for 1)")
    parser.add_argument("--plain", action="store_true",
                        help="also time the graph exported without the inference twin (before/after)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

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
        # the exporter's default graph (the inference twin) and, with --plain, the graph of the
        # training module as exported before the twin existed, timed side by side
        graphs = [("", True)] + ([(" plain", False)] if args.plain else [])
        reports = []
        for suffix, twin in graphs:
            fp32 = export_checkpoint(checkpoint, Path(work) / f"s{suffix}.onnx", ExportOptions(inference_twin=twin))
            int8 = export_checkpoint(checkpoint, Path(work) / f"s{suffix}.int8.onnx",
                                     ExportOptions(int8=True, int8_min_agreement=0.0, latency_runs=50,
                                                   inference_twin=twin))
            reports += [(f"onnxruntime FP32{suffix}", fp32), (f"onnxruntime INT8{suffix} ({int8.quantization['mode']})", int8)]
        int8 = reports[1][1]

        engines: dict[str, Callable[[np.ndarray], object]] = {"PyTorch eager FP32": torch_engine(students)}
        sizes: dict[str, int | None] = {"PyTorch eager FP32": None}
        for label, report in reports:
            model = OnnxEmotionModel(report.path, threads=args.threads)  # the SDK's session options
            engines[label], sizes[label] = model.run, report.size_bytes
        measured = interleaved_ms(engines, windows, args.runs)
        rows = [(label, *measured[label], sizes[label]) for label in engines]

    params = sum(p.numel() for p in next(iter(students.values())).parameters())
    flops = window_flops(students, loaded.contract.window_samples)
    peak = gemm_gflops() * args.threads
    print(f"student: {params:,} trainable parameters per target, both targets per window "
          f"({flops / 1e6:.1f} MFLOP); torch {torch.__version__}, onnxruntime {ort.__version__}, "
          f"{platform.processor() or platform.machine()}, load {os.getloadavg()[0]:.1f}")
    print(f"{args.threads} thread(s), batch 1, median of {args.runs} runs on preprocessed synthetic windows; "
          f"FP32 GEMM rate {peak:.0f} GFLOP/s -> bound {flops / peak / 1e6:.3f} ms/window in FP32")
    print("wall = elapsed time, CPU = the thread's CPU time (immune to other processes on a shared machine); "
          "GFLOP/s from CPU time")
    base_wall, base_cpu = rows[0][1], rows[0][2]
    print(f"{'engine':<34}{'wall ms':>9}{'CPU ms':>8}{'vs torch':>10}{'(CPU)':>7}{'GFLOP/s':>9}{'of GEMM':>9}{'file MB':>9}")
    for label, wall, cpu, size in rows:
        size_text = f"{size / 1e6:9.2f}" if size else f"{'':>9}"
        rate = flops / (cpu * 1e-3) / 1e9
        print(f"{label:<34}{wall:9.3f}{cpu:8.3f}{base_wall / wall:9.2f}x{base_cpu / cpu:6.2f}x{rate:9.1f}{rate / peak:9.0%}{size_text}")
    q = int8.quantization
    print("INT8 candidates (agreement with FP32 on held-out windows, ms/window): " + "; ".join(
        f"{n}: " + ", ".join(f"{t} {a:.1%}" for t, a in c["agreement"].items()) + f", {c['latency_ms']:.3f} ms"
        for n, c in q["candidates"].items()))


if __name__ == "__main__":
    main()
