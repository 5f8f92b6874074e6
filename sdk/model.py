"""The ONNX model the SDK runs: loading, I/O checks, the contract inside, and inference.

Kept apart from the decision logic (windows, quality, labels live in
:mod:`emotionkd.sdk.classifier`), like silero-vad's numpy-only ONNX wrapper. onnxruntime is
imported here and only here, when a model is loaded, so ``import emotionkd.sdk`` stays cheap.

The I/O every emotionkd model has (COMMON interface, written by ``emotionkd-export``): one input
``gsr`` float32 ``[batch, window_samples]`` (the preprocessed ``Windows.features``), outputs
``arousal`` and ``valence`` float32 ``[batch, 2]`` softmax probabilities in
``contract.class_names`` order, and the contract JSON in the metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ContractError, ModelError
from emotionkd.sdk.contract import ModelContract
from emotionkd.sdk.integrity import IntegrityStatus, check_integrity
from emotionkd.sdk.logs import get_logger

INPUT_NAME: Final = "gsr"
#: the file the bundled model is expected under (package data of emotionkd.sdk)
BUNDLED_MODEL_DIR: Final = "models"
BUNDLED_MODEL_NAME: Final = "emotionkd-student.onnx"
# the package's folder (package data sits beside this file), rather than importlib.resources:
# the model is read from bytes of a real file anyway, and importlib.resources pulls tempfile,
# shutil, zipfile, lzma and bz2 into every process that loads the bundled model (1.3 MB resident)
_PACKAGE_DIR: Final = Path(__file__).resolve().parent


def bundled_model_path() -> Path:
    """The model shipped inside the package (``emotionkd/sdk/models/*.onnx``).

    Raises:
        ModelError: this installation carries no bundled model.
    """
    folder = _PACKAGE_DIR / BUNDLED_MODEL_DIR
    candidates = sorted(folder.glob("*.onnx")) if folder.is_dir() else []
    preferred = [p for p in candidates if p.name == BUNDLED_MODEL_NAME]
    if preferred or candidates:
        return (preferred or candidates)[0]
    raise ModelError(
        "this installation has no bundled model (emotionkd/sdk/models/*.onnx): build it with "
        "`make bundled-model` in a source checkout, or pass model='path/to/student.onnx' "
        "(emotionkd-sdk --model FILE)"
    )


#: graph optimisation levels by name: ``all`` to run a model, ``basic`` (hardware-independent) to
#: rewrite one for export, ``none`` to read its metadata without compiling it
OPTIMISATION_LEVELS: Final = ("all", "basic", "none")


def cpu_session(model: bytes, threads: int = 1, *, memory_arena: bool = False, optimisation: str = "all",
                save_optimised_to: Path | None = None) -> Any:
    """The one way emotionkd builds an onnxruntime session (the SDK runs it; the exporter
    measures the contract's latency with it, so the figure is what a device sees).

    Small and predictable beats fast here: ``threads`` intra-op threads, one inter-op thread,
    sequential execution, every graph optimisation, no thread spinning on an idle gateway, and
    no CPU memory arena unless ``memory_arena`` (the arena keeps its peak, which a wearable
    cannot spare; a gateway running large batches turns it on).

    Args:
        model: the ONNX graph as bytes (never a path: no external data beside the file).
        optimisation: one of :data:`OPTIMISATION_LEVELS` (the model card reads metadata with
            ``none``; the exporter rewrites a graph with ``basic`` and ``save_optimised_to``).
        save_optimised_to: where onnxruntime writes the optimised graph (None: nowhere).

    Raises:
        ModelError: onnxruntime is missing or cannot load the graph (the cause chained).
    """
    if optimisation not in OPTIMISATION_LEVELS:
        raise ModelError(f"unknown graph optimisation {optimisation!r}; use one of {', '.join(OPTIMISATION_LEVELS)}")
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ModelError("onnxruntime is not installed: pip install onnxruntime") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}[optimisation]
    if save_optimised_to is not None:
        options.optimized_model_filepath = str(save_optimised_to)
    options.enable_cpu_mem_arena = bool(memory_arena)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # warnings about unused initialisers are not the user's business, nor are the errors of a
    # damaged file that the ModelError below words (4: fatal only)
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise ModelError(f"onnxruntime cannot load the graph: {exc}") from exc
    # onnxruntime's Python wrapper keeps the model's bytes for as long as the session lives (its
    # own comment: "bad as we're holding the memory indefinitely"); it reads them again only to
    # rebuild the session for a fallback execution provider, which a CPU-only session does not
    # have (and fallback is switched off here). Dropping them frees the file's size (1.1 MB
    # INT8, 3.8 MB FP32) before the first window: part of the wearable's 64 MB budget.
    session.disable_fallback()
    if getattr(session, "_model_bytes", None) is not None:
        session._model_bytes = None
    return session


class OnnxEmotionModel:
    """An emotionkd ONNX model in an onnxruntime session, sized for a wearable or gateway.

    Args:
        path: the ``.onnx`` file.
        threads: onnxruntime intra-op threads (1 keeps memory and CPU small; a 4 s window every
            second needs a few milliseconds of one core).
        memory_arena: keep onnxruntime's CPU memory arena. Off by default (the arena holds on
            to its peak, which a wearable cannot spare); a gateway running large batches turns
            it on: without it every batch maps and faults in megabytes of fresh pages.
        verify: check the file's integrity hash (:mod:`emotionkd.sdk.integrity`) before loading;
            a mismatch is a :class:`ModelError`, a file without a hash (an older export) loads
            with a logged warning. ``False`` (``--no-verify``) skips the check.

    Attributes:
        contract: the :class:`ModelContract` from the file's metadata.
        path: the file.
        targets: the heads run, in the contract's order.
        integrity: ``verified``, ``unstamped`` (no hash in the file) or ``not checked``.
    """

    def __init__(self, path: str | Path, threads: int = 1, *, memory_arena: bool = False,
                 verify: bool = True) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file {str(self.path)!r} does not exist (pass an .onnx file from emotionkd-export)")
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read model {str(self.path)!r}: {exc.strerror or exc}") from exc
        self.integrity: IntegrityStatus = check_integrity(data, str(self.path)) if verify else "not checked"
        if self.integrity == "unstamped":
            get_logger(__name__).warning(
                "model %s carries no integrity hash (exported before emotionkd-export stamped one): "
                "loaded unverified; export it again to protect it", self.path)
        try:
            # from the bytes just verified (and never from files beside it: no external data)
            self._session = cpu_session(data, threads, memory_arena=memory_arena)
        except ModelError as exc:
            raise ModelError(f"cannot load model {str(self.path)!r}: {exc}") from exc
        try:
            metadata = self._session.get_modelmeta().custom_metadata_map
        except UnicodeDecodeError as exc:  # a damaged metadata string (onnxruntime decodes it)
            raise ModelError(f"model {str(self.path)!r}: its metadata is not valid text ({exc.reason}); "
                             "the file is damaged: export it again") from exc
        try:
            self.contract = ModelContract.from_onnx_metadata(metadata)
        except ContractError as exc:
            raise ModelError(f"model {str(self.path)!r}: {exc}") from exc
        self.targets = tuple(self.contract.targets)
        self._output_names = list(self.targets)  # built once: run() is on every push's path
        self._batch_fixed = self._check_io()

    def _check_io(self) -> bool:
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
            raise ModelError(
                f"model {str(self.path)!r} must have one input named {INPUT_NAME!r}, has "
                f"{[i.name for i in inputs]}; export it with emotionkd-export")
        shape = inputs[0].shape
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != self.contract.window_samples):
            raise ModelError(
                f"model input {INPUT_NAME!r} has shape {shape}, the contract needs "
                f"[batch, {self.contract.window_samples}]")
        outputs = {o.name for o in self._session.get_outputs()}
        missing = [t for t in self.targets if t not in outputs]
        if missing:
            raise ModelError(f"model {str(self.path)!r} lacks outputs {missing} (has {sorted(outputs)})")
        return isinstance(shape[0], int)

    def run(self, features: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        """Probabilities per target for a batch of windows.

        Args:
            features: (N, W) float32 normalised windows (``Windows.features``), all finite.

        Returns:
            ``{target: (N, 2) float32}`` probabilities in ``contract.class_names`` order.
        """
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.shape[0] == 0:
            return {t: np.zeros((0, 2), np.float32) for t in self.targets}
        if self._batch_fixed:  # a model exported with batch 1 runs window by window
            parts = [self._run(x[i : i + 1]) for i in range(x.shape[0])]
            return {t: np.concatenate([p[t] for p in parts]) for t in self.targets}
        return self._run(x)

    def _run(self, x: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        try:
            values = self._session.run(self._output_names, {INPUT_NAME: x})
        except Exception as exc:
            raise ModelError(f"model {str(self.path)!r} failed on a batch of shape {x.shape}: {exc}") from exc
        out: dict[str, Any] = {}
        for target, value in zip(self.targets, values, strict=True):
            value = np.asarray(value, dtype=np.float32)
            if value.shape != (x.shape[0], 2):
                raise ModelError(f"model output {target!r} has shape {value.shape}, expected ({x.shape[0]}, 2)")
            out[target] = value
        return out


__all__ = ["BUNDLED_MODEL_NAME", "INPUT_NAME", "OnnxEmotionModel", "bundled_model_path", "cpu_session"]
