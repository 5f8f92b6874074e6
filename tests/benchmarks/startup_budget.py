"""Prints the SDK's start-up numbers: import time and peak RSS after loading a model and
running one window (budget: ≤ 0.3 s import, ≤ 64 MB RSS on the reference 2-core machine), the
resident memory after each step on the way, and numpy + onnxruntime alone on the same file.

Run: ``python tests/benchmarks/startup_budget.py [MODEL.onnx] [--before REV] [--runs 3] [--optimize 2]``
(default: the bundled model; each measurement in a fresh process that reads compiled bytecode,
as an installed SDK does; ``--optimize 2``: every process under ``python -OO``).

With ``--before REV`` it also measures that revision's SDK (``git archive``, imported as
``emotionkd_before``; see ``before_revision.py``) on the same model file, interleaved run by run
with this checkout and the floor (the order turns each run), and prints each side's peak per
run, their medians, and the median of the paired differences (this checkout − REV). This
machine's floor moves by ~2 MB between minutes; only figures of one such run compare.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from before_revision import before_package  # this folder (the script's own) is on sys.path

from emotionkd.sdk.bench import TARGETS, startup
from emotionkd.sdk.bench_measures import synthetic_signal
from emotionkd.sdk.bench_startup import bare_onnxruntime_probe, first_window_probe, probe_env
from emotionkd.sdk.model import bundled_model_path


def compare(model: str, revision: str, runs: int, optimize: int = 0) -> dict[str, object]:
    """Peak RSS after one window (MB): this checkout, ``revision`` and the floor, interleaved;
    every process reads compiled bytecode (``probe_env``; one unmeasured process per side
    compiles it)."""
    with tempfile.TemporaryDirectory() as work:
        signal = Path(work) / "gsr.npy"
        np.save(signal, synthetic_signal(40.0, seed=4))
        package = before_package(revision, Path(work) / "before")
        env = probe_env(Path(work) / "pycache", pythonpath=str(Path(work) / "before"), optimize=optimize)
        sides: dict[str, Callable[[], float]] = {
            "after": lambda: first_window_probe(model, signal, env=env)["peak_rss_mb"],
            "before": lambda: first_window_probe(model, signal, package=package, env=env)["peak_rss_mb"],
            "floor": lambda: bare_onnxruntime_probe(model, signal, env=env)["peak_rss_mb"],
        }
        names = list(sides)
        for name in names:  # compiles each side's bytecode: not measured
            sides[name]()
        peaks: dict[str, list[float]] = {name: [] for name in names}
        for run in range(runs):
            for name in names[run % 3:] + names[: run % 3]:  # each side takes each place in turn
                peaks[name].append(round(sides[name](), 2))
    return {
        "peak_rss_runs_mb": peaks,
        "median_mb": {name: round(statistics.median(v), 2) for name, v in peaks.items()},
        "after_minus_before_median_mb": round(statistics.median(a - b for a, b in zip(peaks["after"], peaks["before"], strict=True)), 2),
        "after_minus_floor_median_mb": round(statistics.median(a - f for a, f in zip(peaks["after"], peaks["floor"], strict=True)), 2),
        "before": revision,
        "pythonoptimize": optimize,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", help="an .onnx file (default: the bundled model)")
    parser.add_argument("--before", help="also measure this git revision's SDK, interleaved")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs with --before")
    parser.add_argument("--optimize", type=int, default=0, choices=(0, 1, 2),
                        help="PYTHONOPTIMIZE of every probe (2: python -OO, docstrings stripped)")
    args = parser.parse_args()
    model = args.model or str(bundled_model_path())
    figures = startup(model, threads=1, runs=5, optimize=args.optimize)  # fresh processes: sdk.bench's probes
    result: dict[str, object] = {
        "import_emotionkd_sdk_s_median": figures["import_s"],
        "first_prediction_s_median": figures["first_prediction_s"],
        "import_budget_s": TARGETS["import_s"],
        "peak_rss_after_one_window_mb": round(figures["peak_rss_mb"], 1),
        "peak_rss_runs_mb": [round(mb, 1) for mb in figures["peak_rss_runs_mb"]],
        "rss_budget_mb": TARGETS["peak_rss_mb"],
        "rss_after_each_step_mb": {name: round(mb, 1) for name, mb in figures["rss_steps_mb"].items()},
        "bare_onnxruntime_peak_rss_mb": round(figures["bare_onnxruntime_peak_rss_mb"], 1),
        "bare_onnxruntime_runs_mb": [round(mb, 1) for mb in figures["bare_onnxruntime_runs_mb"]],
        # resident after the window, split: the process's own memory, and pages of files (code)
        "anon_file_mb": [round(mb, 1) for mb in figures["rss_anon_file_mb"]],
        "bare_onnxruntime_anon_file_mb": [round(mb, 1) for mb in figures["bare_onnxruntime_anon_file_mb"]],
        "model": model,
        "pythonoptimize": args.optimize,
    }
    if args.before:
        result["compared"] = compare(model, args.before, args.runs, args.optimize)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
