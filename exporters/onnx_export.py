"""Student checkpoint → one ONNX graph with the model contract inside, checked before it is written.

The graph (the interface the SDK runs, COMMON contract):

* input ``gsr``: float32 ``[batch, window_samples]``, the preprocessed windows
  (``Windows.features``);
* outputs, one per contract target (``arousal``, ``valence``): float32 ``[batch, 2]`` softmax
  probabilities in ``contract.class_names`` order (index 1 = "high");
* ``metadata_props["emotionkd.contract"]``: the contract JSON with ``export`` filled in.
* ``metadata_props["emotionkd.integrity"]``: ``sha256:`` of everything else in the file
  (:mod:`emotionkd.sdk.integrity`), checked when the SDK loads the model.

Steps: torch.export-based ONNX export (``dynamo=True``, the default exporter since PyTorch 2.9;
it folds constants and removes dead nodes itself) → onnxruntime *basic* graph optimisation
offline (constant folding, redundant-node removal, portable ONNX operators only, so the file
stays valid ONNX; hardware-specific fusions are left to the device's session) → debug metadata stripped → parity with
PyTorch on real preprocessed windows, refused above the tolerance → optional INT8 →
``onnx.checker`` → atomic write.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import Tensor, nn

from emotionkd.exporters.errors import ExportError
from emotionkd.exporters.inference_twin import inference_twins
from emotionkd.exporters.quantize import INT8_MODES, quantize_int8
from emotionkd.exporters.reference_windows import ReferenceWindows, load_windows, synthetic_windows
from emotionkd.exporters.runtime import cpu_session, probabilities
from emotionkd.firmware_bridge.errors import ConfigError, ContractError
from emotionkd.sdk.contract import ONNX_METADATA_KEY, ModelContract
from emotionkd.sdk.integrity import stamp_integrity
from emotionkd.sdk.model import cpu_session as sdk_cpu_session
from emotionkd.training.atomic_io import atomic_path

logger = logging.getLogger(__name__)

INPUT_NAME: Final = "gsr"
#: LayerNormalization, used by the encoder blocks, is an ONNX operator from opset 17 on.
MIN_OPSET: Final = 17
DEFAULT_OPSET: Final = 18
TORCH_EXPORTERS: Final = ("dynamo", "torchscript")
#: Example batch for tracing: not 1, which torch.export would specialise the batch axis to.
_EXAMPLE_BATCH: Final = 2


@dataclass(frozen=True)
class ExportOptions:
    """How to export.

    Attributes:
        opset: ONNX opset (17 or newer).
        int8: also quantise to INT8 (see :mod:`emotionkd.exporters.quantize`).
        int8_mode: ``auto`` (measure dynamic and static, keep the better), ``dynamic``, ``static``.
        int8_min_agreement: refuse an INT8 model whose predicted class differs from FP32's on
            more than this share of held-out windows (per target).
        parity_tolerance: largest acceptable |onnxruntime − PyTorch| probability difference (FP32).
        reference_windows: synthetic windows checked when no windows are supplied.
        torch_exporter: ``dynamo`` (torch.export) or ``torchscript`` (the deprecated tracer).
        optimise: run onnxruntime's basic graph optimisation offline.
        inference_twin: export each EmotionNetStudent's inference twin (BatchNorm folded,
            Q/K/V in one GEMM, fewer Transposes: same function, faster graph; see
            :mod:`emotionkd.exporters.inference_twin`) instead of the training module. The
            parity check always compares with the original students.
        latency_runs: batch-1 runs timed per model for the INT8 speed report.
        seed: seed of the synthetic reference windows.
    """

    opset: int = DEFAULT_OPSET
    int8: bool = False
    int8_mode: str = "auto"
    int8_min_agreement: float = 0.9
    parity_tolerance: float = 1e-4
    reference_windows: int = 64
    torch_exporter: str = "dynamo"
    optimise: bool = True
    inference_twin: bool = True
    latency_runs: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        newest = onnx.defs.onnx_opset_version()
        if not (isinstance(self.opset, int) and MIN_OPSET <= self.opset <= newest):
            raise ConfigError(f"--opset must be between {MIN_OPSET} and {newest} (this onnx), got {self.opset!r}")
        if self.int8_mode not in INT8_MODES:
            raise ConfigError(f"unknown INT8 mode {self.int8_mode!r}; use one of {', '.join(INT8_MODES)}")
        if self.torch_exporter not in TORCH_EXPORTERS:
            raise ConfigError(f"unknown torch exporter {self.torch_exporter!r}; use one of {', '.join(TORCH_EXPORTERS)}")
        if not self.parity_tolerance > 0:
            raise ConfigError(f"parity tolerance must be positive, got {self.parity_tolerance!r}")
        if self.reference_windows < 4 or self.latency_runs < 1:
            raise ConfigError("reference_windows must be >= 4 and latency_runs >= 1")


@dataclass(frozen=True)
class ExportReport:
    """What was written and how it was checked.

    Attributes:
        path: the ONNX file.
        contract: the contract stored in it (``export`` filled in).
        parity_max_abs_diff: largest |onnxruntime − PyTorch| probability on the reference windows.
        parity_windows: how many windows were compared.
        size_bytes / sha256: of the written file.
    """

    path: Path
    contract: ModelContract
    parity_max_abs_diff: float
    parity_windows: int
    size_bytes: int
    sha256: str
    quantization: Mapping[str, Any] | None = field(default=None)


class StudentsGraph(nn.Module):
    """The exported module: every target's student on the same windows, softmax applied.

    ``forward(gsr (B, W)) → tuple of (B, 2) probabilities``, in ``targets`` order.
    """

    def __init__(self, students: Mapping[str, nn.Module], targets: Sequence[str]) -> None:
        super().__init__()
        missing = [t for t in targets if t not in students]
        if missing:
            raise ExportError(f"no student for the contract targets {missing}")
        self.targets = tuple(targets)
        self.students = nn.ModuleDict({t: students[t] for t in self.targets})

    def forward(self, gsr: Tensor) -> tuple[Tensor, ...]:
        return tuple(torch.softmax(self.students[t](gsr), dim=-1) for t in self.targets)


# --- steps -----------------------------------------------------------------------------------
def _to_onnx(graph: StudentsGraph, window_samples: int, options: ExportOptions) -> onnx.ModelProto:
    example = (torch.zeros(_EXAMPLE_BATCH, window_samples),)
    names: dict[str, Any] = {"input_names": [INPUT_NAME], "output_names": list(graph.targets),
                             "opset_version": options.opset}
    chatter = io.StringIO()  # the dynamo exporter prints progress; a library does not print
    try:
        with torch.no_grad(), contextlib.redirect_stdout(chatter), warnings.catch_warnings():
            warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning, UserWarning))
            if options.torch_exporter == "dynamo":
                program = torch.onnx.export(
                    graph, example, None, dynamo=True, verbose=False, optimize=True,
                    dynamic_shapes={"gsr": {0: torch.export.Dim("batch", min=1)}}, **names)
                if program is None:  # pragma: no cover - dynamo=True always returns a program
                    raise ExportError("torch.onnx.export returned no program")
                proto = program.model_proto
            else:
                buffer = io.BytesIO()
                torch.onnx.export(  # the TorchScript exporter writes to any binary file object
                    graph, example, buffer,  # type: ignore[arg-type]
                    dynamo=False, do_constant_folding=True,
                    dynamic_axes={n: {0: "batch"} for n in (INPUT_NAME, *graph.targets)}, **names)
                proto = onnx.load_from_string(buffer.getvalue())
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch's exporters raise many unrelated types
        other = "torchscript" if options.torch_exporter == "dynamo" else "dynamo"
        raise ExportError(f"torch.onnx.export ({options.torch_exporter}) failed: {exc}; try "
                          f"--torch-exporter {other}") from exc
    logger.debug("torch.onnx.export said: %s", chatter.getvalue())
    return proto


def _optimise_graph(proto: onnx.ModelProto) -> onnx.ModelProto:
    """onnxruntime's basic (hardware-independent) optimisations, saved as a plain ONNX graph."""
    with tempfile.TemporaryDirectory(prefix="emotionkd-opt-") as work:
        out = Path(work) / "optimised.onnx"
        try:
            sdk_cpu_session(proto.SerializeToString(), optimisation="basic", save_optimised_to=out)
            optimised = onnx.load(str(out))
        except Exception as exc:  # noqa: BLE001 - onnxruntime (ModelError) or onnx raise it
            raise ExportError(f"onnxruntime could not optimise the exported graph: {exc}") from exc
    logger.debug("graph optimisation: %d → %d nodes", len(proto.graph.node), len(optimised.graph.node))
    return optimised


def _strip(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Drop what a device never needs: per-node debug metadata (the exporter's stack traces,
    which also name the exporting machine's paths; ~80 % of a small model's bytes) and opset
    imports no node uses."""
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    used = {node.domain for node in proto.graph.node} | {""}
    kept = [o for o in proto.opset_import if o.domain in used]
    del proto.opset_import[:]
    proto.opset_import.extend(kept)
    return proto


def check_parity(
    model: bytes, graph: StudentsGraph, windows: ReferenceWindows, tolerance: float,
) -> float:
    """Largest |onnxruntime − PyTorch| probability over ``windows``, run as one batch and as
    batch 1 (the dynamic axis); raises :class:`ExportError` above ``tolerance``."""
    with torch.no_grad():
        expected = graph(torch.from_numpy(windows.gsr))
    session = cpu_session(model)
    got = probabilities(session, windows.gsr, graph.targets, batch=len(windows))
    worst = 0.0
    for target, reference in zip(graph.targets, expected, strict=True):
        worst = max(worst, float(np.abs(got[target] - reference.numpy()).max()))
    singles = probabilities(session, windows.gsr[:4], graph.targets, batch=1)
    for target, reference in zip(graph.targets, expected, strict=True):
        worst = max(worst, float(np.abs(singles[target] - reference[:4].numpy()).max()))
    if not worst <= tolerance:  # also catches NaN
        raise ExportError(
            f"parity check failed: onnxruntime and PyTorch differ by up to {worst:.3g} "
            f"(tolerance {tolerance:g}) on {len(windows)} {windows.source} windows; the model "
            "was not written. Try another --opset or --torch-exporter", max_abs_diff=worst)
    return worst


def _versions() -> dict[str, str]:
    def of(dist: str) -> str:
        try:
            return dist_version(dist)
        except PackageNotFoundError:
            return "unknown"

    return {"exporter_version": of("emotionkd"), "torch_version": torch.__version__,
            "onnx_version": onnx.__version__, "onnxruntime_version": ort.__version__}


def _stamp(proto: onnx.ModelProto, contract: ModelContract) -> None:
    """Put the contract (and nothing stale) into ``metadata_props``; name the producer."""
    kept = [p for p in proto.metadata_props if p.key != ONNX_METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in contract.to_onnx_metadata().items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "emotionkd-export"
    proto.producer_version = str(contract.export.get("exporter_version", ""))
    proto.doc_string = ("emotionkd GSR student: input gsr [batch, window] preprocessed windows; "
                        f"outputs {', '.join(contract.targets)} [batch, 2] probabilities "
                        f"({', '.join(contract.class_names)})")


def _write_atomically(data: bytes, path: Path) -> None:
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc}") from exc


# --- public entry points ---------------------------------------------------------------------
def export_students(
    students: Mapping[str, nn.Module],
    contract: ModelContract,
    output: str | os.PathLike[str],
    options: ExportOptions | None = None,
    *,
    windows: ReferenceWindows | None = None,
    source: Mapping[str, Any] | None = None,
) -> ExportReport:
    """Export trained students (``{target: module}``, each ``(B, W) → logits (B, 2)``) as one
    checked ONNX graph with ``contract`` inside.

    Args:
        students: one module per ``contract.targets`` entry.
        contract: the students' contract (its ``export`` field is replaced).
        output: the ONNX file to write (written only when every check passed).
        options: export options.
        windows: preprocessed reference windows (default: synthetic ones from the contract's
            preprocessing); half of them calibrate INT8, the other half judge it.
        source: plain description of where the weights came from (stored in the contract).

    Raises:
        ExportError: export, parity, quantisation or the ONNX check failed; nothing written.
    """
    options = options or ExportOptions()
    output = Path(output)
    graph = StudentsGraph(students, contract.targets).eval()
    if windows is None:
        windows = synthetic_windows(contract, options.reference_windows, seed=options.seed)
    if windows.gsr.ndim != 2 or windows.gsr.shape[1] != contract.window_samples:
        raise ExportError(f"reference windows are {windows.gsr.shape}, the contract needs "
                          f"(N, {contract.window_samples})")

    exported = graph
    if options.inference_twin:
        exported = StudentsGraph(inference_twins(dict(graph.students.items())), contract.targets).eval()
    proto = _to_onnx(exported, contract.window_samples, options)
    if options.optimise:
        proto = _optimise_graph(proto)
    proto = _strip(proto)
    fp32 = proto.SerializeToString()
    parity = check_parity(fp32, graph, windows, options.parity_tolerance)

    export: dict[str, Any] = {
        "exporter": "emotionkd-export",
        **_versions(),
        "torch_exporter": options.torch_exporter,
        "opset": options.opset,
        "graph_optimisation": "onnxruntime basic (offline)" if options.optimise else "none",
        "graph_rewrite": "inference twin (BatchNorm folded, fused QKV)" if options.inference_twin else "none",
        "input": {"name": INPUT_NAME, "shape": ["batch", contract.window_samples], "dtype": "float32"},
        "outputs": {t: {"shape": ["batch", len(contract.class_names)], "dtype": "float32",
                        "meaning": "softmax probabilities"} for t in contract.targets},
        "parity": {"max_abs_diff": parity, "tolerance": options.parity_tolerance,
                   "windows": len(windows), "reference": windows.source},
        "int8": False,
    }
    if source:
        export["source_checkpoint"] = dict(source)

    quantization = None
    final = proto
    if options.int8:
        if windows.source.startswith("synthetic"):
            # independent recordings: calibration never sees a held-out window
            calibration = synthetic_windows(contract, len(windows), seed=options.seed + 1)
            held_out = windows
        else:
            calibration, held_out = windows.take(np.arange(0, len(windows), 2)), windows.take(np.arange(1, len(windows), 2))
        result = quantize_int8(fp32, contract.targets, calibration, held_out, options.int8_mode,
                               options.int8_min_agreement, options.latency_runs)
        quantization = result.summary
        export["int8"] = True
        export["quantization"] = quantization
        final = onnx.load_from_string(result.model)

    # the opset the file really has (the exporter may convert, the quantiser may raise it)
    export["opset"] = {o.domain: o.version for o in final.opset_import}.get("", options.opset)
    try:
        stamped_contract = contract.with_updates(export=export)
        _stamp(final, stamped_contract)
        onnx.checker.check_model(final, full_check=True)
    except ContractError as exc:
        raise ExportError(f"cannot store the contract: {exc}") from exc
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported graph fails onnx.checker: {exc}") from exc
    # the integrity hash of graph, weights and contract, checked by the SDK at load
    data = stamp_integrity(final.SerializeToString())
    _write_atomically(data, output)
    logger.info("wrote %s (%d bytes, parity %.3g)", output, len(data), parity)
    return ExportReport(output, stamped_contract, parity, len(windows), len(data),
                        hashlib.sha256(data).hexdigest(), quantization)


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    options: ExportOptions | None = None,
    *,
    windows: ReferenceWindows | str | os.PathLike[str] | None = None,
) -> ExportReport:
    """``student.pt`` → ONNX (default: next to it, ``.onnx`` or ``.int8.onnx``).

    ``windows``: reference windows, or an ``.npz`` of them (see
    :func:`~emotionkd.exporters.reference_windows.load_windows`); default synthetic.

    Raises:
        CheckpointError: missing, foreign, unsafe or newer checkpoint (nothing of it is run).
        DataError: an unreadable or mismatched windows file.
        ExportError: see :func:`export_students`.
    """
    from emotionkd.training.checkpoint import STUDENT_FORMAT_VERSION, load_student_checkpoint

    options = options or ExportOptions()
    checkpoint = Path(checkpoint)
    loaded = load_student_checkpoint(checkpoint)
    if output is None:
        output = default_output(checkpoint, options.int8)
    output = Path(output)
    if output.exists() and output.resolve() == checkpoint.resolve():
        raise ExportError(f"the output {output} is the checkpoint itself; choose another -o")
    if loaded.student_config.window_samples != loaded.contract.window_samples:
        raise ExportError(
            f"{checkpoint}: the students take {loaded.student_config.window_samples}-sample windows "
            f"but the contract says {loaded.contract.window_samples}; the checkpoint is inconsistent")
    if windows is not None and not isinstance(windows, ReferenceWindows):
        windows = load_windows(windows, loaded.contract)
    source = {"name": checkpoint.name, "sha256": file_sha256(checkpoint),
              "format_version": STUDENT_FORMAT_VERSION, "student_config": loaded.student_config.to_dict()}
    return export_students(loaded.build_all(), loaded.contract, output, options,
                           windows=windows, source=source)


def default_output(checkpoint: Path, int8: bool) -> Path:
    return checkpoint.with_name(checkpoint.stem + (".int8.onnx" if int8 else ".onnx"))


__all__ = [
    "DEFAULT_OPSET",
    "INPUT_NAME",
    "MIN_OPSET",
    "ExportOptions",
    "ExportReport",
    "StudentsGraph",
    "check_parity",
    "default_output",
    "export_checkpoint",
    "export_students",
]
