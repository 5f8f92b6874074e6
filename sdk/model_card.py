"""A model's contract as a readable model card (``emotionkd-sdk info model.onnx``).

Reads only what onnxruntime exposes (``custom_metadata_map``, input and output signatures), so
it runs on the device: no onnx or torch import.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotionkd.firmware_bridge.errors import ContractError, ModelError
from emotionkd.sdk.contract import ModelContract
from emotionkd.sdk.integrity import check_integrity
from emotionkd.sdk.model import cpu_session

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TensorSignature:
    """One graph input or output: name, element type, shape (symbolic axes as names)."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    def __str__(self) -> str:
        return f"{self.name} {self.dtype} [{', '.join(str(d) for d in self.shape)}]"


@dataclass(frozen=True)
class ModelInfo:
    """What an emotionkd ONNX file is.

    Attributes:
        path: the file.
        size_bytes / sha256: of the file.
        contract: the model contract stored in it.
        inputs / outputs: the graph's signature as onnxruntime sees it.
        producer: the ``producer_name`` recorded in the file.
    """

    path: Path
    size_bytes: int
    sha256: str
    contract: ModelContract
    inputs: tuple[TensorSignature, ...]
    outputs: tuple[TensorSignature, ...]
    producer: str

    def to_dict(self) -> dict[str, Any]:
        """Plain types: the file facts plus the full contract (``info --json``)."""
        return {
            "file": str(self.path),
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "producer": self.producer,
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
            "contract": self.contract.to_dict(),
        }


def _signature(arg: Any) -> TensorSignature:
    dtype = str(arg.type).removeprefix("tensor(").removesuffix(")")
    shape = tuple(d if isinstance(d, int) else str(d or "?") for d in (arg.shape or ()))
    return TensorSignature(arg.name, dtype, shape)


def read_model_info(path: str | os.PathLike[str], *, verify: bool = True) -> ModelInfo:
    """Open an emotionkd ONNX model and read its contract and signature.

    ``verify``: check the integrity hash first (see :class:`~emotionkd.sdk.model.OnnxEmotionModel`).

    Raises:
        ModelError: the file is missing, not a loadable ONNX model (corrupt, truncated), or
            fails its integrity check.
        ContractError: it carries no emotionkd contract, or one from a newer version.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist; export one with `emotionkd-export student.pt`")
    data = path.read_bytes()
    if verify and check_integrity(data, str(path)) == "unstamped":
        logger.warning("model %s carries no integrity hash (an older export): shown unverified", path)
    try:  # reading the card needs the graph parsed, not compiled
        session = cpu_session(data, optimisation="none")
    except ModelError as exc:
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise ModelError(f"{path} is not a loadable ONNX model (corrupted or truncated?): {detail}") from exc
    meta = session.get_modelmeta()
    try:
        contract = ModelContract.from_onnx_metadata(meta.custom_metadata_map)
    except ContractError as exc:
        raise ContractError(f"{path}: {exc}", field=exc.field) from exc
    return ModelInfo(
        path=path,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        contract=contract,
        inputs=tuple(_signature(a) for a in session.get_inputs()),
        outputs=tuple(_signature(a) for a in session.get_outputs()),
        producer=" ".join(p for p in (meta.producer_name, meta.version and str(meta.version)) if p),
    )


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value)
    return str(value)


def render_model_card(info: ModelInfo) -> str:
    """The contract and file facts as aligned text for a terminal."""
    c = info.contract
    lines: list[str] = []

    def section(title: str) -> None:
        lines.append("")
        lines.append(title)

    def row(key: str, value: Any) -> None:
        lines.append(f"  {key:<15}{value}")

    lines.append(f"emotionkd model: {info.path.name} ({info.size_bytes / 1e6:.2f} MB, "
                 f"sha256 {info.sha256[:12]}…, contract v{c.contract_version})")
    if c.is_synthetic:
        lines.append("  ! trained on SYNTHETIC data: a demonstration model, not for real decisions")
    elif c.provenance_note():
        lines.append(f"  ! {c.provenance_note()}")

    section("What it expects")
    pre = c.preprocessing
    row("sensor", f"skin conductance in {c.input_unit} (other units and rates are converted/resampled)")
    row("model rate", f"{c.sample_rate_hz:g} Hz")
    row("window", f"{c.window_samples} samples = {c.window_s:g} s (trained with a hop of "
                  f"{c.train_hop_samples} samples)")
    row("preprocessing", f"{pre.name} v{pre.version}")
    for key, value in pre.params.items():
        row("", f"{key} = {value}")
    if c.preprocessing_config().wants_rest_baseline:
        row("calibration", "a 2-5 min rest recording seeds the baseline (--baseline REST.csv); "
                           "trained that way")
    for signature in info.inputs:
        row("input", signature)

    section("What it predicts")
    rule = f"rating {c.label_rule} {c.label_threshold:g} is {c.class_names[1]!r}"
    for signature in info.outputs:
        row(signature.name, f"{signature}: probabilities of {list(c.class_names)}")
    if not c.target_provenance:
        row("labels", f"self-report {rule} (1-9 scale)")

    section("What it was trained on")
    p = c.provenance
    row("data", f"{p.data_kind} ({p.dataset}), {p.subjects or 'unknown number of'} subjects")
    row("method", p.method)
    row("protocol", p.protocol)
    if p.notes:
        row("notes", p.notes)
    for target in c.targets if c.target_provenance else ():
        o = c.origin(target)
        section(f"Head {target!r}: {'met REAL skin' if o.data_kind == 'real' else 'SYNTHETIC data only'}")
        row("data", f"{o.data_kind} ({o.dataset}), {o.subjects or 'unknown number of'} subjects")
        row("labels", o.labels or f"self-report {rule} (1-9 scale)")
        row("licence", o.licence or "not recorded")
        row("method", o.method)
        row("metrics", f"{_value(o.metrics) or 'none recorded'} ({o.protocol})")

    section(f"Metrics ({p.protocol})")
    if c.metrics:
        for target, metrics in c.metrics.items():
            row(str(target), _value(metrics))
    else:
        row("", "none recorded")

    if c.model:
        section("Model")
        for key, value in c.model.items():
            row(str(key), _value(value))

    section("Export")
    e = c.export
    if not e:
        row("", "no export details (not written by emotionkd-export)")
    else:
        row("exporter", f"{e.get('exporter', '?')} {e.get('exporter_version', '?')}, torch "
                        f"{e.get('torch_version', '?')} ({e.get('torch_exporter', '?')}), opset {e.get('opset', '?')}")
        q = e.get("quantization") if e.get("int8") else None
        row("precision", f"INT8 ({q.get('mode', '?')})" if isinstance(q, Mapping) else
            ("INT8" if e.get("int8") else "FP32"))
        parity = e.get("parity")
        if isinstance(parity, Mapping):
            row("parity", f"max |onnxruntime - PyTorch| {_value(parity.get('max_abs_diff'))} "
                          f"(tolerance {_value(parity.get('tolerance'))}) on {parity.get('windows')} windows")
        if isinstance(q, Mapping):
            agreement = q.get("agreement")
            if not isinstance(agreement, Mapping):
                agreement = {}
            row("INT8 agreement", f"{', '.join(f'{t} {v:.1%}' for t, v in agreement.items())} with FP32 on "
                                  f"{q.get('held_out_windows')} held-out windows")
            if isinstance(q.get("macro_f1"), Mapping):
                row("macro-F1", f"FP32 {_value(q['macro_f1'].get('fp32'))}; INT8 {_value(q['macro_f1'].get('int8'))}")
            lat = q.get("latency_ms")
            if isinstance(lat, Mapping):
                row("latency", f"FP32 {_value(lat.get('fp32'))} ms -> INT8 {_value(lat.get('int8'))} ms "
                               f"per window ({lat.get('threads')} thread, batch {lat.get('batch')})")
        source = e.get("source_checkpoint")
        if isinstance(source, Mapping):
            row("source", f"{source.get('name')} (sha256 {str(source.get('sha256', ''))[:12]}…)")
    return "\n".join(lines)


__all__ = ["ModelInfo", "TensorSignature", "read_model_info", "render_model_card"]
