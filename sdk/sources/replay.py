"""``replay://path``: a file replayed as a live stream (like mne-lsl's player).

``replay://recording.csv?speed=1`` understands three kinds of file, told apart by their content:

* the SDK's own recordings (:mod:`emotionkd.sdk.recording`), flags included;
* an Empatica E4 ``EDA.csv`` export: line 1 the start time (Unix s), line 2 the rate (4 Hz),
  then one value in µS per line;
* a generic CSV ``time,value`` (a header line is optional; ``time`` in seconds): samples are
  placed on the grid of the median interval (or ``rate=``), so a gap stays a gap; with a single
  column, ``rate=`` is required. ``unit=`` declares the value unit (default ``uS``; ``nS``,
  ``kOhm`` … are converted, resistance inverted).

Parameters: ``speed`` (1 = real time, the default; 0 = as fast as possible), ``block`` (s per
block, default 0.25), ``rate``, ``unit``.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag
from emotionkd.firmware_bridge.units import normalise_unit, to_conductance_us
from emotionkd.sdk.recording import is_recording, read_recording
from emotionkd.sdk.sources.base import Pacer, Source, SourceInfo, SourceUrl


@dataclass(frozen=True)
class LoadedSignal:
    """A file's samples on a uniform time axis.

    Attributes:
        conductance_us: (n,) µS, NaN where missing.
        flags: (n,) uint8 :class:`SampleFlag` bits.
        rate_hz: sampling rate.
        format: ``recording``, ``e4`` or ``csv``.
        device: what the file says the device was.
    """

    conductance_us: npt.NDArray[np.float64]
    flags: npt.NDArray[np.uint8]
    rate_hz: float
    format: str
    device: str


def load_signal(path: str | Path, *, unit: str = "uS", rate_hz: float | None = None) -> LoadedSignal:
    """Read a recording, an E4 ``EDA.csv`` or a generic CSV (see the module docstring).

    Raises:
        DataError: the file is missing, empty or cannot be understood.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"replay file {str(p)!r} does not exist", path=str(p))
    if is_recording(p):
        rec = read_recording(p)
        return LoadedSignal(rec.conductance_us, rec.flags, rec.rate_hz, "recording",
                            rec.metadata.get("device", p.name))
    try:
        with open(p, encoding="utf-8-sig", newline="") as f:
            numbered = [(n, r) for n, r in enumerate(csv.reader(f), 1) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {str(p)!r}: {exc}", path=str(p)) from exc
    rows, line_numbers = [r for _, r in numbered], [n for n, _ in numbered]  # blank lines skipped
    if len(rows) < 3:
        raise DataError(f"{str(p)!r} holds fewer than 3 lines: nothing to replay", path=str(p))
    if _looks_like_e4(rows):
        values = _numbers([r[0] for r in rows[2:]], p, line_numbers[2:])
        rate = float(rows[1][0])
        conductance = to_conductance_us(values, unit)
        return LoadedSignal(conductance, _gap_flags(conductance), rate, "e4", f"Empatica E4 ({p.name})")
    return _load_generic_csv(rows, line_numbers, p, unit, rate_hz)


def _looks_like_e4(rows: list[list[str]]) -> bool:
    try:
        start, rate = float(rows[0][0]), float(rows[1][0])
    except ValueError:
        return False
    # E4 exports: a Unix start time (after 2001), then a small rate; every row has one column.
    return len(rows[0]) == 1 and len(rows[1]) == 1 and start > 1e9 and 0 < rate <= 1000


def _numbers(cells: list[str], path: Path, line_numbers: list[int]) -> npt.NDArray[np.float64]:
    out = np.empty(len(cells))
    for i, cell in enumerate(cells):
        text = cell.strip()
        try:
            out[i] = float(text) if text and text.lower() not in ("nan", "na") else math.nan
        except ValueError as exc:
            raise DataError(f"{str(path)!r} line {line_numbers[i]}: {cell!r} is not a number", path=str(path)) from exc
    return out


def _gap_flags(conductance_us: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    return np.where(np.isnan(conductance_us), SampleFlag.GAP, 0).astype(np.uint8)


def _load_generic_csv(rows: list[list[str]], line_numbers: list[int], path: Path, unit: str,
                      rate_hz: float | None) -> LoadedSignal:
    try:
        float(rows[0][0])
        header = False
    except ValueError:
        header = True
    data = rows[1:] if header else rows
    numbers = line_numbers[1:] if header else line_numbers
    columns = len(data[0])
    if columns == 1:
        if rate_hz is None:
            raise DataError(
                f"{str(path)!r} has one column and no time: give the rate, replay://{path}?rate=32",
                path=str(path))
        conductance = to_conductance_us(_numbers([r[0] for r in data], path, numbers), unit)
        return LoadedSignal(conductance, _gap_flags(conductance), rate_hz, "csv", path.name)
    short = next((n for n, r in zip(numbers, data, strict=True) if len(r) < 2), None)
    if short is not None:
        raise DataError(f"{str(path)!r} line {short}: every row needs time,value", path=str(path))
    times = _numbers([r[0] for r in data], path, numbers)
    values = _numbers([r[1] for r in data], path, numbers)
    if np.isnan(times).any() or np.any(np.diff(times) <= 0):
        raise DataError(f"{str(path)!r}: the time column must be numbers in increasing order (seconds)", path=str(path))
    if rate_hz is None:
        # Mean interval without the gaps, then a least-squares fit of the times on their grid indices,
        # so that jittery time stamps (and gaps) still give the true mean interval.
        diffs = np.diff(times)
        step = float(diffs[diffs < 1.5 * np.median(diffs)].mean())  # gaps left out
        index = np.round((times - times[0]) / step)
        step = float(np.polyfit(index, times, 1)[0]) if index[-1] > 0 else step
        rate_hz = 1.0 / step
        # Devices report round rates; recover 4, 32, 128 Hz … from jittery time stamps.
        if abs(rate_hz - round(rate_hz)) < 0.01 * rate_hz:
            rate_hz = float(round(rate_hz))
    grid = np.round((times - times[0]) * rate_hz).astype(np.int64)
    conductance = np.full(int(grid[-1]) + 1, np.nan)
    conductance[grid] = to_conductance_us(values, unit)
    return LoadedSignal(conductance, _gap_flags(conductance), float(rate_hz), "csv", path.name)


class ReplaySource(Source):
    """Replays a file as a live stream (see the module docstring)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        parsed = SourceUrl.parse(url)
        self.path = Path(parsed.location)
        self.speed = float(parsed.take_float("speed", 1.0) or 0.0)
        self.block_s = float(parsed.take_float("block", 0.25) or 0.0)
        rate = parsed.take_float("rate", None)
        self.unit = normalise_unit(parsed.take("unit", "uS") or "uS")
        parsed.refuse_leftovers("speed, block, rate, unit")
        if self.block_s <= 0:
            raise ConfigError("replay:// block must be a positive number of seconds")
        if not parsed.location:
            raise ConfigError("replay:// needs a file: replay://path/to/recording.csv")
        self.signal = load_signal(self.path, unit=self.unit, rate_hz=rate)
        self._emitted = 0

    @property
    def info(self) -> SourceInfo:
        return SourceInfo(device=self.signal.device, protocol=f"replay-{self.signal.format}", rate_hz=self.signal.rate_hz)

    def counters(self) -> dict[str, int]:
        return {"samples": self._emitted, "gap_samples": int(np.count_nonzero(self.signal.flags[: self._emitted] & SampleFlag.GAP))}

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


__all__ = ["LoadedSignal", "ReplaySource", "load_signal"]
