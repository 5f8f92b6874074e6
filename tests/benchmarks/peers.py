"""Peers in one run: the authors' Keras student, PyTorch eager, onnxruntime FP32 and INT8 of the
faithful and the compact student, interleaved on the same windows; ratios and the FLOP bound.

* **Keras (TensorFlow)**: the EmotionNet-Student built in Keras from the shapes of
  /work/shared/METHOD.md (the authors published TensorFlow/Keras definitions), both targets in
  one model, called through a ``tf.function`` (graph mode, the fast way to serve Keras). It runs
  in a scratch virtual environment that this script creates under the cache directory
  (``$XDG_CACHE_HOME/emotionkd/peers-tf``, ``pip install tensorflow-cpu``), in a worker process
  that times its own calls (wall, and the worker process's CPU time: TensorFlow runs its ops on
  pool threads, all counted), so the pipe
  between the processes is not counted. ``--no-keras`` skips it.
* **PyTorch eager**, **onnxruntime FP32/INT8** (``emotionkd-export``'s graphs, the SDK's
  session options) of the faithful student and of the compact one
  (:data:`~emotionkd.training.models.COMPACT_STUDENT_OPTIONS`).

All engines run one thread, batch 1 (a window pair: arousal and valence), taking turns run by
run so that a busy shared machine slows them alike; medians of ``--runs``. Weights are fresh
(speed does not depend on their values). Prints numbers and the issue's targets; asserts
nothing::

    .venv/bin/python tests/benchmarks/peers.py [--runs 300] [--no-keras] [--tf-spec tensorflow-cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).parent))
from onnx_vs_torch import torch_engine, window_flops  # noqa: E402

from emotionkd.exporters.inference_twin import inference_twins  # noqa: E402
from emotionkd.exporters.onnx_export import ExportOptions, export_checkpoint  # noqa: E402
from emotionkd.exporters.reference_windows import synthetic_windows  # noqa: E402
from emotionkd.sdk.bench import gemm_gflops  # noqa: E402
from emotionkd.sdk.contract import ModelContract, PreprocessingSpec  # noqa: E402
from emotionkd.sdk.model import OnnxEmotionModel  # noqa: E402
from emotionkd.sdk.preprocessing import DEFAULT_PREPROCESSING  # noqa: E402
from emotionkd.training.checkpoint import StudentCheckpoint, save_student_checkpoint  # noqa: E402
from emotionkd.training.models import (  # noqa: E402
    EmotionNetStudent,
    StudentConfig,
    compact_student_config,
)

TARGETS = {"faithful INT8 vs Keras": 2.5, "faithful INT8 vs eager": 4.5, "compact INT8 vs faithful INT8": 4.0}

# The worker runs in the TensorFlow venv: it must not import emotionkd (not installed there).
KERAS_WORKER = r'''
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
import keras
from keras import layers

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
W, F, HEADS, HEAD_DIM, BLOCKS, HIDDEN = 512, 64, 8, 64, 3, 128


class Position(layers.Layer):
    """Learned positional embedding (64 positions x 64), the first T rows added."""
    def build(self, shape):
        self.table = self.add_weight(shape=(64, F), initializer="random_normal", name="position")
    def call(self, x):
        return x + self.table[: x.shape[1]]


def score_block(x):
    h = layers.BatchNormalization()(layers.Dense(F)(x))
    h = layers.BatchNormalization()(layers.Dense(F)(layers.ReLU()(h)))
    return layers.Activation("softsign")(h)


def student(gsr):
    x = layers.Reshape((1, W, 1))(gsr)
    x = layers.Conv2D(F, (1, 32), strides=(1, 8), padding="valid")(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.Conv2D(F, (1, 1))(x)  # the "spatial" conv over one GSR channel
    x = layers.Dropout(0.3)(layers.Reshape((-1, F))(x))
    h = Position()(x)
    fused = []
    for _ in range(BLOCKS):  # post-LN block, 8 heads of 64 dims (Q/K/V 64 -> 512)
        a = layers.MultiHeadAttention(num_heads=HEADS, key_dim=HEAD_DIM)(h, h)
        h = layers.LayerNormalization(epsilon=1e-6)(h + layers.Dropout(0.1)(a))
        f = layers.Dense(F)(layers.Dense(F, activation="relu")(h))
        h = layers.LayerNormalization(epsilon=1e-6)(h + layers.Dropout(0.1)(f))
        fused.append(layers.Multiply()([score_block(h), h]))
    z = layers.Dropout(0.5)(layers.Flatten()(layers.Add()(fused)))
    for _ in range(3):
        z = layers.Dense(HIDDEN)(z)
    return layers.Softmax()(layers.Dense(2)(z))


gsr = keras.Input((W,))
model = keras.Model(gsr, [student(gsr), student(gsr)])  # arousal and valence, as one ONNX graph
params = sum(int(np.prod(w.shape)) for w in model.weights)  # Keras' count: BN moving stats included
serve = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec((None, W), tf.float32)])
windows = np.load(sys.argv[1]).astype(np.float32)
serve(windows[:1])
print(json.dumps({"tensorflow": tf.__version__, "keras": keras.__version__, "parameters_per_student": params // 2}), flush=True)
for line in sys.stdin:
    i = int(line)
    x = tf.constant(windows[i : i + 1])
    w0, c0 = time.perf_counter(), time.process_time()  # TF runs ops on its pool's threads
    out = serve(x)
    out[0].numpy(), out[1].numpy()
    print(time.perf_counter() - w0, time.process_time() - c0, flush=True)
'''


def tf_venv(spec: str) -> Path:
    """The scratch venv's python, created (``python -m venv`` + ``pip install spec``) if absent."""
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emotionkd" / "peers-tf"
    python = root / "bin" / "python"
    check = [str(python), "-c", "import tensorflow"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    print(f"creating {root} with {spec} (once; a few minutes) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", spec], check=True)
    return python


class KerasWorker:
    """The Keras student in the TensorFlow venv; each call returns the worker's own (wall, CPU) s."""

    def __init__(self, python: Path, windows_file: Path, script: Path) -> None:
        script.write_text(KERAS_WORKER)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
               "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.proc = subprocess.Popen([str(python), str(script), str(windows_file)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        self.info = json.loads(self.proc.stdout.readline())

    def __call__(self, i: int) -> tuple[float, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{i}\n")
        self.proc.stdin.flush()
        wall, cpu = self.proc.stdout.readline().split()
        return float(wall), float(cpu)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def timed(run: Callable[[np.ndarray], object], windows: np.ndarray) -> Callable[[int], tuple[float, float]]:
    """An in-process engine on window i, timed by wall and by the thread's CPU time."""
    def call(i: int) -> tuple[float, float]:
        x = windows[i:i + 1]
        w0, c0 = time.perf_counter(), time.thread_time()
        run(x)
        return time.perf_counter() - w0, time.thread_time() - c0
    return call


def students(config: StudentConfig, work: Path, name: str) -> tuple[dict[str, torch.nn.Module], Path, Path]:
    """Fresh students of ``config``, their checkpoint, and the exported FP32 and INT8 graphs."""
    torch.manual_seed(0)
    models = {t: EmotionNetStudent(config).eval() for t in ("arousal", "valence")}
    contract = ModelContract(sample_rate_hz=DEFAULT_PREPROCESSING.rate_hz, train_hop_samples=64,
                             preprocessing=PreprocessingSpec(version=2, params=DEFAULT_PREPROCESSING.to_params()))
    checkpoint = save_student_checkpoint(
        StudentCheckpoint(contract, config, {t: m.state_dict() for t, m in models.items()}), work / f"{name}.pt")
    fp32 = export_checkpoint(checkpoint, work / f"{name}.onnx", ExportOptions()).path
    int8 = export_checkpoint(checkpoint, work / f"{name}.int8.onnx",
                             ExportOptions(int8=True, int8_min_agreement=0.0, latency_runs=20)).path
    return models, fp32, int8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="timed runs per engine (interleaved)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras student (no TensorFlow venv)")
    parser.add_argument("--tf-spec", default="tensorflow-cpu", help="what pip installs into the scratch venv")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        faithful, f32, f8 = students(StudentConfig(), work, "faithful")
        compact, c32, c8 = students(compact_student_config(), work, "compact")
        windows = np.ascontiguousarray(synthetic_windows(ModelContract(), 64, seed=123).gsr, dtype=np.float32)
        np.save(work / "windows.npy", windows)
        engines: dict[str, Callable[[int], tuple[float, float]]] = {}
        keras: KerasWorker | None = None
        keras_note = "skipped (--no-keras)"
        if not args.no_keras:
            try:
                keras = KerasWorker(tf_venv(args.tf_spec), work / "windows.npy", work / "keras_worker.py")
                engines["Keras faithful (tf.function)"] = keras
                keras_note = (f"TensorFlow {keras.info['tensorflow']}, Keras {keras.info['keras']}, "
                              f"{keras.info['parameters_per_student']:,} parameters per student (METHOD.md: 993,986)")
            except (OSError, subprocess.CalledProcessError, json.JSONDecodeError) as exc:
                keras_note = f"not measured: TensorFlow could not be set up here ({exc})"
        engines["PyTorch eager faithful"] = timed(torch_engine(faithful), windows)
        engines["ORT FP32 faithful"] = timed(OnnxEmotionModel(f32).run, windows)
        engines["ORT INT8 faithful"] = timed(OnnxEmotionModel(f8).run, windows)
        engines["PyTorch eager compact"] = timed(torch_engine(compact), windows)
        engines["ORT FP32 compact"] = timed(OnnxEmotionModel(c32).run, windows)
        engines["ORT INT8 compact"] = timed(OnnxEmotionModel(c8).run, windows)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
        for r in range(args.warmup + args.runs):
            for name, engine in engines.items():
                sample = engine(r % windows.shape[0])
                if r >= args.warmup:
                    times[name].append(sample)
        if keras is not None:
            keras.close()
        sizes = {"faithful": (f32.stat().st_size, f8.stat().st_size), "compact": (c32.stat().st_size, c8.stat().st_size)}

    med = {n: (statistics.median(t[0] for t in ts) * 1e3, statistics.median(t[1] for t in ts) * 1e3)
           for n, ts in times.items()}
    flops = {"faithful": window_flops(faithful, 512), "compact": window_flops(compact, 512)}
    # what onnxruntime actually computes: the exporter's inference twins (folded attention for
    # the faithful student's wide heads), fewer FLOPs than the students' own definition
    twin_flops = {"faithful": window_flops(inference_twins(faithful), 512),
                  "compact": window_flops(inference_twins(compact), 512)}
    peak = gemm_gflops()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
          f"torch {torch.__version__}, onnxruntime {ort.__version__}; Keras: {keras_note}")
    print(f"batch 1 (a window pair), 1 thread, {args.runs} interleaved runs, medians; FP32 GEMM rate "
          f"{peak:.0f} GFLOP/s on one core")
    for kind, f in flops.items():
        print(f"  {kind}: {f / 1e6:.1f} MFLOP per window pair -> FP32 bound {f / peak / 1e6:.3f} ms (the exported "
              f"twin: {twin_flops[kind] / 1e6:.1f} MFLOP -> {twin_flops[kind] / peak / 1e6:.3f} ms); files FP32 "
              f"{sizes[kind][0] / 1e6:.2f} MB, INT8 {sizes[kind][1] / 1e6:.2f} MB")
    eager = med["PyTorch eager faithful"][1]
    # GFLOP/s: the student's own FLOPs per CPU second (useful work, the same for every engine)
    print(f"{'engine':<30}{'wall ms':>9}{'CPU ms':>9}{'vs eager (CPU)':>16}{'GFLOP/s':>9}{'of GEMM':>9}")
    for name, (wall, cpu) in med.items():
        f = flops["compact" if "compact" in name else "faithful"]
        rate = f / (cpu * 1e-3) / 1e9
        print(f"{name:<30}{wall:9.3f}{cpu:9.3f}{eager / cpu:15.2f}x{rate:9.1f}{rate / peak:9.0%}")
    ratios = {"faithful INT8 vs eager": eager / med["ORT INT8 faithful"][1],
              "faithful FP32 vs eager": eager / med["ORT FP32 faithful"][1],
              "compact INT8 vs faithful INT8": med["ORT INT8 faithful"][1] / med["ORT INT8 compact"][1]}
    if "Keras faithful (tf.function)" in med:
        keras_cpu = med["Keras faithful (tf.function)"][1]
        ratios["faithful INT8 vs Keras"] = keras_cpu / med["ORT INT8 faithful"][1]
        ratios["faithful FP32 vs Keras"] = keras_cpu / med["ORT FP32 faithful"][1]
    print("ratios by CPU time (same run):")
    for name, value in ratios.items():
        target = TARGETS.get(name)
        verdict = f"  target >= {target}x: {'met' if value >= target else 'missed'}" if target else ""
        print(f"  {name:<32}{value:6.2f}x{verdict}")


if __name__ == "__main__":
    main()
