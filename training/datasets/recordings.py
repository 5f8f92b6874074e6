"""Labelled GSR recordings without EEG (for fine-tuning a student on one's own sensor).

Two layouts, found anywhere under ``root`` (one recording per CSV file or E4 folder):

**CSV** (``*.csv``; lines starting with ``#`` are comments)::

    time_s,gsr_uS,arousal,valence
    0.000,2.31,1,0
    0.031,2.32,1,0

* ``time_s``: seconds, uniformly sampled (any rate; an empty GSR cell is a missing sample).
* GSR: a column ``gsr_<unit>`` (``gsr_uS``, ``gsr_nS``, ``gsr_Ohm``, ``gsr_kOhm`` …) or ``gsr``
  with the unit given as the ``gsr_unit`` option.
* Labels per sample, either binary ``arousal``/``valence`` (0 = low, 1 = high) or ratings
  ``arousal_rating``/``valence_rating`` (1–9, thresholded by the label rule). An empty label
  cell means "not labelled"; each run of constant labels is one trial.
* Or no label columns and a segment file ``<name>.labels.csv`` beside the CSV (see below).

**Empatica E4** export folder holding ``EDA.csv`` (line 1: start as unix time, line 2: rate in
Hz, usually 4, then one value in µS per line) and ``labels.csv``.

**Segment files** (``labels.csv`` / ``<name>.labels.csv``): one row per labelled segment,
``start_s,end_s`` (seconds from the recording start) or ``start_unix,end_unix``, plus the
label columns as above. Each segment is one trial.

Subject ids: a leading number in the file or folder name (``s03_morning.csv``, ``P7/``,
``12-e4``); recordings without one are numbered after the highest id found.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import DataError, UnitError
from emotionkd.firmware_bridge.units import normalise_unit
from emotionkd.training.datasets.config import DatasetConfig, ratings_to_labels
from emotionkd.training.datasets.trials import SubjectWindows, window_trial

E4_EDA: Final = "EDA.csv"
E4_UNIT: Final = "uS"
_SUBJECT_NAME: Final = re.compile(r"^(?:s|sub|subject|p|participant)?[-_]?(\d+)", re.IGNORECASE)
_MAX_JITTER: Final = 0.5  # fraction of a sample period a timestamp may deviate


@dataclass
class Segment:
    """A labelled span of a recording: one trial."""

    start: int  # sample index
    end: int  # exclusive
    ratings: npt.NDArray[np.float64]  # (2,) arousal, valence (NaN for binary labels)
    labels: npt.NDArray[np.int64]  # (2,)


@dataclass
class Recording:
    """GSR samples with their labelled segments."""

    path: Path
    gsr: npt.NDArray[np.float64]
    rate_hz: float
    unit: str
    start_unix: float | None
    segments: list[Segment]


def _number(cell: str, path: Path, line: int, column: str) -> float:
    text = cell.strip()
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{path}:{line}: {column} value {text!r} is not a number", path=str(path)) from None


def _read_table(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Header and rows of a CSV, skipping ``#`` comments and blank lines (rows keep line numbers)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = [(i + 1, line) for i, line in enumerate(f) if line.strip() and not line.lstrip().startswith("#")]
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found", path=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})", path=str(path)) from exc
    if not lines:
        raise DataError(f"{path}: empty file", path=str(path))
    rows = list(csv.reader(line for _, line in lines))
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    numbers = [n for n, _ in lines[1:]]
    for n, row in zip(numbers, body, strict=True):
        if len(row) != len(header):
            raise DataError(f"{path}:{n}: {len(row)} fields, the header has {len(header)}; truncated line?", path=str(path))
    return header, body, numbers


def _label_columns(header: list[str]) -> tuple[str, list[str]] | None:
    lower = [h.lower() for h in header]
    if "arousal_rating" in lower and "valence_rating" in lower:
        return "rating", [header[lower.index("arousal_rating")], header[lower.index("valence_rating")]]
    if "arousal" in lower and "valence" in lower:
        return "binary", [header[lower.index("arousal")], header[lower.index("valence")]]
    return None


def _labels(values: npt.NDArray[np.float64], kind: str, config: DatasetConfig, source: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    if not np.isfinite(values).all():
        raise DataError(f"{source}: non-finite label {values.tolist()}", path=source.split(":")[0])
    if kind == "rating":
        return values.astype(np.float64), ratings_to_labels(values, config, source=source)
    if not np.isin(values, (0.0, 1.0)).all():
        raise DataError(f"{source}: binary labels must be 0 or 1, got {values.tolist()} "
                        "(use arousal_rating/valence_rating columns for 1–9 ratings)", path=source.split(":")[0])
    return np.full(2, np.nan), values.astype(np.int64)


def read_segments(path: Path, rate_hz: float, start_unix: float | None, n_samples: int,
                  config: DatasetConfig) -> list[Segment]:
    """Parse a segment file (``start_s,end_s`` or ``start_unix,end_unix`` + label columns)."""
    header, rows, numbers = _read_table(path)
    lower = [h.lower() for h in header]
    label_kind = _label_columns(header)
    if label_kind is None:
        raise DataError(f"{path}: needs label columns arousal,valence (0/1) or arousal_rating,valence_rating (1–9); "
                        f"found {header}", path=str(path))
    if "start_s" in lower and "end_s" in lower:
        cols, offset = (lower.index("start_s"), lower.index("end_s")), 0.0
    elif "start_unix" in lower and "end_unix" in lower:
        if start_unix is None:
            raise DataError(f"{path}: start_unix/end_unix need a recording with a start time (E4); use start_s,end_s",
                            path=str(path))
        cols, offset = (lower.index("start_unix"), lower.index("end_unix")), start_unix
    else:
        raise DataError(f"{path}: needs columns start_s,end_s (or start_unix,end_unix); found {header}", path=str(path))
    kind, names = label_kind
    segments = []
    for n, row in zip(numbers, rows, strict=True):
        start_s = _number(row[cols[0]], path, n, header[cols[0]]) - offset
        end_s = _number(row[cols[1]], path, n, header[cols[1]]) - offset
        if not (math.isfinite(start_s) and math.isfinite(end_s) and 0 <= start_s < end_s):
            raise DataError(f"{path}:{n}: segment {start_s:g}..{end_s:g} s is not a valid span within the recording",
                            path=str(path))
        values = np.array([_number(row[header.index(c)], path, n, c) for c in names])
        ratings, labels = _labels(values, kind, config, f"{path}:{n}")
        start, end = int(round(start_s * rate_hz)), min(int(round(end_s * rate_hz)), n_samples)
        if start < end:
            segments.append(Segment(start, end, ratings, labels))
    return segments


def read_csv_recording(path: Path, config: DatasetConfig, gsr_unit: str | None = None) -> Recording:
    """Read one labelled CSV recording (see the module docstring)."""
    header, rows, numbers = _read_table(path)
    lower = [h.lower() for h in header]
    if "time_s" not in lower:
        raise DataError(f"{path}: no time_s column (seconds); found {header}", path=str(path))
    gsr_cols = [h for h in header if h.lower() == "gsr" or h.lower().startswith("gsr_")]
    if len(gsr_cols) != 1:
        raise DataError(f"{path}: need exactly one GSR column (gsr_<unit> or gsr); found {gsr_cols or header}", path=str(path))
    gsr_col = gsr_cols[0]
    raw_unit = gsr_col[4:] if "_" in gsr_col else gsr_unit
    if not raw_unit:
        raise UnitError(f"{path}: column 'gsr' has no unit; name it gsr_uS, gsr_Ohm … or pass gsr_unit")
    try:
        unit = normalise_unit(raw_unit)
    except UnitError as exc:
        raise UnitError(f"{path}: GSR column {gsr_col!r}: {exc}") from exc
    ti, gi = lower.index("time_s"), header.index(gsr_col)
    time_s = np.array([_number(r[ti], path, n, "time_s") for n, r in zip(numbers, rows, strict=True)])
    gsr = np.array([_number(r[gi], path, n, gsr_col) for n, r in zip(numbers, rows, strict=True)])
    if time_s.size < 2 or not np.isfinite(time_s).all():
        raise DataError(f"{path}: time_s must be present on every row (and at least two rows)", path=str(path))
    step = np.diff(time_s)
    period = float(np.median(step))
    if not period > 0:
        raise DataError(f"{path}: time_s does not increase", path=str(path))
    bad = np.flatnonzero(np.abs(step - period) > _MAX_JITTER * period)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{path}:{numbers[i + 1]}: irregular sampling ({step[i]:.4g} s after t = {time_s[i]:.4g} s, "
                        f"period {period:.4g} s); keep missing samples as rows with an empty GSR cell", path=str(path))
    rate_hz = 1.0 / period
    label_kind = _label_columns(header)
    if label_kind is None:
        labels_file = path.with_name(path.stem + ".labels.csv")
        if not labels_file.is_file():
            raise DataError(f"{path}: no label columns (arousal,valence or *_rating) and no {labels_file.name} beside it",
                            path=str(path))
        segments = read_segments(labels_file, rate_hz, None, gsr.size, config)
    else:
        segments = _segments_from_columns(path, header, rows, numbers, label_kind, config)
    return Recording(path, gsr, rate_hz, unit, None, segments)


def _segments_from_columns(path: Path, header: list[str], rows: list[list[str]], numbers: list[int],
                           label_kind: tuple[str, list[str]], config: DatasetConfig) -> list[Segment]:
    kind, names = label_kind
    idx = [header.index(c) for c in names]
    values = np.array([[_number(r[i], path, n, header[i]) for i in idx] for n, r in zip(numbers, rows, strict=True)])
    present = np.array([[bool(r[i].strip()) for i in idx] for r in rows])
    labelled = present.all(axis=1)
    segments: list[Segment] = []
    start = None
    for k in range(len(rows) + 1):
        same = (k < len(rows) and labelled[k] and start is not None
                and np.array_equal(values[k], values[start]))
        if start is not None and not same:
            ratings, labels = _labels(values[start], kind, config, f"{path}:{numbers[start]}")
            segments.append(Segment(start, k, ratings, labels))
            start = None
        if k < len(rows) and labelled[k] and start is None:
            start = k
    return segments


def read_e4_recording(folder: Path, config: DatasetConfig) -> Recording:
    """Read an Empatica E4 export folder (``EDA.csv`` + ``labels.csv``)."""
    eda = folder / E4_EDA
    try:
        lines = eda.read_text(encoding="utf-8").split()
    except FileNotFoundError as exc:
        raise DataError(f"{eda}: file not found", path=str(eda)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{eda}: cannot read ({exc})", path=str(eda)) from exc
    if len(lines) < 3:
        raise DataError(f"{eda}: needs a start time line, a rate line and samples; truncated?", path=str(eda))
    try:
        start_unix = float(lines[0].split(",")[0])
        rate_hz = float(lines[1].split(",")[0])
        values = np.array([float(v.split(",")[0]) for v in lines[2:]])
    except ValueError as exc:
        raise DataError(f"{eda}: not an E4 EDA export (line 1 unix start time, line 2 rate, then µS): {exc}",
                        path=str(eda)) from exc
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise DataError(f"{eda}: rate {rate_hz!r} Hz on line 2 is not a positive number", path=str(eda))
    labels_file = folder / "labels.csv"
    if not labels_file.is_file():
        raise DataError(f"{folder}: no labels.csv beside {E4_EDA}", path=str(labels_file))
    segments = read_segments(labels_file, rate_hz, start_unix, values.size, config)
    return Recording(eda, values, rate_hz, E4_UNIT, start_unix, segments)


def find_recordings(root: Path) -> list[Path]:
    """CSV recordings and E4 folders under ``root`` (segment files excluded)."""
    if not root.exists():
        raise DataError(f"{root}: recordings folder not found", path=str(root))
    if root.is_file():
        return [root]
    found = sorted({p.parent for p in root.rglob(E4_EDA)} |
                   {p for p in root.rglob("*.csv") if not p.name.endswith(".labels.csv")
                    and p.name not in (E4_EDA, "labels.csv") and (p.parent / E4_EDA) != p})
    # files inside an E4 folder (ACC.csv, TEMP.csv …) belong to it, not separate recordings
    e4 = {p for p in found if p.is_dir()}
    found = [p for p in found if p.is_dir() or p.parent not in e4]
    if not found:
        raise DataError(f"{root}: no labelled CSV recordings or E4 folders (EDA.csv)", path=str(root))
    return found


def subject_ids(paths: list[Path]) -> dict[Path, int]:
    """A subject id per recording from a leading number in its name; the rest numbered after."""
    ids: dict[Path, int] = {}
    for p in paths:
        match = _SUBJECT_NAME.match(p.stem if p.is_file() else p.name)
        if match:
            ids[p] = int(match.group(1))
    next_id = max(ids.values(), default=0) + 1
    for p in paths:
        if p not in ids:
            ids[p] = next_id
            next_id += 1
    return ids


def prepare_recordings_subject(subject: int, paths: list[Path], config: DatasetConfig,
                               gsr_unit: str | None) -> SubjectWindows:
    """Window the labelled segments of one subject's recordings (trials numbered 1…)."""
    out = SubjectWindows(subject, info={"recordings": [str(p) for p in paths]})
    trial = 0
    for path in paths:
        rec = read_e4_recording(path, config) if path.is_dir() else read_csv_recording(path, config, gsr_unit)
        for seg in rec.segments:
            trial += 1
            windows = window_trial(rec.gsr[seg.start:seg.end], rec.rate_hz, rec.unit, None, config)
            out.add(trial, seg.ratings, seg.labels, windows)
    return out


def _plan(root: Path, config: DatasetConfig, options: dict[str, Any]) -> Any:
    from emotionkd.training.datasets.loading import Plan

    paths = find_recordings(root)
    ids = subject_ids(paths)
    by_subject: dict[int, list[Path]] = {}
    for p in paths:
        if config.subjects is None or ids[p] in config.subjects:
            by_subject.setdefault(ids[p], []).append(p)
    if not by_subject:
        raise DataError(f"{root}: none of the recordings belongs to subjects {config.subjects}", path=str(root))
    inputs: list[Path] = []
    for p in paths:
        if p.is_dir():
            inputs += [f for f in (p / E4_EDA, p / "labels.csv") if f.is_file()]
        else:
            inputs.append(p)
            if p.with_name(p.stem + ".labels.csv").is_file():
                inputs.append(p.with_name(p.stem + ".labels.csv"))
    gsr_unit = options.get("gsr_unit")
    jobs = [(prepare_recordings_subject, (s, ps, config, gsr_unit)) for s, ps in sorted(by_subject.items())]
    meta = {"dataset": "recordings", "subjects_from": {str(p): ids[p] for p in paths},
            "trial_ids": "labelled segment number within the subject's recordings"}
    return Plan(inputs, jobs, meta, False)


def _register() -> None:
    from emotionkd.training.datasets.loading import register_kind

    register_kind("recordings", _plan)


_register()

__all__ = ["Recording", "Segment", "find_recordings", "prepare_recordings_subject", "read_csv_recording",
           "read_e4_recording", "read_segments", "subject_ids"]
