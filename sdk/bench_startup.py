"""The start-up measurements of ``emotionkd-sdk bench`` and ``tests/benchmarks/startup_budget.py``:
import time, first prediction and peak resident memory after one window, each in a fresh
process as an app starts (see :mod:`emotionkd.sdk.bench`)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import numpy as np

from emotionkd.firmware_bridge.errors import ModelError
from emotionkd.sdk.bench_measures import synthetic_signal

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
