"""DEAP (Koelstra et al. 2012): the preprocessed Python and MATLAB files.

Layout (``<root>/data_preprocessed_python/sXX.dat`` or ``<root>/data_preprocessed_matlab/sXX.mat``;
``root`` may also be the folder itself): per subject a dict with ``data`` (40 trials, 40 channels,
8064 samples at 128 Hz) and ``labels`` (40, 4) = valence, arousal, dominance, liking (1–9).
Channels 0–31 are EEG in the Geneva order (4–45 Hz, common average reference, µV), channel 36
is skin resistance in Ohm. The first 3 s of each trial are a pre-trial baseline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import DataError
from emotionkd.training.datasets.channels import DEAP_CHANNELS, DEAP_GSR_INDEX, EEG_28, GENEVA_TO_28
from emotionkd.training.datasets.config import DatasetConfig, ratings_to_labels
from emotionkd.training.datasets.safe_pickle import safe_load
from emotionkd.training.datasets.trials import SubjectWindows, scale_subject_eeg, window_trial

DEAP_RATE_HZ: Final = 128.0
#: columns of DEAP's ``labels``
DEAP_RATINGS: Final = ("valence", "arousal", "dominance", "liking")
DEAP_GSR_UNIT: Final = "Ohm"
PYTHON_DIR: Final = "data_preprocessed_python"
MATLAB_DIR: Final = "data_preprocessed_matlab"
_SUBJECT_FILE: Final = re.compile(r"^s(\d+)\.(dat|mat)$", re.IGNORECASE)


@dataclass
class DeapSubject:
    """One subject's file: ``data`` (trials, 40, samples) and ``labels`` (trials, 4)."""

    subject: int
    path: str
    data: npt.NDArray[np.floating]
    labels: npt.NDArray[np.floating]


def subject_id(path: str | Path) -> int:
    """``s07.dat`` → 7."""
    match = _SUBJECT_FILE.match(Path(path).name)
    if not match:
        raise DataError(f"{path}: not a DEAP subject file name (expected sXX.dat or sXX.mat)", path=str(path))
    return int(match.group(1))


def find_deap_files(root: str | Path, file_format: str = "auto") -> list[Path]:
    """The subject files under ``root``, sorted by subject id.

    Args:
        root: DEAP folder (holding ``data_preprocessed_python``/``_matlab``) or one of those.
        file_format: ``python`` (.dat), ``matlab`` (.mat) or ``auto`` (.dat when present).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: DEAP folder not found; pass the folder holding {PYTHON_DIR}/ or {MATLAB_DIR}/", path=str(root))
    candidates = {"python": [root / PYTHON_DIR, root], "matlab": [root / MATLAB_DIR, root]}
    suffix = {"python": ".dat", "matlab": ".mat"}
    formats = ["python", "matlab"] if file_format == "auto" else [file_format]
    if file_format not in ("auto", "python", "matlab"):
        raise DataError(f"unknown DEAP file format {file_format!r}; use auto, python or matlab")
    for fmt in formats:
        for folder in candidates[fmt]:
            if folder.is_dir():
                files = [p for p in folder.iterdir() if p.suffix.lower() == suffix[fmt] and _SUBJECT_FILE.match(p.name)]
                if files:
                    return sorted(files, key=subject_id)
    raise DataError(f"{root}: no DEAP subject files (sXX.dat in {PYTHON_DIR}/ or sXX.mat in {MATLAB_DIR}/)", path=str(root))


def _load_mat(path: Path) -> dict[str, Any]:
    from scipy.io import loadmat  # training-only dependency

    if not path.is_file():
        raise DataError(f"{path}: file not found", path=str(path))
    try:
        return loadmat(str(path), variable_names=["data", "labels"])
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError… for broken files
        raise DataError(f"{path}: not a readable MATLAB file, possibly truncated ({type(exc).__name__}: {exc})", path=str(path)) from exc


def read_deap_subject(path: str | Path) -> DeapSubject:
    """Read and check one ``sXX.dat`` / ``sXX.mat`` file.

    Raises:
        DataError: missing, truncated, unsafe, or arrays of the wrong type or shape.
    """
    path = Path(path)
    content = _load_mat(path) if path.suffix.lower() == ".mat" else safe_load(path)
    if not isinstance(content, dict) or "data" not in content or "labels" not in content:
        keys = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise DataError(f"{path}: expected a dict with 'data' and 'labels', found {keys}", path=str(path))
    data, labels = content["data"], content["labels"]
    for name, array in (("data", data), ("labels", labels)):
        if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number):
            raise DataError(f"{path}: '{name}' must be a numeric array, got {type(array).__name__}", path=str(path))
    if data.ndim != 3 or data.shape[1] != DEAP_CHANNELS:
        raise DataError(f"{path}: 'data' has shape {data.shape}, expected (trials, {DEAP_CHANNELS} channels, samples)", path=str(path))
    if labels.shape != (data.shape[0], len(DEAP_RATINGS)):
        raise DataError(f"{path}: 'labels' has shape {labels.shape}, expected ({data.shape[0]}, {len(DEAP_RATINGS)}) "
                        f"= {', '.join(DEAP_RATINGS)} per trial", path=str(path))
    return DeapSubject(subject_id(path), str(path), data, labels)


def prepare_deap_subject(path: str | Path, config: DatasetConfig) -> SubjectWindows:
    """Window one subject file: 28 EEG channels + GSR, baseline dropped, labels from ratings."""
    subject = read_deap_subject(path)
    baseline = int(round(config.deap_baseline_s * DEAP_RATE_HZ))
    samples = subject.data.shape[2] - baseline
    if samples / DEAP_RATE_HZ < config.preprocessing.window_s:
        raise DataError(f"{path}: trials hold {subject.data.shape[2]} samples, too short for a "
                        f"{config.deap_baseline_s:g} s baseline and one window", path=str(path))
    # DEAP's labels: valence, arousal, …; ours: arousal, valence
    ratings = subject.labels[:, [1, 0]].astype(np.float64)
    labels = ratings_to_labels(ratings, config, source=str(path))
    out = SubjectWindows(subject.subject, info={"path": str(path)})
    eeg_all = subject.data[:, GENEVA_TO_28, baseline:]
    gsr_all = subject.data[:, DEAP_GSR_INDEX, baseline:]
    for t in range(subject.data.shape[0]):
        windows = window_trial(gsr_all[t], DEAP_RATE_HZ, DEAP_GSR_UNIT, eeg_all[t], config)
        out.add(t + 1, ratings[t], labels[t], windows)
    return scale_subject_eeg(out, config)


def deap_meta(files: list[Path]) -> dict[str, Any]:
    """Dataset-level facts for ``meta``."""
    return {
        "dataset": "deap",
        "file_format": "python" if files[0].suffix.lower() == ".dat" else "matlab",
        "source_rate_hz": DEAP_RATE_HZ,
        "gsr_unit": DEAP_GSR_UNIT,
        "eeg_channels": list(EEG_28),
        "trial_ids": "1-based trial (video) index within the subject file",
    }


# --- writing (the synthetic generator writes files in exactly DEAP's formats) -------------------

def _py2_string(data: bytes) -> bytes:
    # SHORT_BINSTRING / BINSTRING: Python 2 str, read back as latin-1 text by Python 3
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data
    return b"T" + len(data).to_bytes(4, "little") + data


def _py2_int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    return b"J" + int(value).to_bytes(4, "little", signed=True)


def _py2_array(array: npt.NDArray[Any]) -> bytes:
    array = np.ascontiguousarray(array)
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    array = array.astype(dtype, copy=False)
    shape = b"(" + b"".join(_py2_int(n) for n in array.shape) + b"t"
    dtype_state = (b"(" + _py2_int(3) + _py2_string(b"<") + b"NNN" + _py2_int(-1) + _py2_int(-1)
                   + _py2_int(0) + b"t")
    dtype_pickle = (b"cnumpy\ndtype\n" + _py2_string(dtype.str[1:].encode()) + _py2_int(0) + _py2_int(1)
                    + b"\x87R" + dtype_state + b"b")
    return (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + _py2_int(0) + b"\x85"
            + _py2_string(b"b") + b"\x87R"
            + b"(" + _py2_int(1) + shape + dtype_pickle + b"\x89" + _py2_string(array.tobytes()) + b"tb")


def write_deap_dat(path: str | Path, data: npt.NDArray[Any], labels: npt.NDArray[Any]) -> None:
    """Write ``{'labels': labels, 'data': data}`` as the Python-2 pickle (protocol 2) DEAP ships.

    The opcodes are emitted directly because Python 3 cannot produce Python-2 byte strings:
    its own protocol-2 pickles of numpy arrays go through ``_codecs.encode`` and UTF-8 text,
    which DEAP's files (and tools written for them) never contain.
    """
    body = b"\x80\x02}(" + _py2_string(b"labels") + _py2_array(labels) + _py2_string(b"data") + _py2_array(data) + b"u."
    Path(path).write_bytes(body)


#: fixed 116-byte descriptive text of MATLAB v5 headers we write (scipy puts the time there)
_MAT_HEADER_TEXT: Final = b"MATLAB 5.0 MAT-file, Platform: posix, written by emotionkd synth".ljust(116, b" ")


def write_deap_mat(path: str | Path, data: npt.NDArray[Any], labels: npt.NDArray[Any]) -> None:
    """Write the MATLAB v5 form (``data``, ``labels``), byte-for-byte reproducible."""
    from scipy.io import savemat

    path = Path(path)
    savemat(str(path), {"data": data, "labels": labels}, format="5", do_compression=False)
    with open(path, "r+b") as f:  # scipy stamps the creation time into the header text
        f.write(_MAT_HEADER_TEXT)


__all__ = [
    "DEAP_RATE_HZ",
    "DEAP_RATINGS",
    "DeapSubject",
    "deap_meta",
    "find_deap_files",
    "prepare_deap_subject",
    "read_deap_subject",
    "subject_id",
    "write_deap_dat",
    "write_deap_mat",
]
