"""Live 1 s pushes: this checkout against an earlier revision, interleaved in one process.

A wearable pushes each second's 128 Hz samples; every push completes one window and one model
call. The earlier revision's ``sdk`` and ``firmware_bridge`` are taken with ``git archive`` into
a temporary package ``emotionkd_before`` (imports renamed), so both run in this process on the
same signal, taking turns every ``--block`` pushes (a shared machine's load changes within
seconds; turns this short see the same load). Each side is timed by this thread's CPU clock.

Per repetition it prints, for both sides: the bundled model's live pushes as × real time by
CPU and CPU ms per push, and the pipeline alone (``model.run`` answered by a constant: segments,
preprocessing, flags, gate, prediction assembly) in CPU ms per push; and whether both sides
made the same predictions (a digest of times, verdicts, probabilities and levels). Asserts
nothing. ``--stages`` also times each stage of a push (µs of thread CPU per push, both sides,
the same turns; each timed call carries ~1 µs of the timer's own wrapper, which the other
figures of such a run then include too).

    .venv/bin/python tests/benchmarks/live_push.py [--before 5d848c3] [--hours 0.25] [--reps 6] [--block 60] [--stages]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from before_revision import before_package  # this folder (the script's own) is on sys.path

from emotionkd.sdk.bench_measures import STREAM_RATE_HZ, synthetic_signal

#: (module, attribute path, label) of the stages timed by ``--stages``, outermost first
STAGES = (
    ("sdk.classifier", "EmotionClassifier.push", "whole push (EmotionClassifier.push)"),
    ("sdk.model", "OnnxEmotionModel.run", "model.run (SDK wrapper)"),
    ("sdk.pipeline", "StreamPipeline.push_array", "pipeline (StreamPipeline.push_array)"),
    ("sdk.preprocessing", "GsrPreprocessor.push", "  preprocessing (GsrPreprocessor.push)"),
    ("sdk.resampling", "StreamingResampler.push", "    resampler"),
    ("sdk.windowing", "Windower.push", "    windowers (raw and features)"),
    ("sdk.normalisation", "LogBaseline.push", "    log baseline"),
    ("sdk.source_flags", "SourceFlags.push", "    source flags: push"),
    ("sdk.source_flags", "SourceFlags.missing_at", "    source flags: missing marks"),
    ("sdk.source_flags", "SourceFlags.window_counts", "    source flags: window counts"),
    ("sdk.preprocessing", "to_conductance_us", "    unit conversion"),
    ("sdk.preprocessing", "GsrPreprocessor._hold", "    hold of short dropouts"),
    ("sdk.pipeline", "gate_windows", "  quality gate"),
    ("sdk.prediction", "assemble", "prediction assembly"),
)


def _time_stages(package: str, into: dict[str, float]) -> None:
    """Wrap every :data:`STAGES` function of ``package`` to add its thread CPU (s) to ``into``
    while ``into["live"]`` is set (the live turns; the pipeline-alone turns are not counted)."""
    for module_name, path, label in STAGES:
        owner: Any = importlib.import_module(f"{package}.{module_name}")
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        inner = getattr(owner, name)

        def timed(*args: Any, _inner: Any = inner, _label: str = label, **kwargs: Any) -> Any:
            t0 = time.thread_time()
            try:
                return _inner(*args, **kwargs)
            finally:
                if into["live"]:
                    into[_label] = into.get(_label, 0.0) + time.thread_time() - t0

        setattr(owner, name, timed)


class Side:
    """One code base: a classifier on the bundled model and a model-less pipeline."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.stage_s: dict[str, float] = {"live": 0.0}
        classifier = importlib.import_module(f"{package}.sdk.classifier")
        self.assemble = importlib.import_module(f"{package}.sdk.prediction").assemble
        self.clf = classifier.EmotionClassifier(hop_s=1.0, threads=1)
        self.answer = {t: np.full((64, 2), 0.5, np.float32) for t in self.clf.model.targets}
        self.reset()

    def reset(self) -> None:
        self.clf.reset()
        self.pipeline, self.labels = self.clf.recipe.new_pipeline(), self.clf.recipe.new_labels()
        self.predictions: list[Any] = []
        self.cpu_s = {"live": 0.0, "pipeline": 0.0}

    def live(self, chunks: list[np.ndarray]) -> None:
        self.stage_s["live"] = 1.0
        t0 = time.thread_time()
        for chunk in chunks:
            self.predictions += self.clf.push(chunk, sample_rate_hz=STREAM_RATE_HZ)
        self.cpu_s["live"] += time.thread_time() - t0
        self.stage_s["live"] = 0.0

    def pipeline_only(self, chunks: list[np.ndarray]) -> None:
        t0 = time.thread_time()
        for chunk in chunks:
            for gated in self.pipeline.push_array(chunk, STREAM_RATE_HZ, "uS", None):
                self.assemble(gated, {t: p[:gated.passed] for t, p in self.answer.items()}, self.labels)
        self.cpu_s["pipeline"] += time.thread_time() - t0

    def digest(self) -> str:
        rows = [(p.start_s, p.quality, p.arousal, p.valence, p.conductance_us, p.samples_missing)
                for p in self.predictions]
        return hashlib.sha256(repr(rows).encode()).hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="5d848c3", help="the earlier revision (git)")
    parser.add_argument("--hours", type=float, default=0.25, help="signal per repetition and side")
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--block", type=int, default=60, help="pushes per turn")
    parser.add_argument("--stages", action="store_true", help="also time each stage of a push")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        sides = {"before": Side(before_package(args.before, Path(work))), "after": Side("emotionkd")}
        hop = int(STREAM_RATE_HZ)
        signal = synthetic_signal(args.hours * 3600.0, seed=1)
        chunks = [signal[i:i + hop] for i in range(0, signal.size, hop)]
        for side in sides.values():  # warm-up: one turn each, not counted
            side.live(chunks[:args.block])
            side.pipeline_only(chunks[:args.block])
            side.reset()
        if args.stages:
            for side in sides.values():
                _time_stages(side.package, side.stage_s)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
        for rep in range(args.reps):
            order = list(sides.items()) if rep % 2 == 0 else list(sides.items())[::-1]
            for start in range(0, len(chunks), args.block):
                for _, side in order:
                    side.live(chunks[start:start + args.block])
                for _, side in order:
                    side.pipeline_only(chunks[start:start + args.block])
            digests = {name: side.digest() for name, side in sides.items()}
            for name, side in sides.items():
                results[name].append({"x_rt": len(chunks) / side.cpu_s["live"],
                                      "ms_push": side.cpu_s["live"] / len(chunks) * 1e3,
                                      "pipeline_ms": side.cpu_s["pipeline"] / len(chunks) * 1e3})
                side.reset()
            line = "  ".join(f"{name}: {r[-1]['x_rt']:6.0f}x {r[-1]['ms_push']:.3f} ms, pipeline {r[-1]['pipeline_ms']:.3f} ms"
                             for name, r in results.items())
            same = "same predictions" if len(set(digests.values())) == 1 else f"PREDICTIONS DIFFER {digests}"
            print(f"rep {rep + 1}: {line}  ({same}; load {Path('/proc/loadavg').read_text().split()[0]})", flush=True)
        print(f"{len(chunks)} live 1 s pushes per side and repetition, turns of {args.block}; medians:")
        for name, r in results.items():
            print(f"  {name:6s} {statistics.median(x['x_rt'] for x in r):6.0f}x real time by CPU "
                  f"(range {min(x['x_rt'] for x in r):.0f}-{max(x['x_rt'] for x in r):.0f}), "
                  f"{statistics.median(x['ms_push'] for x in r):.3f} ms per push, "
                  f"pipeline alone {statistics.median(x['pipeline_ms'] for x in r):.3f} ms "
                  f"({min(x['pipeline_ms'] for x in r):.3f}-{max(x['pipeline_ms'] for x in r):.3f})")
        if args.stages:
            pushes = len(chunks) * args.reps
            print("stages, µs of thread CPU per live push (pipeline-alone turns not counted):")
            for _, _, label in STAGES:
                print(f"  {label:40s} " + "  ".join(
                    f"{name} {side.stage_s.get(label, 0.0) / pushes * 1e6:6.1f}" for name, side in sides.items()))
        ratios = [a["ms_push"] / b["ms_push"] for a, b in zip(results["after"], results["before"], strict=True)]
        pipe = [a["pipeline_ms"] / b["pipeline_ms"] for a, b in zip(results["after"], results["before"], strict=True)]
        print(f"  after/before per repetition: push {min(ratios):.3f}-{max(ratios):.3f} "
              f"(median {statistics.median(ratios):.3f}), pipeline {min(pipe):.3f}-{max(pipe):.3f} "
              f"(median {statistics.median(pipe):.3f})")


if __name__ == "__main__":
    main()
