"""``emotionkd-sdk bench``: how fast the edge runtime is on *this* device.

Everything here runs the SDK as an app would (:class:`OnnxEmotionModel` with the SDK's session
options, :class:`EmotionClassifier`, :class:`Gateway`), on synthetic GSR from
:mod:`emotionkd.firmware_bridge.gsr_synth` preprocessed by the real ``ekd-gsr`` pipeline.
Figures are medians of repeated runs: a shared or throttled CPU shows up as p99, not as a
wrong median. Start-up figures (import time, first prediction, peak RSS) come from fresh
processes, since a warm interpreter would hide them.

The measurements:

* :func:`latency` — one window (batch 1), both heads, p50/p99/mean in ms, per thread count;
* :func:`throughput` — windows/s when many windows go in one call;
* :func:`streaming` — real-time factor of a replayed 128 Hz recording at 1 s hop, live (1 s
  pushes, one model call per window) and batched (one minute per push), and the CPU cost of a
  live push without the model (the pipeline's own overhead);
* :func:`startup` — import time, time to the first prediction, peak RSS;
* :func:`gateway_capacity` — concurrent 128 Hz streams a :class:`Gateway` keeps real time,
  pushed one by one and as cohorts (``Gateway.push_cohort``: preprocessing vectorised across streams);
* :func:`gemm_gflops` — the CPU's FP32 matrix-multiply rate on one core (numpy/BLAS), the
  yardstick for "how far is the model from what this CPU can do".
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.sdk.bench_measures import (
    COHORT_STREAMS,
    STREAM_RATE_HZ,
    gateway_capacity,
    gemm_gflops,
    latency,
    machine_info,
    streaming,
    synthetic_features,
    synthetic_signal,
    throughput,
)
from emotionkd.sdk.bench_startup import startup

#: the issue's targets, printed beside the measurements
TARGETS: Final = {
    "onnx_fp32_vs_torch_speedup": 2.5,
    "int8_vs_fp32_speedup": 1.6,
    "streaming_x_real_time_one_core": 2000.0,
    "peak_rss_mb": 64.0,
    "import_s": 0.3,
    "gateway_streams_real_time_2_cores": 2000,
    "gateway_p99_tick_s": 1.0,
    # measured side by side by tests/benchmarks/peers.py (one run, interleaved)
    "faithful_int8_vs_keras": 2.5,
    "faithful_int8_vs_torch": 4.5,
    "compact_int8_vs_faithful_int8": 4.0,
}


@dataclass(frozen=True)
class BenchConfig:
    """What :func:`run_bench` measures and how long it takes.

    Attributes:
        threads: onnxruntime intra-op thread counts for the latency figures (throughput uses
            1 and the largest; the gateway runs that many one-thread workers).
        latency_runs: timed batch-1 runs per model and thread count.
        batch: windows per call for the throughput figure (8: the CPU-cheapest per window for
            the student on onnxruntime; larger batches spill the caches).
        stream_hours: hours of 128 Hz signal replayed for the real-time factor.
        gateway_streams: streams the gateway capacity is measured with (the capacity is
            extrapolated from the tick time, then checked at that count when ``verify``).
        gateway_ticks: timed one-second ticks.
        gateway_verify: run a second time at the extrapolated capacity to confirm it.
        startup_runs: fresh processes for the import time (median).
    """

    threads: tuple[int, ...] = (1, 2)
    latency_runs: int = 200
    batch: int = 8
    stream_hours: float = 0.1
    gateway_streams: int = 200
    gateway_ticks: int = 5
    gateway_verify: bool = True
    startup_runs: int = 5

    def __post_init__(self) -> None:
        if not self.threads or any(not isinstance(t, int) or t < 1 for t in self.threads):
            raise ConfigError(f"threads must be positive integers, got {self.threads!r}")
        for name in ("latency_runs", "batch", "gateway_streams", "gateway_ticks", "startup_runs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"bench {name} must be a positive integer, got {value!r}")
        if not (math.isfinite(self.stream_hours) and self.stream_hours > 0):
            raise ConfigError(f"--hours must be a positive number of hours, got {self.stream_hours!r}")


@dataclass
class BenchReport:
    """Everything :func:`run_bench` measured (JSON via :meth:`to_dict`)."""

    machine: dict[str, Any]
    config: dict[str, Any]
    models: list[dict[str, Any]] = field(default_factory=list)
    comparisons: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, Any] = field(default_factory=lambda: dict(TARGETS))

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=float))


def run_bench(models: list[str | Path], config: BenchConfig | None = None,
              progress: Any = None) -> BenchReport:
    """Measure every figure for each model (see the module docstring).

    Args:
        models: ``.onnx`` files (e.g. the FP32 and the INT8 export of one student).
        config: what to measure and for how long.
        progress: optional ``callable(str)`` told what is being measured.

    Returns:
        a :class:`BenchReport`; with two models of which one is INT8, ``comparisons`` holds the
        INT8/FP32 speed-ups.
    """
    from emotionkd.sdk.model import OnnxEmotionModel

    config = config or BenchConfig()
    say = progress or (lambda _: None)
    report = BenchReport(machine=machine_info(), config=asdict(config))
    most = max(config.threads)
    for path in models:
        loaded = OnnxEmotionModel(path)  # fails early and clearly on a bad file
        entry: dict[str, Any] = {
            "model": str(path),
            "int8": bool(loaded.contract.export.get("int8", False)),
            "size_mb": Path(path).stat().st_size / 1e6,
            "latency_batch1": {},
        }
        for threads in config.threads:
            say(f"{Path(path).name}: latency, batch 1, {threads} thread(s)")
            entry["latency_batch1"][str(threads)] = latency(path, threads, config.latency_runs)
        say(f"{Path(path).name}: throughput, batch {config.batch}")
        entry["throughput"] = {str(t): throughput(path, t, config.batch) for t in sorted({1, most})}
        say(f"{Path(path).name}: streaming {config.stream_hours:g} h of 128 Hz GSR")
        entry["streaming"] = streaming(path, config.stream_hours, threads=1)
        say(f"{Path(path).name}: start-up in fresh processes")
        entry["startup"] = startup(path, threads=1, runs=config.startup_runs)
        say(f"{Path(path).name}: gateway capacity, {most} worker(s)")
        entry["gateway"] = gateway_capacity(path, config.gateway_streams, config.gateway_ticks, most, config.gateway_verify)
        report.models.append(entry)
    fp32 = [m for m in report.models if not m["int8"]]
    int8 = [m for m in report.models if m["int8"]]
    if fp32 and int8:
        report.comparisons["int8_vs_fp32_speedup_batch1"] = {
            t: fp32[0]["latency_batch1"][t]["p50_ms"] / int8[0]["latency_batch1"][t]["p50_ms"]
            for t in fp32[0]["latency_batch1"]}
    return report


def _load(load_average: float | None) -> str:
    return "unknown" if load_average is None else f"{load_average:.2f}"


def render(report: BenchReport) -> str:
    """The report as a few aligned tables for a terminal."""
    m = report.machine
    lines = [f"{m['cpu']}, {m['cores']} cores, load {_load(m['load_average_1m'])}, onnxruntime {m['onnxruntime']}, "
             f"FP32 GEMM {m['fp32_gemm_gflops_one_core']:.0f} GFLOP/s on one core"]
    for e in report.models:
        lines.append("")
        lines.append(f"{e['model']} ({'INT8' if e['int8'] else 'FP32'}, {e['size_mb']:.2f} MB)")
        for threads, lat in e["latency_batch1"].items():
            lines.append(f"  latency batch 1, {threads} thread(s): p50 {lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms "
                         f"(CPU {lat['cpu_p50_ms']:.3f} ms)")
        for threads, tp in e["throughput"].items():
            lines.append(f"  throughput batch {tp['batch']}, {threads} thread(s): {tp['windows_per_s']:.0f} windows/s")
        s = e["streaming"]
        lines.append(f"  streaming {s['hours']:g} h at 1 s hop, 1 thread: live {s['live']['x_real_time']:.0f}x real time "
                     f"({s['live']['ms_per_window']:.2f} ms/window; by CPU time {s['live']['x_real_time_by_cpu']:.0f}x), "
                     f"batched {s['batched']['x_real_time']:.0f}x (by CPU {s['batched']['x_real_time_by_cpu']:.0f}x); "
                     f"the pipeline without the model: {s['pipeline_cpu_ms_per_push']:.3f} CPU ms per 1 s push")
        st = e["startup"]
        lines.append(f"  start-up: import {st['import_s']:.3f} s, first prediction {st['first_prediction_s']:.3f} s, "
                     f"peak RSS {st['peak_rss_mb']:.1f} MB after one window "
                     "(own {:.1f} + pages of files {:.1f})".format(*st["rss_anon_file_mb"]))
        steps = ", ".join(f"{name} {mb:.1f}" for name, mb in st["rss_steps_mb"].items())
        lines.append(f"  resident MB after each step: {steps}; numpy and onnxruntime alone on this file: "
                     f"{st['bare_onnxruntime_peak_rss_mb']:.1f} MB peak "
                     "(own {:.1f} + files {:.1f})".format(*st["bare_onnxruntime_anon_file_mb"]))
        g = e["gateway"]
        last = g["measured"][-1]
        lines.append(f"  gateway ({g['workers']} workers): ~{g['capacity_streams']} streams real time "
                     f"(at {last['streams']} streams a 1 s tick took {last['tick_s_median']:.3f} s, "
                     f"{last['push_s_median']:.3f} s of it preprocessing, {last['cpu_s_median']:.3f} CPU s; "
                     f"by CPU time on {min(g['workers'] * g['threads'], m['cores'] or 1)} free cores "
                     f"~{g['capacity_streams_by_cpu']} streams)")
        c = g["cohort"]
        lines.append(f"  gateway cohorts of {COHORT_STREAMS} (preprocessing and gate vectorised): at {c['streams']} "
                     f"streams a tick took {c['tick_s_median']:.3f} s (p99 {c['tick_s_p99']:.3f} s), "
                     f"{c['cpu_s_median']:.3f} CPU s; by CPU time ~{g['capacity_streams_by_cpu_cohort']} streams")
    for name, value in report.comparisons.items():
        lines.append("")
        lines.append(f"{name}: " + ", ".join(f"{t} thread(s) x{v:.2f}" for t, v in value.items()))
    return "\n".join(lines)


__all__ = [
    "STREAM_RATE_HZ",
    "TARGETS",
    "BenchConfig",
    "BenchReport",
    "gateway_capacity",
    "gemm_gflops",
    "latency",
    "machine_info",
    "render",
    "run_bench",
    "startup",
    "streaming",
    "synthetic_features",
    "synthetic_signal",
    "throughput",
]
