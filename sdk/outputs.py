"""Where predictions go: JSON lines and CSV for programs (the live table for people is
:mod:`emotionkd.sdk.live_view`).

Every output has ``write(prediction, status)`` and ``close()``; :class:`StreamStatus` carries
what a display shows besides the prediction (rate, counters). The LSL outlet lives in
:mod:`emotionkd.sdk.lsl` (optional extra).
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from emotionkd.firmware_bridge.errors import DataError
from emotionkd.sdk.prediction import Prediction
from emotionkd.sdk.quality import ELECTRODE_OFF, FLAT_LINE, GAP, IMPLAUSIBLE_UNIT, OK, SATURATION

CSV_COLUMNS = ("start_s", "end_s", "arousal", "valence", "arousal_label", "valence_label",
               "quality", "samples_missing", "conductance_us", "quality_detail")


#: seconds of arrivals the measured rate is averaged over (long enough to smooth block bursts)
RATE_WINDOW_S = 10.0


@dataclass
class StreamStatus:
    """What is known about the stream besides the predictions.

    Attributes:
        source: a one-line description of the source, as a person should read it (a replay
            names its file, not the port it was once recorded from).
        samples: samples received so far.
        nominal_rate_hz: the rate the source declares (Hz; 0 until the first block).
        started: ``time.monotonic()`` at the first sample.
        counters: the source's counters (frames, lost, CRC failures …).
        predictions, not_ok: predictions so far and how many failed the quality gate.
    """

    source: str = ""
    samples: int = 0
    nominal_rate_hz: float = 0.0
    started: float = field(default_factory=time.monotonic)
    counters: Mapping[str, int] = field(default_factory=dict)
    predictions: int = 0
    not_ok: int = 0
    _arrivals: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=4096), repr=False)

    def count(self, prediction: Prediction) -> None:
        self.predictions += 1
        self.not_ok += not prediction.ok

    def received(self, n_samples: int, now: float | None = None) -> None:
        """Count ``n_samples`` that arrived at ``now`` (``time.monotonic()``; default: now)."""
        now = time.monotonic() if now is None else now
        if self.samples == 0:
            self.started = now
        self.samples += n_samples
        self._arrivals.append((now, self.samples))
        while len(self._arrivals) > 2 and now - self._arrivals[1][0] >= RATE_WINDOW_S:
            self._arrivals.popleft()

    @property
    def rate_hz(self) -> float:
        """Measured samples per second over the last :data:`RATE_WINDOW_S` of arrivals (NaN for
        the first second).

        Counted from the first arrival in the window to the last, so the samples that arrived
        *at* the first instant are not counted: counting them (samples / time since the first
        block) overstated a 128 Hz sensor as 130.7 Hz for a whole block's worth of samples.
        """
        if len(self._arrivals) < 2:
            return math.nan
        (t0, n0), (t1, n1) = self._arrivals[0], self._arrivals[-1]
        return (n1 - n0) / (t1 - t0) if t1 - t0 >= 1.0 else math.nan

    @property
    def signal_s(self) -> float:
        """Seconds of signal received so far (samples at the nominal rate; 0 before any)."""
        return self.samples / self.nominal_rate_hz if self.nominal_rate_hz > 0 else 0.0

    @property
    def lost(self) -> int:
        """Frames the transport lost on the way (sequence gaps) or the queue dropped."""
        return self._sum("frames_lost", "queue_drops")

    @property
    def bad(self) -> int:
        """Frames the decoder could not use (CRC failures, malformed, wrong version or length)."""
        return self._sum("crc_failures", "cobs_errors", "bad_length", "bad_version", "malformed", "invalid_lines")

    def _sum(self, *keys: str) -> int:
        return sum(int(v) for k, v in self.counters.items() if k in keys and isinstance(v, int))


class PredictionOutput(Protocol):
    def write(self, prediction: Prediction, status: StreamStatus) -> None: ...

    def close(self) -> None: ...


class JsonlOutput:
    """One JSON object per prediction and line (flushed per line, so ``tail -f`` works)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, prediction: Prediction, status: StreamStatus) -> None:
        self.stream.write(json.dumps(_finite(prediction.to_dict()), allow_nan=False) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class CsvOutput:
    """CSV with a header line; empty cells where a window was not predicted."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._writer = csv.writer(stream, lineterminator="\n")
        self._writer.writerow(CSV_COLUMNS)

    def write(self, prediction: Prediction, status: StreamStatus) -> None:
        data = _finite(prediction.to_dict())
        self._writer.writerow(["" if data[c] is None else _fmt(data[c]) for c in CSV_COLUMNS])
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


def _finite(data: dict[str, object]) -> dict[str, object]:
    """``data`` unchanged, or a DataError naming the first non-finite number (programs reading
    JSON lines or CSV must never meet ``NaN``/``inf`` where a probability belongs)."""
    for key, value in data.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise DataError(f"refusing to write prediction field {key}={value}: not a finite number")
    return data


def _fmt(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


#: the short word a person reads for each quality code (the codes: :mod:`emotionkd.sdk.quality`)
QUALITY_WORDS: Mapping[str, str] = {
    OK: "ok", GAP: "gap", ELECTRODE_OFF: "electrode off", SATURATION: "saturated",
    FLAT_LINE: "flat line", IMPLAUSIBLE_UNIT: "wrong unit?",
}


def quality_word(quality: str) -> str:
    """The short word the live view shows for a quality code (the code itself if unknown)."""
    return QUALITY_WORDS.get(quality, quality.replace("_", " "))


__all__ = ["CSV_COLUMNS", "QUALITY_WORDS", "CsvOutput", "JsonlOutput", "PredictionOutput", "StreamStatus",
           "quality_word"]
