"""The in-memory form of a prepared dataset: aligned EEG and GSR windows with labels.

Every loader (DEAP, MAHNOB-HCI, synthetic, labelled GSR recordings) produces this, and every
trainer consumes it. GSR windows come from :mod:`emotionkd.sdk.preprocessing` (the code the
device runs), so a model never sees GSR prepared any other way.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import DataError
from emotionkd.sdk.contract import TARGETS  # label columns, in the contract's order


@dataclass
class WindowedDataset:
    """N windows.

    Attributes:
        gsr: (N, W) float32, preprocessed GSR model input (W = 512: 32 s at 16 Hz, or 4 s at
            128 Hz with the paper preprocessing).
        eeg: (N, 28, E) float32 EEG in the METHOD.md channel order, or None (GSR-only data);
            E = 512 (4 s at 128 Hz), aligned to the end of the GSR window (E may differ from W).
        labels: (N, 2) int64 binary labels, columns :data:`TARGETS` (1 = high).
        ratings: (N, 2) float32 self-reported ratings behind the labels (1–9; NaN if none).
        subject: (N,) int64 subject id.
        trial: (N,) int64 trial id, unique within a subject.
        start_s: (N,) float32 window start within its trial (s).
        meta: plain-type description (dataset, data_kind, preprocessing params, label rule…).
    """

    gsr: npt.NDArray[np.float32]
    eeg: npt.NDArray[np.float32] | None
    labels: npt.NDArray[np.int64]
    ratings: npt.NDArray[np.float32]
    subject: npt.NDArray[np.int64]
    trial: npt.NDArray[np.int64]
    start_s: npt.NDArray[np.float32]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.gsr.shape[0]
        checks: dict[str, tuple[npt.NDArray[Any], tuple[int, ...]]] = {
            "labels": (self.labels, (n, 2)),
            "ratings": (self.ratings, (n, 2)),
            "subject": (self.subject, (n,)),
            "trial": (self.trial, (n,)),
            "start_s": (self.start_s, (n,)),
        }
        for name, (array, shape) in checks.items():
            if array.shape != shape:
                raise DataError(f"{name} has shape {array.shape}, expected {shape}")
        if self.gsr.ndim != 2:
            raise DataError(f"gsr must be (N, W), got shape {self.gsr.shape}")
        if self.eeg is not None and (self.eeg.ndim != 3 or self.eeg.shape[0] != n):
            raise DataError(f"eeg must be (N, C, E) with one window per gsr window {self.gsr.shape}, got {self.eeg.shape}")

    def __len__(self) -> int:
        return int(self.gsr.shape[0])

    @property
    def window_samples(self) -> int:
        """GSR samples per window (W)."""
        return int(self.gsr.shape[1])

    @property
    def eeg_window_samples(self) -> int | None:
        """EEG samples per window (E), None without EEG."""
        return None if self.eeg is None else int(self.eeg.shape[2])

    def subset(self, index: npt.ArrayLike) -> WindowedDataset:
        """The windows at ``index`` (an int array or a boolean mask)."""
        i = np.asarray(index)
        return WindowedDataset(
            gsr=self.gsr[i],
            eeg=None if self.eeg is None else self.eeg[i],
            labels=self.labels[i],
            ratings=self.ratings[i],
            subject=self.subject[i],
            trial=self.trial[i],
            start_s=self.start_s[i],
            meta=dict(self.meta),
        )

    _ARRAYS = ("gsr", "eeg", "labels", "ratings", "subject", "trial", "start_s")

    def save_npz(self, path: str | Path) -> None:
        """Write to an uncompressed ``.npz`` (arrays as they are, ``meta`` as JSON text)."""
        arrays = {name: getattr(self, name) for name in self._ARRAYS if getattr(self, name) is not None}
        arrays["meta_json"] = np.array(json.dumps(self.meta, sort_keys=True))
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load_npz(cls, path: str | Path) -> WindowedDataset:
        """Inverse of :meth:`save_npz` (no pickles are loaded).

        Raises:
            DataError: the file is missing, truncated or lacks an array.
        """
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {name: z[name] if name in z.files else None for name in cls._ARRAYS}
                meta = json.loads(str(z["meta_json"]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: not a readable prepared dataset ({type(exc).__name__}: {exc})", path=str(path)) from exc
        missing = [name for name, value in arrays.items() if value is None and name != "eeg"]
        if missing:
            raise DataError(f"{path}: prepared dataset lacks {missing}", path=str(path))
        if meta.get("data_kind") == "recorded":  # written before meta used the contract's DATA_KINDS
            meta["data_kind"] = "real"
        return cls(meta=meta, **arrays)  # type: ignore[arg-type]


__all__ = ["TARGETS", "WindowedDataset"]
