"""The SDK's recording format: raw samples in CSV, flushed at least every second.

::

    # emotionkd recording v1
    # device: EKD-GSR-01
    # protocol: ekd
    # rate_hz: 128
    # unit: uS
    # start_time: 2026-11-24T22:31:45.123456+00:00
    time_s,conductance_us,flags
    0.000000,5.012345,0
    0.007812,,32

``time_s`` is the sample's time on the source's own axis (index / rate, so a gap keeps its
place), ``conductance_us`` is empty where the sample is missing, ``flags`` the
:class:`SampleFlag` bits. ``replay://file.csv`` reads it back; so does :func:`read_recording`.
A process killed mid-recording loses at most the last second (the writer flushes to the OS at
least every ``flush_every_s``).
"""

from __future__ import annotations

import datetime as _dt
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.bounds import MAX_FLAGS, rate_problem
from emotionkd.firmware_bridge.errors import DataError, TransportError
from emotionkd.firmware_bridge.sample_axis import AxisAligner, GapPolicy
from emotionkd.firmware_bridge.samples import SampleBlock

MAGIC: Final = "# emotionkd recording v1"
COLUMNS: Final = "time_s,conductance_us,flags"


@dataclass(frozen=True)
class Recording:
    """A recording read back into memory.

    Attributes:
        conductance_us: (n,) float64 µS, NaN where missing.
        flags: (n,) uint8 :class:`SampleFlag` bits.
        rate_hz: sampling rate.
        metadata: the ``# key: value`` lines (device, protocol, rate_hz, unit, start_time, …).
    """

    conductance_us: npt.NDArray[np.float64]
    flags: npt.NDArray[np.uint8]
    rate_hz: float
    metadata: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.conductance_us.size)

    @property
    def duration_s(self) -> float:
        return len(self) / self.rate_hz


class RecordingWriter:
    """Writes :class:`SampleBlock` s to a recording file.

    Args:
        path: the CSV file (created or truncated).
        device, protocol: what the samples came from (metadata lines).
        rate_hz: sampling rate of the source.
        flush_every_s: longest time data may sit in a buffer (s).
        extra: more ``# key: value`` metadata lines.
        gap_policy: the longest gap written as GAP rows (default 10 s); a longer jump (a clock
            reset, a 10^9 s time stamp) is written as that bound and counted (:attr:`gaps`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        device: str,
        protocol: str,
        rate_hz: float,
        flush_every_s: float = 1.0,
        extra: dict[str, str] | None = None,
        gap_policy: GapPolicy | None = None,
    ) -> None:
        self.path = Path(path)
        # places blocks on the written axis: gaps filled (bounded by gap_policy), overlaps trimmed
        self._axis = AxisAligner(float(rate_hz), gap_policy)
        try:
            self._file: TextIO = open(self.path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        except OSError as exc:
            raise TransportError(f"cannot write recording {str(self.path)!r}: {exc.strerror or exc}") from exc
        self.rate_hz = float(rate_hz)
        self.flush_every_s = float(flush_every_s)
        self._origin_index: int | None = None  # the axis index of the recording's first sample (time_s 0)
        self.samples_written = 0
        self.start_time = _dt.datetime.now(_dt.UTC)
        meta = {"device": device, "protocol": protocol, "rate_hz": f"{self.rate_hz:g}", "unit": "uS",
                "start_time": self.start_time.isoformat(), **(extra or {})}
        lines = [MAGIC] + [f"# {k}: {_one_line(v)}" for k, v in meta.items()] + [COLUMNS]
        self._file.write("\n".join(lines) + "\n")
        self._flush()

    def _flush(self) -> None:
        self._file.flush()
        self._last_flush = time.monotonic()

    def write(self, block: SampleBlock) -> None:
        """Append one block (a block that skips ahead is written with GAP rows in between).

        The first block written starts the recording (``time_s`` 0): samples a source delivered
        before it (e.g. before ``record`` started) are not padded in as a gap.
        """
        if self._file.closed:
            raise DataError(f"recording {str(self.path)!r} is closed", path=str(self.path))
        if block.rate_hz != self.rate_hz:
            raise DataError(f"block at {block.rate_hz} Hz cannot go into a {self.rate_hz} Hz recording")
        placed = self._axis.place(block).blocks  # bounded gap fill, overlap trimmed (sample_axis)
        if not placed:
            return
        if self._origin_index is None:
            self._origin_index = placed[0].first_index
        start = placed[0].first_index
        values = np.concatenate([b.conductance_us for b in placed])
        flags = np.concatenate([b.flags for b in placed]).astype(np.uint8)
        buffer = io.StringIO()
        times = (start - self._origin_index + np.arange(values.size)) / self.rate_hz
        for t, v, f in zip(times.tolist(), values.tolist(), flags.tolist(), strict=True):
            buffer.write(f"{t:.6f},{'' if math.isnan(v) else format(v, '.6g')},{f}\n")
        self._file.write(buffer.getvalue())
        self.samples_written += values.size
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self._flush()

    @property
    def gaps(self) -> dict[str, int]:
        """What the writer filled: ``gap_samples`` written as GAP rows, ``samples_lost`` the
        sources' claims said were missing, ``discontinuities`` (jumps beyond ``max_gap_s``, each
        written as a bounded ``max_gap_s`` of GAP rows, the next row flagged CLOCK_RESYNC)."""
        return self._axis.counters()

    def close(self) -> None:
        if not self._file.closed:
            self._flush()
            self._file.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _one_line(value: object) -> str:
    return str(value).replace("\n", " ").replace("\r", " ")


def is_recording(path: str | Path) -> bool:
    """True when the file starts with the recording magic line."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().strip() == MAGIC
    except OSError:
        return False


def read_recording(path: str | Path) -> Recording:
    """Read a recording written by :class:`RecordingWriter` (a truncated last line is ignored).

    Raises:
        DataError: the file is missing, not a recording, or has malformed rows.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read recording {str(p)!r}: {exc.strerror or exc}", path=str(p)) from exc
    lines = text.splitlines()
    if not lines or lines[0].strip() != MAGIC:
        raise DataError(f"{str(p)!r} is not an emotionkd recording (first line is not {MAGIC!r})", path=str(p))
    metadata: dict[str, str] = {}
    row = 1
    while row < len(lines) and lines[row].startswith("#"):
        key, _, value = lines[row][1:].partition(":")
        metadata[key.strip()] = value.strip()
        row += 1
    if row >= len(lines) or lines[row].strip() != COLUMNS:
        raise DataError(f"{str(p)!r}: expected the column line {COLUMNS!r} after the metadata", path=str(p))
    try:
        rate_hz = float(metadata["rate_hz"])
    except (KeyError, ValueError) as exc:
        raise DataError(f"{str(p)!r}: metadata line '# rate_hz: …' missing or not a number", path=str(p)) from exc
    problem = rate_problem(rate_hz)
    if problem is not None:
        raise DataError(f"{str(p)!r}: metadata '# rate_hz': {problem}", path=str(p))
    body = lines[row + 1 :]
    if body and not text.endswith("\n"):
        body = body[:-1]  # the writer was killed mid-line
    values = np.full(len(body), np.nan)
    flags = np.zeros(len(body), np.uint8)
    for i, line in enumerate(body):
        parts = line.split(",")
        try:
            if len(parts) != 3:
                raise ValueError(f"{len(parts)} fields")
            if parts[1]:
                values[i] = float(parts[1])
            flag = int(parts[2])
            if not 0 <= flag <= MAX_FLAGS:
                raise ValueError(f"flags {flag} outside 0 … {MAX_FLAGS}")
            flags[i] = flag
        except ValueError as exc:
            raise DataError(f"{str(p)!r} line {row + 2 + i}: malformed row {line!r} ({exc})", path=str(p)) from exc
    if metadata.get("unit", "uS") not in ("uS", "µS"):
        raise DataError(f"{str(p)!r}: recordings hold µS, this one says unit {metadata['unit']!r}", path=str(p))
    return Recording(values, flags, rate_hz, metadata)


__all__ = ["COLUMNS", "MAGIC", "Recording", "RecordingWriter", "is_recording", "read_recording"]
