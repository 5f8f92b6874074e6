"""Where predictions go: a live table for people, JSON lines and CSV for programs.

Every output has ``write(prediction, status)`` and ``close()``; :class:`StreamStatus` carries
what a display shows besides the prediction (rate, counters). The LSL outlet lives in
:mod:`emotionkd.sdk.lsl` (optional extra).
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from emotionkd.firmware_bridge.errors import DataError
from emotionkd.sdk.classifier import Prediction

CSV_COLUMNS = ("start_s", "end_s", "arousal", "valence", "arousal_label", "valence_label",
               "quality", "samples_missing", "conductance_us", "quality_detail")


@dataclass
class StreamStatus:
    """What is known about the stream besides the predictions.

    Attributes:
        source: a one-line description of the source.
        samples: samples received so far.
        started: ``time.monotonic()`` at the first sample.
        counters: the source's counters (frames, lost, CRC failures …).
        predictions, not_ok: predictions so far and how many failed the quality gate.
    """

    source: str = ""
    samples: int = 0
    started: float = field(default_factory=time.monotonic)
    counters: Mapping[str, int] = field(default_factory=dict)
    predictions: int = 0
    not_ok: int = 0

    def count(self, prediction: Prediction) -> None:
        self.predictions += 1
        self.not_ok += not prediction.ok

    @property
    def rate_hz(self) -> float:
        """Samples per second of wall time since the start (the device's real rate, live)."""
        elapsed = time.monotonic() - self.started
        return self.samples / elapsed if elapsed > 0.5 else math.nan

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


def bar(probability: float | None, width: int = 24) -> str:
    """A horizontal bar for a probability (``░`` all over when there is none)."""
    if probability is None:
        return "·" * width
    filled = int(round(max(0.0, min(1.0, probability)) * width))
    return "█" * filled + "░" * (width - filled)


class TableOutput:
    """The live view for a person at a terminal.

    On a terminal it redraws one block in place (arousal and valence bars, quality, rate,
    counters); elsewhere (a pipe, a log) it prints one line per prediction.
    """

    def __init__(self, stream: TextIO, *, live: bool | None = None, header: str = "") -> None:
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self._drawn = 0
        if header:
            stream.write(header + "\n")
        if not self.live:
            stream.write(f"{'window (s)':>13}  {'arousal':>12}  {'valence':>12}  {'SCL µS':>7}  quality\n")
        stream.flush()

    def write(self, prediction: Prediction, status: StreamStatus) -> None:
        p = prediction
        quality = "ok" if p.ok else f"{p.quality}: {p.quality_detail}"
        if not self.live:
            self.stream.write(
                f"{p.start_s:6.1f}–{p.end_s:6.1f}  {_prob(p.arousal, p.arousal_label):>12}  "
                f"{_prob(p.valence, p.valence_label):>12}  {p.conductance_us:7.3f}  {quality}\n")
            self.stream.flush()
            return
        rate = status.rate_hz
        lines = [
            f"window  {p.start_s:7.1f} – {p.end_s:7.1f} s    quality {quality}",
            f"arousal {bar(p.arousal)} {_prob(p.arousal, p.arousal_label)}",
            f"valence {bar(p.valence)} {_prob(p.valence, p.valence_label)}",
            f"SCL {p.conductance_us:6.3f} µS · rate {'–' if math.isnan(rate) else f'{rate:5.1f}'} Hz · "
            f"predictions {status.predictions} ({status.not_ok} not ok) · lost {status.lost} · bad {status.bad}",
        ]
        # Move up over the previous block and overwrite it, clearing each line.
        out = ("\x1b[F" * self._drawn) + "".join(f"\x1b[2K{line}\n" for line in lines)
        self.stream.write(out)
        self.stream.flush()
        self._drawn = len(lines)

    def note(self, text: str) -> None:
        """An event line (e.g. "arousal rises"); the live block continues below it."""
        self.stream.write(text + "\n")
        self.stream.flush()
        self._drawn = 0

    def close(self) -> None:
        self.stream.flush()


def _prob(probability: float | None, label: str | None) -> str:
    return "–" if probability is None else f"{probability:.2f} {label}"


__all__ = ["CSV_COLUMNS", "CsvOutput", "JsonlOutput", "PredictionOutput", "StreamStatus", "TableOutput", "bar"]
