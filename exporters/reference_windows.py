"""Windows the exporter checks a model on: parity with PyTorch, INT8 calibration and agreement.

They are *real* model inputs, never random noise: either preprocessed windows a user supplies
(an ``.npz`` with ``gsr`` and, optionally, ``labels``) or recordings of the synthetic skin
conductance generator (:mod:`emotionkd.firmware_bridge.gsr_synth`) pushed through the one
preprocessing implementation (:mod:`emotionkd.sdk.preprocessing`) the contract names, at calm
to highly aroused levels. Calibration and held-out windows never overlap.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import DataError
from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, synthesize_gsr
from emotionkd.sdk.contract import ModelContract
from emotionkd.sdk.preprocessing import preprocess_recording


@dataclass(frozen=True)
class ReferenceWindows:
    """Preprocessed model inputs.

    Attributes:
        gsr: (N, W) float32 windows, all usable (no NaN).
        labels: (N, T) int64 labels in the contract's target order (1 = high), or None.
        source: where they came from, for the report (``synthetic ...`` or a file name).
    """

    gsr: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64] | None
    source: str

    def __len__(self) -> int:
        return int(self.gsr.shape[0])

    def take(self, index: npt.ArrayLike) -> ReferenceWindows:
        i = np.asarray(index)
        return ReferenceWindows(self.gsr[i], None if self.labels is None else self.labels[i], self.source)


def synthetic_windows(
    contract: ModelContract, count: int = 64, seed: int = 0, recording_s: float = 64.0,
) -> ReferenceWindows:
    """``count`` usable windows from synthetic recordings, preprocessed as ``contract`` says.

    Recordings cover arousal 0 to 1; windows do not overlap, so two calls with different seeds
    give independent sets (calibration versus held-out).
    """
    config = contract.preprocessing_config()
    synth = GsrSynthConfig(rate_hz=contract.sample_rate_hz)
    parts: list[npt.NDArray[np.float32]] = []
    have, recording = 0, 0
    while have < count:
        arousal = (recording * 0.37) % 1.0  # spread levels without a pattern tied to `count`
        signal = synthesize_gsr(recording_s, arousal=arousal, seed=seed * 100_003 + recording, config=synth)
        windows = preprocess_recording(signal, contract.sample_rate_hz, "uS", config, hop_samples=contract.window_samples)
        usable = windows.features[windows.usable]
        parts.append(usable)
        have += len(usable)
        recording += 1
        if recording > 10 * count + 10:  # a contract whose windows never fit a recording
            raise DataError(f"synthetic recordings of {recording_s:g} s give no usable "
                            f"{contract.window_samples}-sample windows for this contract")
    gsr = np.concatenate(parts)[:count].astype(np.float32)
    return ReferenceWindows(gsr, None, f"synthetic (gsr_synth + {contract.preprocessing.name} v"
                                       f"{contract.preprocessing.version}, seed {seed})")


def load_windows(path: str | os.PathLike[str], contract: ModelContract) -> ReferenceWindows:
    """Preprocessed windows from an ``.npz``: ``gsr`` (N, W) float and optional ``labels``
    (N, T) 0/1 in the contract's target order. A prepared dataset written by
    ``WindowedDataset.save_npz`` is such a file. Rows with NaN (unusable windows) are dropped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"windows file {path} does not exist", path=str(path))
    try:
        with np.load(path, allow_pickle=False) as data:  # never unpickle objects from a file
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path} is not a readable .npz of arrays: {exc}", path=str(path)) from exc
    if "gsr" not in arrays:
        raise DataError(f"{path} holds no 'gsr' array (found {sorted(arrays)}); save the "
                        "preprocessed windows as gsr=(N, W)", path=str(path))
    gsr = np.asarray(arrays["gsr"])
    if gsr.ndim != 2 or gsr.shape[1] != contract.window_samples or not np.issubdtype(gsr.dtype, np.floating):
        raise DataError(f"{path}: gsr must be float (N, {contract.window_samples}), got "
                        f"{gsr.dtype} {gsr.shape}", path=str(path))
    labels = arrays.get("labels")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (gsr.shape[0], len(contract.targets)) or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{path}: labels must be int ({gsr.shape[0]}, {len(contract.targets)}) "
                            f"for targets {list(contract.targets)}, got {labels.dtype} {labels.shape}",
                            path=str(path))
        if not np.isin(labels, (0, 1)).all():
            raise DataError(f"{path}: labels must be 0 (low) or 1 (high)", path=str(path))
        labels = labels.astype(np.int64)
    keep = np.isfinite(gsr).all(axis=1)
    if keep.sum() < 2:
        raise DataError(f"{path} has fewer than 2 usable windows", path=str(path))
    return ReferenceWindows(gsr[keep].astype(np.float32), None if labels is None else labels[keep],
                            path.name)


def split_calibration(windows: ReferenceWindows, fraction: float = 0.5) -> tuple[ReferenceWindows, ReferenceWindows]:
    """(calibration, held-out): disjoint, interleaved so both see every part of the data."""
    n = len(windows)
    step = max(2, round(1 / fraction)) if 0 < fraction < 1 else 2
    calibration = np.arange(n) % step == 0
    return windows.take(np.flatnonzero(calibration)), windows.take(np.flatnonzero(~calibration))


__all__ = ["ReferenceWindows", "load_windows", "split_calibration", "synthetic_windows"]
