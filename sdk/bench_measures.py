"""The measurements of ``emotionkd-sdk bench`` (see :mod:`emotionkd.sdk.bench`): each runs the
SDK as an app would and returns plain numbers."""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from emotionkd.sdk.gateway import Gateway

#: the stream rate and hop every streaming figure uses (the model's rate, one prediction a second)
STREAM_RATE_HZ: Final = 128.0
#: streams per cohort in the gateway figure (one hub radio's worth; see Gateway.add_cohort)
COHORT_STREAMS: Final = 500


# -- inputs ---------------------------------------------------------------------------------
def synthetic_signal(seconds: float, seed: int = 0) -> npt.NDArray[np.float64]:
    """``seconds`` of realistic 128 Hz skin conductance (µS)."""
    from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, GsrSynthesizer

    return GsrSynthesizer(GsrSynthConfig(rate_hz=STREAM_RATE_HZ), seed=seed).read(int(round(seconds * STREAM_RATE_HZ)))


def synthetic_features(n_windows: int, window_samples: int = 512, seed: int = 0) -> npt.NDArray[np.float32]:
    """(n_windows, window_samples) preprocessed windows, as the model sees them."""
    from emotionkd.sdk.preprocessing import GsrPreprocessor

    hop = STREAM_RATE_HZ
    seconds = window_samples / STREAM_RATE_HZ + n_windows * hop / STREAM_RATE_HZ + 2
    windows = GsrPreprocessor(STREAM_RATE_HZ, "uS", hop_samples=int(hop)).apply(synthetic_signal(seconds, seed))
    return np.ascontiguousarray(windows.features[windows.usable][:n_windows])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(math.ceil(q / 100.0 * len(ordered))) - 1)]


# -- model figures --------------------------------------------------------------------------
def latency(model: str | Path, threads: int, runs: int, warmup: int = 20) -> dict[str, float]:
    """Batch-1 time of both heads on one window through the SDK's model wrapper (ms)."""
    from emotionkd.sdk.model import OnnxEmotionModel

    onnx_model = OnnxEmotionModel(model, threads=threads)
    features = synthetic_features(32, onnx_model.contract.window_samples)
    windows = [features[i:i + 1] for i in range(features.shape[0])]
    for i in range(warmup):
        onnx_model.run(windows[i % len(windows)])
    times, cpu = [], []
    for i in range(runs):
        started, cpu0 = time.perf_counter(), time.process_time()
        onnx_model.run(windows[i % len(windows)])
        times.append((time.perf_counter() - started) * 1e3)
        cpu.append((time.process_time() - cpu0) * 1e3)
    # CPU time (all threads of this process) is what other processes on a shared machine
    # cannot inflate; wall time is what the app waits.
    return {"p50_ms": statistics.median(times), "p99_ms": _percentile(times, 99),
            "mean_ms": statistics.fmean(times), "cpu_p50_ms": statistics.median(cpu), "runs": runs}


def throughput(model: str | Path, threads: int, batch: int, min_seconds: float = 1.0) -> dict[str, float]:
    """Windows per second with ``batch`` windows per call (median over calls)."""
    from emotionkd.sdk.model import OnnxEmotionModel

    onnx_model = OnnxEmotionModel(model, threads=threads)
    features = synthetic_features(batch, onnx_model.contract.window_samples)
    if features.shape[0] < batch:  # pragma: no cover - the synthetic signal has no gaps
        features = np.resize(features, (batch, features.shape[1]))
    onnx_model.run(features)
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - started < min_seconds:
        t0 = time.perf_counter()
        onnx_model.run(features)
        times.append(time.perf_counter() - t0)
    return {"windows_per_s": batch / statistics.median(times), "batch": batch, "threads": threads}


def streaming(model: str | Path, hours: float, threads: int = 1, batch_push_s: float = 60.0) -> dict[str, Any]:
    """Real-time factor of ``hours`` of 128 Hz GSR through the whole classifier at 1 s hop.

    ``live``: pushed one second at a time (a sensor's pace; one model call per window);
    ``batched``: pushed ``batch_push_s`` at a time (replaying a file; one call per push).
    The signal is generated before the clock starts.
    """
    from emotionkd.sdk.classifier import EmotionClassifier

    signal = synthetic_signal(hours * 3600.0, seed=1)
    seconds = signal.size / STREAM_RATE_HZ
    out: dict[str, Any] = {"hours": hours, "threads": threads}
    for mode, push_s in (("live", 1.0), ("batched", batch_push_s)):
        classifier = EmotionClassifier(model, hop_s=1.0, threads=threads)
        chunk = int(round(push_s * STREAM_RATE_HZ))
        cpu0, started = time.process_time(), time.perf_counter()
        predictions = 0
        for i in range(0, signal.size, chunk):
            predictions += len(classifier.push(signal[i:i + chunk], sample_rate_hz=STREAM_RATE_HZ))
        predictions += len(classifier.flush())
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
        out[mode] = {"push_s": push_s, "windows": predictions, "wall_s": wall, "cpu_s": cpu,
                     "x_real_time": seconds / wall, "x_real_time_by_cpu": seconds / max(cpu, 1e-9),
                     "ms_per_window": wall / max(predictions, 1) * 1e3}
    out["pipeline_cpu_ms_per_push"] = pipeline_cpu_ms_per_push(classifier, signal)
    return out


def pipeline_cpu_ms_per_push(classifier: Any, signal: npt.NDArray[np.float64]) -> float:
    """CPU ms per live 1 s push of everything but onnxruntime: ``classifier``'s own pipeline
    (segments, preprocessing, flags, quality gate) and prediction assembly, the model's answer
    replaced by a constant. The per-push overhead a faster model cannot remove."""
    from emotionkd.sdk.prediction import assemble

    pipeline, labels = classifier.recipe.new_pipeline(), classifier.recipe.new_labels()
    answer = {t: np.full((64, 2), 0.5, np.float32) for t in classifier.model.targets}
    chunk = int(STREAM_RATE_HZ)
    cpu0 = time.process_time()
    for i in range(0, signal.size, chunk):
        for gated in pipeline.push_array(signal[i:i + chunk], STREAM_RATE_HZ, "uS", None):
            assemble(gated, {t: p[:gated.passed] for t, p in answer.items()}, labels)
    pushes = max(1, -(-signal.size // chunk))
    return (time.process_time() - cpu0) / pushes * 1e3


def gateway_capacity(model: str | Path, streams: int, ticks: int, workers: int, verify: bool = True,
                     threads: int = 1) -> dict[str, Any]:
    """How many concurrent 128 Hz streams at 1 s hop one :class:`Gateway` keeps real time.

    Each tick pushes one second of every stream and runs the batch; a tick that takes under
    a second keeps up. The capacity is ``streams / median tick seconds`` (the work is linear
    in streams), then, with ``verify``, measured again at that many streams.
    """
    first = _gateway_ticks(model, streams, ticks, threads, workers)
    capacity = int(streams / first["tick_s_median"])
    out: dict[str, Any] = {"threads": threads, "workers": workers, "measured": [first], "capacity_streams": capacity}
    # On a shared machine the wall clock counts other processes' time; the process's CPU time
    # does not. Spread over ``workers`` cores, it bounds what this gateway would do alone.
    cores = min(workers * threads, os.cpu_count() or 1)
    out["capacity_streams_by_cpu"] = int(streams * cores / max(first["cpu_s_median"], 1e-9))
    # The same streams pushed as cohorts: preprocessing and gate vectorised across streams.
    cohort = _gateway_ticks(model, streams, ticks, threads, workers, cohort=True)
    out["cohort"] = cohort
    out["capacity_streams_by_cpu_cohort"] = int(streams * cores / max(cohort["cpu_s_median"], 1e-9))
    if verify and capacity > streams:
        # Checked at the estimate (at most 4x the first count, so a tiny model stays quick).
        check = _gateway_ticks(model, min(capacity, 4 * streams), ticks, threads, workers)
        out["measured"].append(check)
        if check["tick_s_median"] > 1.0:  # not linear after all: scale from the larger run
            out["capacity_streams"] = int(check["streams"] / check["tick_s_median"])
    return out


def _gateway_ticks(model: str | Path, streams: int, ticks: int, threads: int, workers: int,
                   cohort: bool = False) -> dict[str, Any]:
    """Ticks of ``streams`` 128 Hz streams: pushed one by one, or (``cohort``) as ``(S, n)``
    arrays of up to :data:`COHORT_STREAMS` streams."""
    from emotionkd.sdk.gateway import Gateway

    with Gateway(model, threads=threads, workers=workers, hop_s=1.0) as gateway:
        warm_s = int(math.ceil(gateway.contract.window_s)) + 2  # until every stream emits windows
        hop = int(STREAM_RATE_HZ)
        base = synthetic_signal(warm_s + ticks + 1, seed=2)
        # Streams differ (offset) so no cache or branch predictor sees one signal.
        offsets = np.random.default_rng(3).uniform(-0.5, 0.5, streams)

        def block_at(second: int) -> npt.NDArray[np.float64]:
            return base[second * hop:(second + 1) * hop][None, :] + offsets[:, None]

        return gateway_ticks(gateway, streams, block_at, STREAM_RATE_HZ, ticks, warm_s,
                             cohort_size=COHORT_STREAMS if cohort else None)


def gateway_ticks(gateway: Gateway, streams: int, block_at: Callable[[int], npt.NDArray[np.float64]],
                  rate_hz: float, ticks: int, warm_ticks: int, cohort_size: int | None = None) -> dict[str, Any]:
    """Drive ``gateway`` as a hub does: each tick pushes one second of every stream and runs the
    batch; the first ``warm_ticks`` fill the windows and are not timed.

    Args:
        gateway: a fresh :class:`Gateway` (the streams are added here, as ``wearer-<k>``).
        block_at: tick index → the ``(streams, samples of one second)`` signal of that tick (µS).
        cohort_size: push the streams as cohorts of this many (``Gateway.push_cohort``:
            preprocessing and gate vectorised across streams); None pushes each stream alone.

    Returns:
        per timed tick medians: wall ``tick_s_*`` (p99 and max too) and its push part
        (``push_s_median``), process CPU ``cpu_s_median`` (all threads; other processes do not
        inflate it), ``windows_per_tick``, and ``real_time`` (median tick within the second).
    """
    ids = [f"wearer-{k}" for k in range(streams)]
    cohorts = [(f"hub-{c}", slice(c, c + cohort_size)) for c in range(0, streams, cohort_size)] if cohort_size else []
    for name, rows in cohorts:
        gateway.add_cohort(name, ids[rows], sample_rate_hz=rate_hz)
    for sid in [] if cohort_size else ids:
        gateway.add_stream(sid)
    tick_s, push_s, cpu_s, windows = [], [], [], 0
    for second in range(warm_ticks + ticks):
        block = block_at(second)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        for name, rows in cohorts:
            gateway.push_cohort(name, block[rows])
        for k, sid in enumerate([] if cohort_size else ids):
            gateway.push(sid, block[k], sample_rate_hz=rate_hz)
        t1 = time.perf_counter()
        made = gateway.run_batch()
        t2 = time.perf_counter()
        if second >= warm_ticks:
            cpu_s.append(time.process_time() - cpu0)
            tick_s.append(t2 - t0)
            push_s.append(t1 - t0)
            windows += sum(len(p) for p in made.values())
    return {"streams": streams, "tick_s_median": statistics.median(tick_s), "tick_s_max": max(tick_s),
            "tick_s_p99": _percentile(tick_s, 99),
            "push_s_median": statistics.median(push_s), "cpu_s_median": statistics.median(cpu_s),
            "windows_per_tick": windows / ticks,
            "real_time": statistics.median(tick_s) <= 1.0}


_GEMM_PROBE = """
import time, numpy as np
n = 1024
a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
b = a.T.copy()
a @ b
best = float("inf")
for _ in range(7):
    t0 = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t0)
print(2 * n ** 3 / best / 1e9)
"""


def gemm_gflops() -> float:
    """Best FP32 GFLOP/s of a 1024² matrix multiply on one core (numpy's BLAS, in a fresh
    process pinned to one thread): what a well-fed dense kernel reaches on this CPU."""
    env = {**os.environ, **dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")}
    result = subprocess.run([sys.executable, "-c", _GEMM_PROBE], capture_output=True, text=True, env=env, check=False)
    return float(result.stdout) if result.returncode == 0 else math.nan


# -- the whole bench ------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """CPU, cores, load, versions: what a reader needs to compare two reports."""
    import onnxruntime as ort

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "load_average_1m": load[0] if load else None,
            "python": platform.python_version(), "onnxruntime": ort.__version__, "numpy": np.__version__,
            "fp32_gemm_gflops_one_core": gemm_gflops()}
