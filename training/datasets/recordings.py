"""Labelled GSR recordings without EEG (for fine-tuning a student on one's own sensor).

Recordings, found anywhere under ``root`` (one recording per CSV file or E4 folder):

**CSV** (``*.csv``; lines starting with ``#`` are comments)::

    time_s,gsr_uS,arousal,valence
    0.000,2.31,1,0
    0.031,2.32,1,0

* ``time_s``: seconds, uniformly sampled (any rate; an empty GSR cell is a missing sample).
* GSR: a column ``gsr_<unit>`` (``gsr_uS``, ``gsr_nS``, ``gsr_Ohm``, ``gsr_kOhm`` …), ``gsr``
  with the unit given as the ``gsr_unit`` option, or ``conductance_us`` (the SDK's own
  ``emotionkd-sdk record`` files; their ``# start_time:`` line gives the unix start).
* Optional labels per sample (see *label columns*); an empty label cell means "not labelled";
  each run of constant labels is one trial.

**Empatica E4** export folder holding ``EDA.csv`` (line 1: start as unix time, line 2: rate in
Hz, usually 4, then one value in µS per line); ``ACC.csv``, ``TEMP.csv`` … beside it are ignored.

**Label files**: ``<name>.labels.csv`` beside a CSV, ``labels.csv`` inside an E4 folder, or one
``labels.csv`` at ``root`` for every recording (then with a ``participant`` or ``subject``
column holding the subject ids). Rows are either

* spans: ``start_s,end_s`` (seconds from the recording start) or ``start_unix,end_unix``, or
* one row per second: ``time_s`` or ``unix_time_s`` (the row labels ``[t, t + 1)``; runs of
  consecutive seconds with the same labels become one trial — the Stress-Predict layout
  ``participant,unix_time_s,label``),

plus *label columns*: binary ``arousal`` and/or ``valence`` (0 = low, 1 = high), ratings
``arousal_rating`` and/or ``valence_rating`` (1–9, thresholded by the label rule), or one binary
``label`` column that labels the target named by the ``label_target`` option (default arousal).
A target without a column is absent (label -1 in the prepared windows, never a made-up 0).
Where the labels come from (``label_source`` option, e.g. "binary stress label: stress task =
high arousal") travels into ``meta['label_provenance']`` and from there into the model contract.

A recording without any labels is skipped (listed in ``meta['skipped']``), as is any file that
resolves outside ``root`` (a symlink pointing elsewhere is never followed).

Subject ids: a leading number in the file or folder name (``s03_morning.csv``, ``P7/``,
``12-e4``); recordings without one are numbered after the highest id found.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError, DataError, UnitError
from emotionkd.firmware_bridge.units import normalise_unit, to_conductance_us
from emotionkd.training.datasets.config import DatasetConfig, ratings_to_labels
from emotionkd.training.datasets.trials import SubjectWindows, TrialWindows, window_trial
from emotionkd.training.windowed import TARGETS

E4_EDA: Final = "EDA.csv"
E4_UNIT: Final = "uS"
LABELS_FILE: Final = "labels.csv"
SDK_GSR_COLUMN: Final = "conductance_us"  # the SDK's recording format (sdk/recording.py)
SUBJECT_COLUMNS: Final = ("participant", "subject")
#: subject ids are kept in int64 arrays: more digits than this is a naming accident, not an id
MAX_SUBJECT_DIGITS: Final = 9
#: far above any skin (wrist EDA stays below ~100 µS): beyond it a sample is missing, so an
#: absurd value cannot overflow the preprocessing into NaN windows counted as usable
MAX_CONDUCTANCE_US: Final = 1e4
#: a larger recording or label file is refused before it is read (memory stays bounded)
MAX_FILE_BYTES: Final = 1 << 30
_SUBJECT_NAME: Final = re.compile(r"^(?:s|sub|subject|p|participant)?[-_]?(\d+)", re.IGNORECASE)
_MAX_JITTER: Final = 0.5  # fraction of a sample period a timestamp may deviate
_ABSENT: Final = -1  # label of a target the data does not label


@dataclass
class Segment:
    """A labelled span of a recording: one trial."""

    start: int  # sample index
    end: int  # exclusive
    ratings: npt.NDArray[np.float64]  # (2,) arousal, valence (NaN for binary or absent labels)
    labels: npt.NDArray[np.int64]  # (2,) 0/1, -1 where the target is not labelled


@dataclass
class Recording:
    """GSR samples in µS (NaN = missing) with their labelled segments."""

    path: Path
    gsr: npt.NDArray[np.float64]
    rate_hz: float
    unit: str
    start_unix: float | None
    segments: list[Segment]


@dataclass(frozen=True)
class LabelColumns:
    """Which columns of a table label which target: ``kind`` is ``binary`` or ``rating``."""

    kind: str
    columns: dict[str, str]  # target -> column name

    def describe(self, source: str) -> dict[str, str]:
        """Default provenance text per labelled target."""
        out = {}
        for target, column in self.columns.items():
            if self.kind == "rating":
                out[target] = f"{target} self-report rating 1-9 (column {column!r} of {source}), thresholded"
            elif column.lower() == "label":
                out[target] = f"binary column 'label' of {source} used as {target} (1 = high {target})"
            else:
                out[target] = f"binary {target} column {column!r} of {source} (1 = high {target})"
        return out


@dataclass
class Span:
    """A labelled time span in seconds (relative to the recording start, or unix time)."""

    start: float
    end: float
    ratings: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]
    line: int


@dataclass
class LabelTable:
    """A parsed label file: spans per subject (key None when the file has no subject column)."""

    path: Path
    unix: bool
    columns: LabelColumns
    spans: dict[int | None, list[Span]] = field(default_factory=dict)


# --- reading ---------------------------------------------------------------------------------
def _number(cell: str, path: Path, line: int, column: str) -> float:
    text = cell.strip()
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{path}:{line}: {column} value {text[:40]!r} is not a number", path=str(path)) from None


def _check_size(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})", path=str(path)) from exc
    if size > MAX_FILE_BYTES:
        raise DataError(f"{path}: {size / 2**30:.1f} GiB is more than the {MAX_FILE_BYTES / 2**30:.0f} GiB a "
                        "recording or label file may have; split it", path=str(path))


def _read_table(path: Path) -> tuple[list[str], list[list[str]], list[int], dict[str, str]]:
    """Header, rows (with their line numbers) and ``# key: value`` comments of a CSV."""
    _check_size(path)
    comments: dict[str, str] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = []
            for i, line in enumerate(f):
                stripped = line.strip()
                if stripped.startswith("#"):
                    key, sep, value = stripped[1:].partition(":")
                    if sep:
                        comments[key.strip().lower()] = value.strip()
                elif stripped:
                    lines.append((i + 1, line))
        rows = list(csv.reader(line for _, line in lines))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found", path=str(path)) from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read ({str(exc)[:200]})", path=str(path)) from exc
    if not lines:
        raise DataError(f"{path}: empty file", path=str(path))
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    numbers = [n for n, _ in lines[1:]]
    for n, row in zip(numbers, body, strict=True):
        if len(row) != len(header):
            raise DataError(f"{path}:{n}: {len(row)} fields, the header has {len(header)}; truncated line?", path=str(path))
    return header, body, numbers, comments


def _header(path: Path) -> list[str]:
    """The first non-comment line of a CSV, split (cheap: for planning)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for line in f:
                if line.strip() and not line.lstrip().startswith("#"):
                    return [h.strip() for h in next(csv.reader([line[:10_000]]))]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return []


def label_columns(header: list[str], label_target: str = "arousal") -> LabelColumns | None:
    """The label columns of a header (see the module docstring), or None when it has none."""
    lower = {h.lower(): h for h in header}
    ratings = {t: lower[f"{t}_rating"] for t in TARGETS if f"{t}_rating" in lower}
    binary = {t: lower[t] for t in TARGETS if t in lower}
    if ratings and binary:
        raise DataError(f"labels mix binary columns {sorted(binary.values())} and ratings "
                        f"{sorted(ratings.values())}; use one kind")
    if ratings:
        return LabelColumns("rating", ratings)
    if "label" in lower and label_target not in binary:
        binary[label_target] = lower["label"]
    return LabelColumns("binary", binary) if binary else None


def _labels(values: dict[str, float], kind: str, config: DatasetConfig, path: Path, line: int,
            ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """(ratings (2,), labels (2,)) of one row; absent targets are NaN / -1."""
    ratings = np.full(2, np.nan)
    labels = np.full(2, _ABSENT, np.int64)
    source = f"{path}:{line}"
    for target, value in values.items():
        i = TARGETS.index(target)
        if not math.isfinite(value):
            raise DataError(f"{source}: non-finite label {value!r} ({target})", path=str(path))
        if kind == "rating":
            ratings[i] = value
            labels[i] = int(ratings_to_labels(np.array([value]), config, source=source)[0])
        elif value in (0.0, 1.0):
            labels[i] = int(value)
        else:
            raise DataError(f"{source}: binary {target} labels must be 0 or 1, got {value:g} "
                            "(use arousal_rating/valence_rating columns for 1–9 ratings)", path=str(path))
    return ratings, labels


def _subject_id(text: str, path: Path, line: int) -> int:
    """A subject id from a table cell (a non-negative integer of at most 9 digits)."""
    cell = text.strip()
    digits = cell[:-2] if cell.endswith(".0") else cell  # ids written by a spreadsheet as 3.0
    if not digits.isdigit() or len(digits.lstrip("0") or "0") > MAX_SUBJECT_DIGITS:
        raise DataError(f"{path}:{line}: subject {cell[:40]!r} is not a whole number of at most "
                        f"{MAX_SUBJECT_DIGITS} digits", path=str(path))
    return int(digits)


def read_label_table(path: Path, config: DatasetConfig, *, label_target: str = "arousal",
                     need_subject: bool = False) -> LabelTable:
    """Parse a label file of spans or per-second rows (see the module docstring).

    Raises:
        DataError: naming the file and line of the first malformed row.
    """
    header, rows, numbers, _ = _read_table(path)
    lower = [h.lower() for h in header]
    columns = label_columns(header, label_target)
    if columns is None:
        raise DataError(f"{path}: needs label columns arousal and/or valence (0/1), arousal_rating and/or "
                        f"valence_rating (1–9) or label (0/1, the {label_target} target); found {header}",
                        path=str(path))
    subject_col = next((lower.index(c) for c in SUBJECT_COLUMNS if c in lower), None)
    if need_subject and subject_col is None:
        raise DataError(f"{path}: a labels table at the dataset root needs a participant (or subject) column; "
                        f"found {header}", path=str(path))
    layouts = {("start_s", "end_s"): False, ("start_unix", "end_unix"): True,
               ("time_s",): False, ("unix_time_s",): True}
    found = next((cols for cols in layouts if all(c in lower for c in cols)), None)
    if found is None:
        raise DataError(f"{path}: needs time columns start_s,end_s or start_unix,end_unix (spans), or time_s or "
                        f"unix_time_s (one row per second); found {header}", path=str(path))
    table = LabelTable(path, layouts[found], columns)
    time_idx = [lower.index(c) for c in found]
    label_idx = {t: header.index(c) for t, c in columns.columns.items()}
    rows_by_subject: dict[int | None, list[Span]] = {}
    for n, row in zip(numbers, rows, strict=True):
        subject = _subject_id(row[subject_col], path, n) if subject_col is not None else None
        start = _number(row[time_idx[0]], path, n, header[time_idx[0]])
        end = _number(row[time_idx[1]], path, n, header[time_idx[1]]) if len(time_idx) == 2 else start + 1.0
        if not (math.isfinite(start) and math.isfinite(end) and start < end):
            raise DataError(f"{path}:{n}: time {row[time_idx[0]].strip()[:40]!r} does not give a finite span "
                            "(start < end)", path=str(path))
        values = {t: _number(row[i], path, n, header[i]) for t, i in label_idx.items() if row[i].strip()}
        if not values:
            continue  # an unlabelled row
        ratings, labels = _labels(values, columns.kind, config, path, n)
        rows_by_subject.setdefault(subject, []).append(Span(start, end, ratings, labels, n))
    for subject, spans in rows_by_subject.items():
        spans.sort(key=lambda s: s.start)
        merged: list[Span] = []
        for span in spans:
            last = merged[-1] if merged else None
            if last is not None and span.start < last.end - 1e-9:
                raise DataError(f"{path}:{span.line}: span starting at {span.start:g} s overlaps the one of line "
                                f"{last.line}", path=str(path))
            if (last is not None and len(time_idx) == 1 and abs(span.start - last.end) < 1e-6
                    and np.array_equal(span.labels, last.labels) and np.array_equal(span.ratings, last.ratings, equal_nan=True)):
                last.end = span.end  # consecutive seconds with the same labels: one trial
            else:
                merged.append(span)
        table.spans[subject] = merged
    return table


def _segments(spans: list[Span], table: LabelTable, rate_hz: float, start_unix: float | None,
              n_samples: int) -> list[Segment]:
    """Sample ranges of ``spans`` within a recording of ``n_samples`` (parts outside are cut)."""
    if table.unix and start_unix is None:
        raise DataError(f"{table.path}: unix times need a recording with a start time (an E4 folder, or an "
                        "SDK recording with '# start_time:'); use start_s,end_s or time_s", path=str(table.path))
    offset = start_unix if table.unix and start_unix is not None else 0.0
    duration_s = n_samples / rate_hz
    out = []
    for span in spans:
        # clip in seconds first: an absurd end (1e308) must not overflow the sample index
        start_s = min(max(span.start - offset, 0.0), duration_s)
        end_s = min(max(span.end - offset, 0.0), duration_s)
        start, end = int(round(start_s * rate_hz)), int(round(end_s * rate_hz))
        if start < end:
            out.append(Segment(start, end, span.ratings, span.labels))
    return out


def _bounded_us(values: npt.ArrayLike, unit: str) -> npt.NDArray[np.float64]:
    """µS with non-finite, negative or beyond-any-skin values as missing (NaN)."""
    us = to_conductance_us(values, unit)
    us[~((us >= 0.0) & (us <= MAX_CONDUCTANCE_US))] = np.nan
    return us


def _start_time(comments: dict[str, str], path: Path) -> float | None:
    text = comments.get("start_time")
    if not text:
        return None
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise DataError(f"{path}: '# start_time: {text[:40]}' is not an ISO time", path=str(path)) from exc
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()


def read_csv_recording(path: Path, config: DatasetConfig, gsr_unit: str | None = None,
                       labels: tuple[LabelTable, list[Span]] | None = None, label_target: str = "arousal",
                       ) -> Recording:
    """Read one CSV recording (see the module docstring) with its labels: its own label columns,
    else ``labels`` (a table and this recording's spans), else ``<name>.labels.csv`` beside it."""
    header, rows, numbers, comments = _read_table(path)
    lower = [h.lower() for h in header]
    if "time_s" not in lower:
        raise DataError(f"{path}: no time_s column (seconds); found {header}", path=str(path))
    gsr_cols = [h for h in header if h.lower() in ("gsr", SDK_GSR_COLUMN) or h.lower().startswith("gsr_")]
    if len(gsr_cols) != 1:
        raise DataError(f"{path}: need exactly one GSR column (gsr_<unit>, gsr or conductance_us); "
                        f"found {gsr_cols or header}", path=str(path))
    gsr_col = gsr_cols[0]
    raw_unit = "uS" if gsr_col.lower() == SDK_GSR_COLUMN else (gsr_col[4:] if "_" in gsr_col else gsr_unit)
    if not raw_unit:
        raise UnitError(f"{path}: column 'gsr' has no unit; name it gsr_uS, gsr_Ohm … or pass gsr_unit")
    try:
        unit = normalise_unit(raw_unit)
    except UnitError as exc:
        raise UnitError(f"{path}: GSR column {gsr_col!r}: {exc}") from exc
    ti, gi = lower.index("time_s"), header.index(gsr_col)
    time_s = np.array([_number(r[ti], path, n, "time_s") for n, r in zip(numbers, rows, strict=True)])
    gsr = _bounded_us([_number(r[gi], path, n, gsr_col) for n, r in zip(numbers, rows, strict=True)], unit)
    if time_s.size < 2 or not np.isfinite(time_s).all():
        raise DataError(f"{path}: time_s must be present and finite on every row (and at least two rows)",
                        path=str(path))
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
    start_unix = _start_time(comments, path)
    own = label_columns(header, label_target)
    if own is not None:
        segments = _segments_from_columns(path, header, rows, numbers, own, config)
    else:
        if labels is None:
            beside = path.with_name(path.stem + ".labels.csv")
            if not beside.is_file():
                raise DataError(f"{path}: no label columns and no {beside.name} beside it", path=str(path))
            table = read_label_table(beside, config, label_target=label_target)
            labels = (table, table.spans.get(None, []))
        segments = _segments(labels[1], labels[0], rate_hz, start_unix, gsr.size)
    return Recording(path, gsr, rate_hz, "uS", start_unix, segments)


def _segments_from_columns(path: Path, header: list[str], rows: list[list[str]], numbers: list[int],
                           columns: LabelColumns, config: DatasetConfig) -> list[Segment]:
    idx = {t: header.index(c) for t, c in columns.columns.items()}
    segments: list[Segment] = []
    start: int | None = None
    current: tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]] | None = None
    for k in range(len(rows) + 1):
        values = ({t: _number(rows[k][i], path, numbers[k], header[i]) for t, i in idx.items() if rows[k][i].strip()}
                  if k < len(rows) else {})
        row_labels = _labels(values, columns.kind, config, path, numbers[k]) if values else None
        same = (row_labels is not None and current is not None and np.array_equal(row_labels[1], current[1])
                and np.array_equal(row_labels[0], current[0], equal_nan=True))
        if start is not None and current is not None and not same:
            segments.append(Segment(start, k, current[0], current[1]))
            start = current = None
        if row_labels is not None and start is None:
            start, current = k, row_labels
    return segments


def read_e4_eda(folder: Path) -> tuple[npt.NDArray[np.float64], float, float]:
    """(µS samples with implausible values as NaN, rate in Hz, unix start) of an E4 ``EDA.csv``."""
    eda = folder / E4_EDA
    _check_size(eda)
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
    if not (math.isfinite(rate_hz) and 0 < rate_hz <= 10_000):
        raise DataError(f"{eda}: rate {rate_hz!r} Hz on line 2 is not a plausible rate (0–10 kHz]", path=str(eda))
    if not math.isfinite(start_unix):
        raise DataError(f"{eda}: start time {lines[0][:40]!r} on line 1 is not a finite unix time", path=str(eda))
    return _bounded_us(values, E4_UNIT), rate_hz, start_unix


def read_e4_recording(folder: Path, config: DatasetConfig, labels: tuple[LabelTable, list[Span]] | None = None,
                      label_target: str = "arousal") -> Recording:
    """Read an Empatica E4 export folder (``EDA.csv``) with ``labels`` (a table and this
    recording's spans) or, when None, its own ``labels.csv``."""
    values, rate_hz, start_unix = read_e4_eda(folder)
    if labels is None:
        own = folder / LABELS_FILE
        if not own.is_file():
            raise DataError(f"{folder}: no {LABELS_FILE} beside {E4_EDA} and no labels table at the root",
                            path=str(own))
        table = read_label_table(own, config, label_target=label_target)
        labels = (table, table.spans.get(None, []))
    segments = _segments(labels[1], labels[0], rate_hz, start_unix, values.size)
    return Recording(folder / E4_EDA, values, rate_hz, E4_UNIT, start_unix, segments)


# --- finding ---------------------------------------------------------------------------------
def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def find_recordings(root: Path, skipped: list[dict[str, str]] | None = None) -> list[Path]:
    """CSV recordings and E4 folders under ``root`` (label files excluded; anything resolving
    outside ``root`` is left out and listed in ``skipped``)."""
    if not root.exists():
        raise DataError(f"{root}: recordings folder not found", path=str(root))
    if root.is_file():
        return [root]
    real_root = root.resolve()
    candidates = sorted({p.parent for p in root.rglob(E4_EDA)} |
                        {p for p in root.rglob("*.csv") if not p.name.endswith(".labels.csv")
                         and p.name not in (E4_EDA, LABELS_FILE)})
    # files inside an E4 folder (ACC.csv, TEMP.csv …) belong to it, not separate recordings
    e4 = {p for p in candidates if p.is_dir()}
    found = []
    for p in candidates:
        if not p.is_dir() and p.parent in e4:
            continue
        reads = [p / E4_EDA] if p.is_dir() else [p]
        if not all(_inside(f, real_root) for f in [p, *reads]):
            if skipped is not None:
                skipped.append({"path": str(p), "reason": f"resolves outside {root} (symlink); not read"})
            continue
        found.append(p)
    if not found:
        raise DataError(f"{root}: no CSV recordings or E4 folders (EDA.csv) inside it", path=str(root))
    return found


def subject_ids(paths: list[Path]) -> dict[Path, int]:
    """A subject id per recording from a leading number in its name; the rest numbered after.

    Raises:
        DataError: the leading number has more than :data:`MAX_SUBJECT_DIGITS` digits.
    """
    ids: dict[Path, int] = {}
    for p in paths:
        match = _SUBJECT_NAME.match(p.stem if p.is_file() else p.name)
        if match:
            digits = match.group(1).lstrip("0") or "0"
            if len(digits) > MAX_SUBJECT_DIGITS:
                raise DataError(f"{p}: subject number {match.group(1)[:20]}… in the name has more than "
                                f"{MAX_SUBJECT_DIGITS} digits; rename it (e.g. S01)", path=str(p))
            ids[p] = int(digits)
    next_id = max(ids.values(), default=0) + 1
    for p in paths:
        if p not in ids:
            ids[p] = next_id
            next_id += 1
    return ids


def _trial_windows(rec: Recording, seg: Segment, config: DatasetConfig) -> TrialWindows:
    """The usable windows of one segment; windows with any non-finite value are dropped (counted)."""
    tw = window_trial(rec.gsr[seg.start:seg.end], rec.rate_hz, rec.unit, None, config)
    finite = np.isfinite(tw.gsr).all(axis=1)
    if finite.all():
        return tw
    return TrialWindows(tw.gsr[finite], None, tw.start_s[finite], tw.dropped + int((~finite).sum()))


def read_subject_recordings(subject: int, paths: list[Path], config: DatasetConfig, gsr_unit: str | None,
                            table: LabelTable | None = None, label_target: str = "arousal",
                            own: list[bool] | None = None) -> list[Recording]:
    """One subject's recordings with their labelled segments.

    ``table``: a labels table at the dataset root whose rows for ``subject`` label the
    recordings whose ``own`` flag is False (default: all when a table is given); the others
    carry their own labels (columns or label file). Spans outside a recording are cut off.
    """
    flags = own if own is not None else [table is None] * len(paths)
    out = []
    for path, has_own in zip(paths, flags, strict=True):
        labels = (table, table.spans.get(subject, [])) if table is not None and not has_own else None
        out.append(read_e4_recording(path, config, labels, label_target) if path.is_dir()
                   else read_csv_recording(path, config, gsr_unit, labels, label_target))
    return out


def prepare_recordings_subject(subject: int, paths: list[Path], config: DatasetConfig, gsr_unit: str | None,
                               table: LabelTable | None = None, label_target: str = "arousal",
                               own: list[bool] | None = None) -> SubjectWindows:
    """Window the labelled segments of one subject's recordings (trials numbered 1…); the
    arguments are those of :func:`read_subject_recordings`."""
    out = SubjectWindows(subject, info={"recordings": [str(p) for p in paths]})
    trial = 0
    for rec in read_subject_recordings(subject, paths, config, gsr_unit, table, label_target, own):
        for seg in rec.segments:
            trial += 1
            out.add(trial, seg.ratings, seg.labels, _trial_windows(rec, seg, config))
    return out


def read_labelled_recordings(root: Path, config: DatasetConfig | None = None,
                             **options: Any) -> tuple[dict[int, list[Recording]], dict[str, Any]]:
    """Every labelled recording under ``root`` by subject, unwindowed (for evaluations that
    stream whole recordings), and the dataset's meta (label provenance, licence, skipped).

    ``options`` as for ``load_dataset("recordings", …)``: ``gsr_unit``, ``label_target``,
    ``label_source``.
    """
    config = config or DatasetConfig()
    plan = _plan(Path(root), config, options)
    by_subject = {args[0]: read_subject_recordings(*args) for _, args in plan.jobs}
    return by_subject, dict(plan.meta)


def _own_labels(path: Path, label_target: str) -> tuple[Path | None, LabelColumns | None]:
    """The label file of a recording (None: columns in the CSV itself) and its label columns."""
    if path.is_dir():
        own = path / LABELS_FILE
        return (own, label_columns(_header(own), label_target)) if own.is_file() else (None, None)
    columns = label_columns(_header(path), label_target)
    if columns is not None:
        return None, columns
    beside = path.with_name(path.stem + ".labels.csv")
    return (beside, label_columns(_header(beside), label_target)) if beside.is_file() else (None, None)


def _provenance(described: Iterable[dict[str, str]], label_source: str | None) -> dict[str, str | None]:
    """Per target: where its labels come from (``label_source`` replaces the derived text)."""
    texts: dict[str, list[str]] = {t: [] for t in TARGETS}
    for item in described:
        for target, text in item.items():
            if text not in texts[target]:
                texts[target].append(text)
    return {t: (label_source or "; ".join(v[:3]) + (" …" if len(v) > 3 else "")) if v else None
            for t, v in texts.items()}


def _plan(root: Path, config: DatasetConfig, options: dict[str, Any]) -> Any:
    from emotionkd.training.datasets.loading import Plan

    label_target = str(options.get("label_target", "arousal"))
    if label_target not in TARGETS:
        raise ConfigError(f"label_target must be one of {TARGETS}, got {label_target!r}")
    label_source = options.get("label_source")
    skipped: list[dict[str, str]] = []
    paths = find_recordings(root, skipped)
    table = None
    root_labels = root / LABELS_FILE if root.is_dir() else None
    if root_labels is not None and root_labels.is_file():
        if _inside(root_labels, root.resolve()):
            table = read_label_table(root_labels, config, label_target=label_target, need_subject=True)
        else:
            skipped.append({"path": str(root_labels), "reason": f"resolves outside {root} (symlink); not read"})
    ids = subject_ids(paths)
    by_subject: dict[int, list[Path]] = {}
    own_labels: dict[Path, bool] = {}
    inputs: list[Path] = [] if table is None else [table.path]
    described: list[dict[str, str]] = []
    for p in paths:
        if config.subjects is not None and ids[p] not in config.subjects:
            continue
        label_file, columns = _own_labels(p, label_target)
        if label_file is not None and not _inside(label_file, root.resolve()):
            skipped.append({"path": str(label_file), "reason": f"resolves outside {root} (symlink); not read"})
            label_file, columns = None, None
        if columns is not None:
            described.append(columns.describe((label_file or p).name))
        elif table is not None and ids[p] in table.spans:
            described.append(table.columns.describe(f"{root.name}/{LABELS_FILE}"))
        else:
            skipped.append({"path": str(p), "reason": "no labels (no label columns or label file, and no rows "
                                                      f"for subject {ids[p]} in a root {LABELS_FILE})"})
            continue
        by_subject.setdefault(ids[p], []).append(p)
        own_labels[p] = columns is not None
        inputs += [p / E4_EDA] if p.is_dir() else [p]
        if label_file is not None:
            inputs.append(label_file)
    if config.subjects is not None:
        missing = sorted(set(config.subjects) - set(ids.values()))
        if missing:
            raise DataError(f"{root}: subjects {missing} not found (found {sorted(set(ids.values()))})", path=str(root))
    if not by_subject:
        reasons = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped[:3])
        raise DataError(f"{root}: no labelled recordings ({reasons})", path=str(root))
    gsr_unit = options.get("gsr_unit")
    jobs = [(prepare_recordings_subject, (s, ps, config, gsr_unit, table, label_target, [own_labels[p] for p in ps]))
            for s, ps in sorted(by_subject.items())]
    provenance = _provenance(described, label_source)
    meta = {"dataset": "recordings", "dataset_name": root.resolve().name, "licence": licence_of(root),
            "subjects_from": {str(p): ids[p] for p in paths},
            "trial_ids": "labelled segment number within the subject's recordings",
            "label_provenance": provenance, "skipped": skipped,
            "labels_table": None if table is None else str(table.path)}
    return Plan(inputs, jobs, meta, False)


LICENCE_FILES: Final = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "LICENCE.txt", "COPYING")


def licence_of(root: Path) -> str:
    """The licence and attribution of a dataset folder in one line, from a ``LICENSE`` file at
    its root (its title and copyright lines), or "" when there is none."""
    folder = root if root.is_dir() else root.parent
    for name in LICENCE_FILES:
        path = folder / name
        if path.is_file() and _inside(path, folder.resolve()):
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read(4096)
            except OSError:
                return ""
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            title = lines[0] if lines else ""
            copyright_line = next((line for line in lines if line.lower().startswith("copyright")), "")
            return ", ".join(part for part in (title, copyright_line) if part)[:300]
    return ""


def labelled_targets(labels: npt.NDArray[np.int64]) -> list[str]:
    """The targets every window has a label for (``labels``: (N, 2), -1 = absent)."""
    return [t for i, t in enumerate(TARGETS) if labels.shape[0] and bool((labels[:, i] >= 0).all())]


def _register() -> None:
    from emotionkd.training.datasets.loading import register_kind

    register_kind("recordings", _plan)


_register()

__all__ = ["E4_EDA", "LABELS_FILE", "MAX_CONDUCTANCE_US", "MAX_SUBJECT_DIGITS", "LabelColumns", "LabelTable",
           "Recording", "Segment", "Span", "find_recordings", "label_columns", "labelled_targets",
           "prepare_recordings_subject", "read_csv_recording", "read_labelled_recordings", "read_subject_recordings", "read_e4_eda", "read_e4_recording",
           "read_label_table", "subject_ids"]
