"""INT8 quantisation of an exported FP32 graph with onnxruntime, measured before it is kept.

Two candidates:

* **dynamic**: weights of the matrix multiplies (MatMul, Gemm) stored as int8, activations
  quantised on the fly per batch; needs no data, usually the faster one on x86/ARM CPUs;
* **static** (QDQ, per-channel weights): Conv, MatMul and Gemm with activation ranges
  calibrated on preprocessed windows.

Each is judged on held-out windows (never the calibration ones) against the FP32 graph:
agreement of the predicted class per target, largest probability change, macro-F1 when labels
exist, and batch-1 single-thread latency. ``auto`` keeps the candidate that agrees best (a tie
within one point goes to the faster). A model whose agreement is below the floor is refused.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from emotionkd.exporters.errors import ExportError
from emotionkd.exporters.reference_windows import ReferenceWindows
from emotionkd.exporters.runtime import cpu_session, latency_ms, probabilities
from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.training.evaluation import binary_metrics

logger = logging.getLogger(__name__)

INT8_MODES: Final = ("auto", "dynamic", "static")
DYNAMIC_OPS: Final = ("MatMul", "Gemm")
STATIC_OPS: Final = ("Conv", "MatMul", "Gemm")
_TIE: Final = 0.01  # agreement difference under which the faster candidate wins


@dataclass(frozen=True)
class Int8Result:
    """A quantised graph and what it costs.

    Attributes:
        model: serialised INT8 ONNX model.
        summary: plain-type numbers stored in the contract's ``export.quantization``.
    """

    model: bytes
    summary: dict[str, Any]


class _WindowReader(CalibrationDataReader):
    """Feeds calibration windows to onnxruntime's calibrator, a small batch at a time."""

    def __init__(self, gsr: npt.NDArray[np.float32], batch: int = 8) -> None:
        self._batches: Iterator[dict[str, npt.NDArray[np.float32]]] = iter(
            [{"gsr": np.ascontiguousarray(gsr[i:i + batch])} for i in range(0, gsr.shape[0], batch)])

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        return next(self._batches, None)


def _candidates(fp32: bytes, mode: str, calibration: ReferenceWindows, work: Path) -> dict[str, bytes]:
    source = work / "fp32.onnx"
    source.write_bytes(fp32)
    prepared = work / "prepared.onnx"
    try:
        # Shape inference and ORT's own clean-up first, as onnxruntime recommends before quantising.
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=False)
    except Exception as exc:  # noqa: BLE001 - an optional step; quantise the plain graph instead
        logger.warning("quantisation pre-processing failed (%s); quantising the graph as exported", exc)
        prepared = source
    built: dict[str, bytes] = {}
    try:
        if mode in ("auto", "dynamic"):
            out = work / "dynamic.onnx"
            quantize_dynamic(str(prepared), str(out), op_types_to_quantize=list(DYNAMIC_OPS),
                             weight_type=QuantType.QInt8)
            built["dynamic"] = out.read_bytes()
        if mode in ("auto", "static"):
            out = work / "static.onnx"
            quantize_static(str(prepared), str(out), _WindowReader(calibration.gsr),
                            quant_format=QuantFormat.QDQ, op_types_to_quantize=list(STATIC_OPS),
                            per_channel=True, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8)
            built["static"] = out.read_bytes()
    except Exception as exc:  # noqa: BLE001 - onnxruntime's quantiser raises untyped errors
        raise ExportError(f"onnxruntime quantisation failed: {exc}") from exc
    return built


def quantize_int8(
    fp32: bytes,
    targets: Sequence[str],
    calibration: ReferenceWindows,
    held_out: ReferenceWindows,
    mode: str = "auto",
    min_agreement: float = 0.9,
    latency_runs: int = 100,
) -> Int8Result:
    """Quantise the FP32 graph ``fp32`` and measure it on ``held_out`` windows.

    Args:
        fp32: serialised FP32 model (input ``gsr`` (B, W), outputs ``targets`` (B, 2)).
        targets: output names.
        calibration: windows for static calibration (disjoint from ``held_out``).
        held_out: windows the INT8 model is judged on (labels, when present, give macro-F1).
        mode: ``auto``, ``dynamic`` or ``static``.
        min_agreement: lowest acceptable share of held-out windows on which INT8 and FP32
            predict the same class, for every target.
        latency_runs: batch-1 runs timed per model (median reported).

    Raises:
        ConfigError: unknown mode or a floor outside [0, 1].
        ExportError: quantisation failed or no candidate reaches ``min_agreement``.
    """
    if mode not in INT8_MODES:
        raise ConfigError(f"unknown INT8 mode {mode!r}; use one of {', '.join(INT8_MODES)}")
    if not 0.0 <= min_agreement <= 1.0:
        raise ConfigError(f"min_agreement must be in [0, 1], got {min_agreement!r}")
    with tempfile.TemporaryDirectory(prefix="emotionkd-int8-") as work:
        built = _candidates(fp32, mode, calibration, Path(work))

    reference_session = cpu_session(fp32)
    reference = probabilities(reference_session, held_out.gsr, targets)
    fp32_ms = latency_ms(reference_session, held_out.gsr, latency_runs)
    measured: dict[str, dict[str, Any]] = {}
    for name, model in built.items():
        session = cpu_session(model)
        got = probabilities(session, held_out.gsr, targets)
        measured[name] = {
            "agreement": {t: float(np.mean(got[t].argmax(1) == reference[t].argmax(1))) for t in targets},
            "max_abs_prob_diff": max(float(np.abs(got[t] - reference[t]).max()) for t in targets),
            "latency_ms": latency_ms(session, held_out.gsr, latency_runs),
            "size_bytes": len(model),
        }
        if held_out.labels is not None:
            measured[name]["macro_f1"] = {
                t: _macro_f1(held_out.labels[:, i], got[t]) for i, t in enumerate(targets)}

    def worst(name: str) -> float:
        return min(measured[name]["agreement"].values())

    passing = [n for n in measured if worst(n) >= min_agreement]
    if not passing:
        numbers = "; ".join(f"{n}: {_percent(measured[n]['agreement'])}" for n in measured)
        raise ExportError(
            f"INT8 model disagrees with FP32 too often on {len(held_out)} held-out windows "
            f"({numbers}; floor {min_agreement:.0%}); export FP32 (drop --int8), try "
            "--int8-mode static/dynamic, or lower --int8-min-agreement if that is acceptable")
    best = max(worst(n) for n in passing)
    near = [n for n in passing if worst(n) >= best - _TIE]
    chosen = min(near, key=lambda n: measured[n]["latency_ms"])
    picked = measured[chosen]
    summary: dict[str, Any] = {
        "mode": chosen,
        "requested_mode": mode,
        "op_types": list(DYNAMIC_OPS if chosen == "dynamic" else STATIC_OPS),
        "weights": "int8",
        "activations": "int8 (dynamic range per batch)" if chosen == "dynamic" else "int8 (calibrated, QDQ)",
        "calibration_windows": len(calibration) if chosen == "static" else 0,
        "held_out_windows": len(held_out),
        "held_out_source": held_out.source,
        "min_agreement": min_agreement,
        "agreement": picked["agreement"],
        "max_abs_prob_diff": picked["max_abs_prob_diff"],
        "latency_ms": {"fp32": fp32_ms, "int8": picked["latency_ms"], "threads": 1, "batch": 1},
        "speedup": fp32_ms / picked["latency_ms"] if picked["latency_ms"] > 0 else None,
        "size_bytes": {"fp32": len(fp32), "int8": picked["size_bytes"]},
        "candidates": {n: {k: v for k, v in m.items() if k != "size_bytes"} for n, m in measured.items()},
    }
    if held_out.labels is not None:
        summary["macro_f1"] = {
            "fp32": {t: _macro_f1(held_out.labels[:, i], reference[t]) for i, t in enumerate(targets)},
            "int8": picked["macro_f1"],
        }
    return Int8Result(built[chosen], summary)


def _macro_f1(labels: npt.NDArray[np.int64], probabilities: npt.NDArray[np.float32]) -> float:
    return binary_metrics(labels, probabilities.argmax(1))["macro_f1"]


def _percent(agreement: dict[str, float]) -> str:
    return ", ".join(f"{t} {v:.1%}" for t, v in agreement.items())


__all__ = ["DYNAMIC_OPS", "INT8_MODES", "STATIC_OPS", "Int8Result", "quantize_int8"]
