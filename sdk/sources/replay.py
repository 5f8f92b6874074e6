"""``replay://path``: a file replayed as a live stream (like mne-lsl's player).

``replay://recording.csv?speed=1`` understands three kinds of file, told apart by their content:

* the SDK's own recordings (:mod:`emotionkd.sdk.recording`), flags included;
* an Empatica E4 ``EDA.csv`` export: line 1 the start time (Unix s), line 2 the rate (4 Hz),
  then one value in µS per line;
* a generic CSV ``time,value`` (a header line is optional; ``time`` in seconds): samples are
  placed on the grid of the median interval (or ``rate=``), so a gap stays a gap; with a single
  column, ``rate=`` is required. ``unit=`` declares the value unit (default ``uS``; ``nS``,
  ``kOhm`` … are converted, resistance inverted; ``adc`` is a Grove GSR ``analogRead`` value).
* a multi-column CSV with a header (e.g. NeuroKit's ``bio_eventrelated_100hz.csv``: ``ECG,EDA,…``
  and no time column): ``column=EDA`` (a header name or a 1-based number) picks the signal and
  ``rate=100`` gives its rate; without ``rate=`` the first column must be the time in seconds.

Parameters: ``speed`` (1 = real time, the default; 0 = as fast as possible), ``block`` (s per
block, default 0.25), ``rate``, ``unit``, ``column``.

Hostile files are refused with a :class:`DataError` naming the file and the line, never sized
from: rates outside :mod:`~emotionkd.firmware_bridge.bounds`, non-finite or decreasing times,
more than ``MAX_SIGNAL_SAMPLES`` samples, lines longer than the CSV field limit. A time jump
longer than :data:`REPLAY_MAX_GAP_S` becomes a bounded discontinuity (that much NaN + GAP, then
CLOCK_RESYNC, as the decoders do); readings no GSR front end can produce (±inf, beyond
``PLAUSIBLE_CONDUCTANCE_LIMIT_US``) become NaN + GAP, counted in ``implausible_samples``.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.ascii_lines import grove_adc_to_us
from emotionkd.firmware_bridge.bounds import MAX_SIGNAL_SAMPLES, implausible_values, rate_problem
from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.firmware_bridge.sample_axis import DEFAULT_MAX_GAP_S, max_gap_samples
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag
from emotionkd.firmware_bridge.source_spec import SourceSpec
from emotionkd.firmware_bridge.units import normalise_unit, to_conductance_us
from emotionkd.sdk.recording import is_recording, read_recording
from emotionkd.sdk.sources.base import Pacer, Source, SourceInfo, SourceUrl

#: a time jump in a CSV longer than this is a discontinuity (bounded NaN fill), as in decoders
REPLAY_MAX_GAP_S: Final = DEFAULT_MAX_GAP_S
_TIME_NAMES: Final = ("time", "time_s", "t", "timestamp", "seconds", "s")


@dataclass(frozen=True)
class LoadedSignal:
    """A file's samples on a uniform time axis.

    Attributes:
        conductance_us: (n,) µS, NaN where missing.
        flags: (n,) uint8 :class:`SampleFlag` bits.
        rate_hz: sampling rate.
        format: ``recording``, ``e4`` or ``csv``.
        device: what the file says the device was.
        implausible_samples: readings replaced by NaN because no sensor can produce them.
        discontinuities: time jumps longer than :data:`REPLAY_MAX_GAP_S`, shortened to it.
    """

    conductance_us: npt.NDArray[np.float64]
    flags: npt.NDArray[np.uint8]
    rate_hz: float
    format: str
    device: str
    implausible_samples: int = 0
    discontinuities: int = 0


def replay_unit(unit: str) -> str:
    """``adc`` (Grove GSR ``analogRead``) or the canonical spelling of a unit (UnitError if unknown)."""
    return "adc" if unit.strip().lower() == "adc" else normalise_unit(unit)


def load_signal(path: str | Path, *, unit: str = "uS", rate_hz: float | None = None,
                column: str | None = None) -> LoadedSignal:
    """Read a recording, an E4 ``EDA.csv`` or a generic CSV (see the module docstring).

    Raises:
        DataError: the file is missing, empty, implausible or cannot be understood.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"replay file {str(p)!r} does not exist", path=str(p))
    if rate_hz is not None:
        _check_rate(rate_hz, p, "rate=")
    if is_recording(p):
        rec = read_recording(p)
        return _checked(LoadedSignal(rec.conductance_us, rec.flags, rec.rate_hz, "recording",
                                     rec.metadata.get("device", p.name)))
    rows, lines = _read_rows(p)
    if len(rows) < 3:
        raise DataError(f"{str(p)!r} holds fewer than 3 lines: nothing to replay", path=str(p))
    if column is None and _looks_like_e4(rows):
        values = _numbers([r[0] for r in rows[2:]], p, lines[2:])
        rate = _check_rate(float(rows[1][0]), p, "line 2 (the E4 rate)")
        conductance = _conductance(values, unit)
        return _checked(LoadedSignal(conductance, _gap_flags(conductance), rate, "e4", f"Empatica E4 ({p.name})"))
    return _checked(_load_generic_csv(rows, lines, p, unit, rate_hz, column))


def _read_rows(p: Path) -> tuple[list[list[str]], list[int]]:
    """The non-blank rows and the file line each starts on (so errors name the true line)."""
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        with open(p, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            for row in reader:
                if row and any(c.strip() for c in row):
                    rows.append(row)
                    lines.append(reader.line_num)
                if len(rows) > MAX_SIGNAL_SAMPLES:
                    raise DataError(f"{str(p)!r} holds more than {MAX_SIGNAL_SAMPLES:,} rows; split it into "
                                    "shorter files", path=str(p))
    except csv.Error as exc:  # e.g. a line longer than the CSV field limit (128 kB)
        raise DataError(f"{str(p)!r} line {reader.line_num}: not a CSV row ({exc})", path=str(p)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {str(p)!r}: {exc}", path=str(p)) from exc
    return rows, lines


def _check_rate(rate_hz: float, path: Path, where: str) -> float:
    problem = rate_problem(rate_hz)
    if problem is not None:
        raise DataError(f"{str(path)!r}: {where}: {problem}; give the true rate with replay://…?rate=HZ",
                        path=str(path))
    return float(rate_hz)


def _conductance(values: npt.NDArray[np.float64], unit: str) -> npt.NDArray[np.float64]:
    if replay_unit(unit) == "adc":
        return grove_adc_to_us(values)
    return to_conductance_us(values, unit)


def _checked(signal: LoadedSignal) -> LoadedSignal:
    """Readings no GSR front end can produce become NaN + GAP (counted)."""
    bad = implausible_values(signal.conductance_us)
    count = int(np.count_nonzero(bad))
    if not count:
        return signal
    values = signal.conductance_us.copy()
    values[bad] = np.nan
    flags = signal.flags.copy()
    flags[bad] |= np.uint8(SampleFlag.GAP)
    return LoadedSignal(values, flags, signal.rate_hz, signal.format, signal.device,
                        signal.implausible_samples + count, signal.discontinuities)


def _looks_like_e4(rows: list[list[str]]) -> bool:
    try:
        start, rate = float(rows[0][0]), float(rows[1][0])
    except ValueError:
        return False
    # E4 exports: a Unix start time (after 2001), then a small rate; every row has one column.
    return len(rows[0]) == 1 and len(rows[1]) == 1 and start > 1e9 and 0 < rate <= 1000


def _numbers(cells: list[str], path: Path, lines: list[int]) -> npt.NDArray[np.float64]:
    out = np.empty(len(cells))
    for i, cell in enumerate(cells):
        text = cell.strip()
        try:
            out[i] = float(text) if text and text.lower() not in ("nan", "na") else math.nan
        except ValueError as exc:
            raise DataError(f"{str(path)!r} line {lines[i]}: {cell!r} is not a number", path=str(path)) from exc
    return out


def _gap_flags(conductance_us: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    return np.where(np.isnan(conductance_us), SampleFlag.GAP, 0).astype(np.uint8)


def _column_index(header: list[str] | None, column: str, path: Path) -> int:
    names = [c.strip() for c in header] if header else []
    wanted = column.strip()
    lowered = [n.lower() for n in names]
    if wanted.lower() in lowered:
        return lowered.index(wanted.lower())
    if wanted.isdigit() and int(wanted) >= 1:  # 1-based; a row without it is refused by line
        return int(wanted) - 1
    raise DataError(f"{str(path)!r} has no column {column!r}"
                    + (f" (columns: {', '.join(names)})" if names else " (no header line; give a number, column=2)"),
                    path=str(path))


def _load_generic_csv(rows: list[list[str]], lines: list[int], path: Path, unit: str, rate_hz: float | None,
                      column: str | None) -> LoadedSignal:
    try:
        float(rows[0][0])
        header = False
    except ValueError:
        header = True
    data = rows[1:] if header else rows
    data_lines = lines[1:] if header else lines
    value_at = 1
    if column is not None:
        value_at = _column_index(rows[0] if header else None, column, path)
        if rate_hz is not None:  # the rows are samples at rate_hz: no time column
            short = next((i for i, r in enumerate(data) if len(r) <= value_at), None)
            if short is not None:
                raise DataError(f"{str(path)!r} line {data_lines[short]}: no column {column!r}", path=str(path))
            conductance = _conductance(_numbers([r[value_at] for r in data], path, data_lines), unit)
            return LoadedSignal(conductance, _gap_flags(conductance), rate_hz, "csv", f"{path.name}:{column}")
        if value_at == 0:
            raise DataError(f"{str(path)!r}: column {column!r} is the first column, read as the time; "
                            "give the rate (rate=HZ) to replay it without a time column", path=str(path))
    elif len(data[0]) == 1:
        if rate_hz is None:
            raise DataError(
                f"{str(path)!r} has one column and no time: give the rate, replay://{path}?rate=32",
                path=str(path))
        conductance = _conductance(_numbers([r[0] for r in data], path, data_lines), unit)
        return LoadedSignal(conductance, _gap_flags(conductance), rate_hz, "csv", path.name)
    elif len(data[0]) > 2 and header and rows[0][0].strip().lower() not in _TIME_NAMES:
        raise DataError(
            f"{str(path)!r} has columns {', '.join(c.strip() for c in rows[0])} and no time column: choose "
            f"one and give its rate, replay://{path}?column={rows[0][min(1, len(rows[0]) - 1)].strip()}&rate=100 "
            "(emotionkd-sdk stream --replay FILE --column NAME --rate HZ)", path=str(path))
    short = next((i for i, r in enumerate(data) if len(r) <= value_at), None)
    if short is not None:
        raise DataError(f"{str(path)!r} line {data_lines[short]}: every row needs time,value", path=str(path))
    times = _numbers([r[0] for r in data], path, data_lines)
    values = _numbers([r[value_at] for r in data], path, data_lines)
    if not np.isfinite(times).all() or np.any(np.diff(times) <= 0):
        raise DataError(f"{str(path)!r}: the time column must be finite numbers in increasing order (seconds); "
                        "a file without a time column needs its column and rate (column=NAME&rate=HZ, "
                        "--column NAME --rate HZ)", path=str(path))
    if rate_hz is None:
        # Mean interval without the gaps, then a least-squares fit of the times on their grid indices,
        # so that jittery time stamps (and gaps) still give the true mean interval.
        with np.errstate(over="ignore", invalid="ignore"):
            diffs = np.diff(times)
            step = float(diffs[diffs < 1.5 * np.median(diffs)].mean()) if diffs.size else math.nan
        if not (math.isfinite(step) and step > 0):
            raise DataError(f"{str(path)!r}: cannot tell the sampling interval from the time column; "
                            "give the rate, replay://…?rate=HZ", path=str(path))
        _check_rate(1.0 / step, path, "the time column's median interval")
        index = np.round((times - times[0]) / step)
        step = float(np.polyfit(index, times, 1)[0]) if index[-1] > 0 and index[-1] < MAX_SIGNAL_SAMPLES else step
        rate_hz = _check_rate(1.0 / step, path, "the time column's interval")
        # Devices report round rates; recover 4, 32, 128 Hz … from jittery time stamps.
        if abs(rate_hz - round(rate_hz)) < 0.01 * rate_hz:
            rate_hz = float(round(rate_hz))
    return _on_grid(times, _conductance(values, unit), rate_hz, path)


def _on_grid(times: npt.NDArray[np.float64], conductance: npt.NDArray[np.float64], rate_hz: float,
             path: Path) -> LoadedSignal:
    """Place time-stamped samples on the rate's grid; jumps beyond REPLAY_MAX_GAP_S are shortened
    to it (a discontinuity, flagged CLOCK_RESYNC on the first sample after it)."""
    steps = np.round(np.diff(times) * rate_hz)  # float: a 1e300 s jump stays representable
    max_gap = max_gap_samples(rate_hz, REPLAY_MAX_GAP_S)  # the bound sample_axis gives every fill
    jumps = steps > max_gap + 1
    steps = np.where(jumps, max_gap + 1, np.maximum(steps, 1)).astype(np.int64)
    grid = np.concatenate([[0], np.cumsum(steps)])
    total = int(grid[-1]) + 1
    if total > MAX_SIGNAL_SAMPLES:
        raise DataError(f"{str(path)!r} spans {total:,} samples at {rate_hz:g} Hz, more than "
                        f"{MAX_SIGNAL_SAMPLES:,}; split it into shorter files", path=str(path))
    values = np.full(total, np.nan)
    values[grid] = conductance
    flags = _gap_flags(values)
    flags[grid[1:][jumps]] |= np.uint8(SampleFlag.CLOCK_RESYNC)
    return LoadedSignal(values, flags, float(rate_hz), "csv", path.name, 0, int(np.count_nonzero(jumps)))


@dataclass(frozen=True)
class ReplaySpec(SourceSpec):
    """``replay://FILE?…`` parsed (see the module docstring for the parameters)."""

    scheme: ClassVar[str] = "replay"
    path: Path = Path()
    speed: float = 1.0
    block_s: float = 0.25
    rate_hz: float | None = None
    unit: str = "uS"
    column: str | None = None

    def describe(self, device: str | None = None) -> str:
        """``replay of FILE (recorded from DEVICE)``: the file, not the port it was once recorded
        from (``device``: what the file says recorded it)."""
        return f"replay of {self.path.name}" + (f" (recorded from {device})" if device else "")


def parse_replay(url: str) -> ReplaySpec:
    """Parse a ``replay://`` URL (the file is read when the source is made).

    Raises:
        ConfigError: no file, a bad block, unit or unknown parameter.
    """
    parsed = SourceUrl.parse(url)
    default = ReplaySpec(url)  # the defaults are the spec's fields, written once
    spec = ReplaySpec(url, Path(parsed.location), float(parsed.take_float("speed", default.speed) or 0.0),
                      parsed.take_positive("block", default.block_s), parsed.take_rate("rate", default.rate_hz),
                      replay_unit(parsed.take("unit", default.unit) or default.unit), parsed.take("column", default.column))
    parsed.refuse_leftovers("speed, block, rate, unit, column")
    if not parsed.location:
        raise ConfigError("replay:// needs a file: replay://path/to/recording.csv")
    return spec


class ReplaySource(Source):
    """Replays a file as a live stream (see the module docstring).

    Args:
        spec: a :class:`ReplaySpec` (or the URL, parsed here).
    """

    def __init__(self, spec: ReplaySpec | str) -> None:
        spec = parse_replay(spec) if isinstance(spec, str) else spec
        super().__init__(spec.url)
        self.spec = spec
        self.path, self.speed, self.block_s, self.unit = spec.path, spec.speed, spec.block_s, spec.unit
        self.signal = load_signal(self.path, unit=self.unit, rate_hz=spec.rate_hz, column=spec.column)
        self._emitted = 0

    @property
    def info(self) -> SourceInfo:
        return SourceInfo(device=self.spec.describe(self.signal.device), protocol=f"replay-{self.signal.format}", rate_hz=self.signal.rate_hz)

    def counters(self) -> dict[str, int]:
        return {"samples": self._emitted,
                "gap_samples": int(np.count_nonzero(self.signal.flags[: self._emitted] & SampleFlag.GAP)),
                "implausible_samples": self.signal.implausible_samples,
                "discontinuities": self.signal.discontinuities}

    def blocks(self) -> Iterator[SampleBlock]:
        sig = self.signal
        pacer = Pacer(sig.rate_hz, self.speed, self._closed)
        block = max(1, int(round(self.block_s * sig.rate_hz)))
        while not self.closed and self._emitted < sig.conductance_us.size:
            start, stop = self._emitted, min(self._emitted + block, sig.conductance_us.size)
            pacer.wait_until(stop)
            if self.closed:
                return
            yield SampleBlock(start, sig.conductance_us[start:stop], sig.flags[start:stop], sig.rate_hz, time.time())
            self._emitted = stop


__all__ = ["REPLAY_MAX_GAP_S", "LoadedSignal", "ReplaySource", "ReplaySpec", "load_signal", "parse_replay", "replay_unit"]
