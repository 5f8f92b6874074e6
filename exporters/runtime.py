"""onnxruntime helpers the exporter measures with: probabilities and latency, on the SDK's own sessions."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from emotionkd.exporters.errors import ExportError
from emotionkd.firmware_bridge.errors import ModelError
from emotionkd.sdk.model import cpu_session as sdk_cpu_session


def cpu_session(model: bytes, threads: int = 1) -> ort.InferenceSession:
    """An onnxruntime session built exactly as the SDK builds it
    (:func:`emotionkd.sdk.model.cpu_session`), so the latency written into the contract is the
    latency a device sees."""
    try:
        return sdk_cpu_session(model, threads)
    except ModelError as exc:
        raise ExportError(f"onnxruntime cannot load the exported graph: {exc.__cause__ or exc}") from exc


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
