"""onnxruntime helpers the exporter measures with: sessions, probabilities, latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from emotionkd.firmware_bridge.errors import ExportError


def cpu_session(model: bytes, threads: int = 1) -> ort.InferenceSession:
    """An onnxruntime CPU session with ``threads`` intra-op threads and every graph optimisation
    (what the SDK runs on the wearable)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's business
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        raise ExportError(f"onnxruntime cannot load the exported graph: {exc}") from exc


def probabilities(
    session: ort.InferenceSession, gsr: npt.NDArray[np.float32], targets: Sequence[str], batch: int = 64,
) -> dict[str, npt.NDArray[np.float32]]:
    """``{target: (N, 2) probabilities}`` for windows ``gsr`` (N, W), run ``batch`` at a time."""
    parts: dict[str, list[npt.NDArray[np.float32]]] = {t: [] for t in targets}
    for start in range(0, gsr.shape[0], batch):
        outputs = session.run(list(targets), {"gsr": np.ascontiguousarray(gsr[start:start + batch])})
        for target, value in zip(targets, outputs, strict=True):
            parts[target].append(np.asarray(value, dtype=np.float32))
    return {t: np.concatenate(p) for t, p in parts.items()}


def latency_ms(session: ort.InferenceSession, gsr: npt.NDArray[np.float32], runs: int = 100, warmup: int = 10) -> float:
    """Median wall time of one batch-1 run (ms), cycling through the windows ``gsr`` (N, W)."""
    feeds = [{"gsr": np.ascontiguousarray(gsr[i:i + 1])} for i in range(gsr.shape[0])]
    for i in range(warmup):
        session.run(None, feeds[i % len(feeds)])
    times = []
    for i in range(runs):
        started = time.perf_counter()
        session.run(None, feeds[i % len(feeds)])
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


__all__ = ["cpu_session", "latency_ms", "probabilities"]
