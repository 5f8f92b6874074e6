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

from emotionkd.firmware_bridge.errors import ModelError

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


# -- start-up (fresh processes) -------------------------------------------------------------
_IMPORT_PROBE = """
import time
t0 = time.perf_counter()
import emotionkd.sdk
print(time.perf_counter() - t0)
"""

# Resident memory is read after each step (VmRSS), and the peak after the first window (VmHWM:
# this process's own peak; ru_maxrss would count the parent's pages copied at fork), with the
# resident memory then split into the process's own (RssAnon: heap, Python objects) and pages of
# files (RssFile: the libraries' code, which depends on what the machine holds in its page cache). Where the
# memory goes, step by step: the interpreter, numpy, the SDK's modules, onnxruntime's import,
# the session, the first window. onnxruntime is imported explicitly before the model so that
# its import and the session are told apart (loading the model would import it anyway).
_MEMORY_FUNCTIONS = """
import sys, time
def status_mb(key):
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024.0 for line in f if line.startswith(key + ":"))
    except (OSError, StopIteration):
        return float("nan")
def peak_mb():
    peak = status_mb("VmHWM")
    if peak != peak:  # no /proc (macOS): ru_maxrss, bytes there
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024.0 ** 2 if sys.platform == "darwin" else 1024.0)
    return peak
"""

_FIRST_PREDICTION_PROBE = _MEMORY_FUNCTIONS + """
steps = [status_mb("VmRSS")]
t0 = time.perf_counter()
import numpy as np
steps.append(status_mb("VmRSS"))
from emotionkd.sdk import EmotionClassifier
steps.append(status_mb("VmRSS"))
import onnxruntime
steps.append(status_mb("VmRSS"))
clf = EmotionClassifier(sys.argv[1], threads=int(sys.argv[2]))
t1 = time.perf_counter()
steps.append(status_mb("VmRSS"))
x = np.load(sys.argv[3])[: int((clf.window_s + 1.0) * 128.0)]  # one window (and a hop)
t2 = time.perf_counter()
predictions = clf.push(x, sample_rate_hz=128.0)
t3 = time.perf_counter()
if not predictions or not predictions[0].ok:
    raise SystemExit("no prediction")
print(t1 - t0, (t1 - t0) + (t3 - t2), peak_mb(), status_mb("RssAnon"), status_mb("RssFile"), *steps)
"""

#: the probe's memory steps, in its order (VmRSS after each, MB)
RSS_STEPS: Final = ("python", "numpy", "emotionkd.sdk", "onnxruntime", "model loaded")

# The floor under the SDK's figure: numpy and onnxruntime alone running the same file on one
# window (no SDK module, no preprocessing), with the SDK's memory-relevant session options. Its
# window comes from the same .npy file the SDK's probe loads (np.load and the cast to float32
# fault in ~0.2 MB of numpy's code, which the SDK's figure pays too).
_BARE_ONNXRUNTIME_PROBE = _MEMORY_FUNCTIONS + """
import numpy as np
import onnxruntime as ort
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
options.enable_cpu_mem_arena = False
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
shape = session.get_inputs()[0].shape
window = np.load(sys.argv[2])[None, : int(shape[1])].astype(np.float32)
session.run(None, {session.get_inputs()[0].name: window})
print(peak_mb(), status_mb("RssAnon"), status_mb("RssFile"))
"""


def probe_env(pycache_prefix: str | Path, *, pythonpath: str | None = None, optimize: int = 0) -> dict[str, str]:
    """The environment of a start-up probe process.

    Bytecode is read from ``pycache_prefix`` (written there by the first process, so run one
    process before measuring), as an installed package has it: pip compiles every module at
    install. A process started with ``PYTHONDONTWRITEBYTECODE=1`` (as this project's machines
    are) without it compiles every SDK module from source each time, which leaves ~0.2 MB of the
    compiler's memory in the peak that no installed SDK pays. ``pythonpath`` lets a benchmark
    import an earlier revision's SDK under another name; ``optimize`` sets ``PYTHONOPTIMIZE``
    (2: docstrings and asserts stripped, ``python -OO``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONOPTIMIZE")}
    env["PYTHONPYCACHEPREFIX"] = str(pycache_prefix)
    if optimize:
        env["PYTHONOPTIMIZE"] = str(optimize)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return env


def _probe(code: str, *args: str, env: dict[str, str] | None = None) -> list[float]:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise ModelError(f"start-up probe failed: {result.stderr.strip().splitlines()[-1:] or result.returncode}")
    return [float(v) for v in result.stdout.split()]


def first_window_probe(model: str | Path, signal: str | Path, threads: int = 1, *, package: str = "emotionkd",
                       env: dict[str, str] | None = None) -> dict[str, Any]:
    """One fresh process that loads ``model`` with ``package``'s SDK and pushes one window of
    the 128 Hz signal saved in ``signal`` (``.npy``): ``model_loaded_s`` and
    ``first_prediction_s`` (s from the first import), ``peak_rss_mb`` (VmHWM after the window),
    ``rss_anon_mb`` / ``rss_file_mb`` (the resident memory then: the process's own, and pages of
    files) and ``rss_steps_mb`` (VmRSS after each of :data:`RSS_STEPS`). ``package`` (with a
    :func:`probe_env` ``pythonpath``) lets a benchmark run an earlier revision's SDK."""
    code = _FIRST_PREDICTION_PROBE.replace("from emotionkd.sdk import", f"from {package}.sdk import")
    loaded_s, first_s, peak, anon, file, *steps = _probe(code, str(model), str(threads), str(signal), env=env)
    return {"model_loaded_s": loaded_s, "first_prediction_s": first_s, "peak_rss_mb": peak, "rss_anon_mb": anon,
            "rss_file_mb": file, "rss_steps_mb": dict(zip(RSS_STEPS, steps, strict=True))}


def bare_onnxruntime_probe(model: str | Path, signal: str | Path, *, env: dict[str, str] | None = None) -> dict[str, float]:
    """One fresh process in which numpy and onnxruntime alone run ``model`` on one window (the
    first samples of ``signal``, the ``.npy`` :func:`first_window_probe` loads), the floor under
    that figure: ``peak_rss_mb``, ``rss_anon_mb``, ``rss_file_mb`` as there."""
    peak, anon, file = _probe(_BARE_ONNXRUNTIME_PROBE, str(model), str(signal), env=env)
    return {"peak_rss_mb": peak, "rss_anon_mb": anon, "rss_file_mb": file}


def startup(model: str | Path, threads: int = 1, runs: int = 5, *, optimize: int = 0) -> dict[str, Any]:
    """Fresh-process figures: ``import emotionkd.sdk`` (s, median of ``runs``); loading the
    model and the first prediction on 5 s of signal (s from the first import); peak RSS (MB)
    after the first window, the resident memory after each step on the way there
    (``rss_steps_mb``, see :data:`RSS_STEPS`), and the peak of numpy and onnxruntime alone
    running the same file (``bare_onnxruntime_peak_rss_mb``: the floor under the SDK's figure).

    Every process reads compiled bytecode, as an installed SDK does (:func:`probe_env`; one
    process of each kind runs first, unmeasured, to compile it). The memory figures come from
    three SDK processes, each followed by a floor process (the machine's state moves both
    alike; ``peak_rss_runs_mb`` and ``bare_onnxruntime_runs_mb`` in that order);
    ``peak_rss_mb`` and ``bare_onnxruntime_peak_rss_mb`` are the worst of each, and
    ``rss_anon_file_mb`` / ``bare_onnxruntime_anon_file_mb`` split those processes' resident
    memory after the window (MB: their own, pages of files). ``optimize``: see :func:`probe_env`."""
    import tempfile

    probes, floors = [], []
    with tempfile.TemporaryDirectory() as work:
        env = probe_env(Path(work) / "pycache", optimize=optimize)
        signal = Path(work) / "gsr.npy"
        np.save(signal, synthetic_signal(40.0, seed=4))  # the probe keeps one window's worth
        first_window_probe(model, signal, threads, env=env)  # compiles the bytecode: not measured
        bare_onnxruntime_probe(model, signal, env=env)
        imports = [_probe(_IMPORT_PROBE, env=env)[0] for _ in range(runs)]
        for _ in range(3):
            probes.append(first_window_probe(model, signal, threads, env=env))
            floors.append(bare_onnxruntime_probe(model, signal, env=env))
    worst = max(probes, key=lambda p: p["peak_rss_mb"])
    floor = max(floors, key=lambda p: p["peak_rss_mb"])
    return {
        "import_s": statistics.median(imports),
        "model_loaded_s": statistics.median(p["model_loaded_s"] for p in probes),
        "first_prediction_s": statistics.median(p["first_prediction_s"] for p in probes),
        "peak_rss_mb": worst["peak_rss_mb"],
        "peak_rss_runs_mb": [p["peak_rss_mb"] for p in probes],
        "rss_steps_mb": worst["rss_steps_mb"],
        "rss_anon_file_mb": (worst["rss_anon_mb"], worst["rss_file_mb"]),
        "bare_onnxruntime_peak_rss_mb": floor["peak_rss_mb"],
        "bare_onnxruntime_runs_mb": [p["peak_rss_mb"] for p in floors],
        "bare_onnxruntime_anon_file_mb": (floor["rss_anon_mb"], floor["rss_file_mb"]),
        "threads": threads,
    }


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
