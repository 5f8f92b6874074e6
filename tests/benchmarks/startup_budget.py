"""Prints the SDK's start-up numbers: import time and peak RSS after loading a model and
running one window (budget: ≤ 0.3 s import, ≤ 64 MB RSS on the reference 2-core machine), the
resident memory after each step on the way, and numpy + onnxruntime alone on the same file.

Run: ``python tests/benchmarks/startup_budget.py [MODEL.onnx]`` (default: the bundled model;
each measurement in a fresh process).
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    from emotionkd.sdk.bench import TARGETS, startup
    from emotionkd.sdk.model import bundled_model_path

    model = sys.argv[1] if len(sys.argv) > 1 else str(bundled_model_path())
    figures = startup(model, threads=1, runs=5)  # fresh processes: sdk.bench's probes
    result = {
        "import_emotionkd_sdk_s_median": figures["import_s"],
        "first_prediction_s_median": figures["first_prediction_s"],
        "import_budget_s": TARGETS["import_s"],
        "peak_rss_after_one_window_mb": round(figures["peak_rss_mb"], 1),
        "rss_budget_mb": TARGETS["peak_rss_mb"],
        "rss_after_each_step_mb": {name: round(mb, 1) for name, mb in figures["rss_steps_mb"].items()},
        "bare_onnxruntime_peak_rss_mb": round(figures["bare_onnxruntime_peak_rss_mb"], 1),
        "model": model,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
