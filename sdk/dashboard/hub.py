"""What the dashboard shows, kept bounded and handed to each browser as Server-Sent Events.

The stream loop feeds a :class:`DashboardHub` (``add_block`` for samples, ``write`` for
predictions: it is a prediction output like the others); each browser connection reads a
snapshot first, then the events after it. Memory stays bounded whatever the stream does: the
trace is decimated to :data:`TRACE_RATE_HZ` and every history is a ring buffer.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag
from emotionkd.sdk.classifier import Prediction
from emotionkd.sdk.outputs import StreamStatus, quality_word

#: points per second of the GSR trace sent to browsers (a person reads a trend, not 128 Hz)
TRACE_RATE_HZ = 8.0
#: how far back the page can show (s)
HISTORY_S = 600.0
#: events kept for connections that fall behind (older ones are dropped: a slow tab misses points)
EVENT_BUFFER = 2048


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event: its sequence number, name and JSON payload."""

    seq: int
    name: str
    data: str

    def encode(self) -> bytes:
        return f"id: {self.seq}\nevent: {self.name}\ndata: {self.data}\n\n".encode()


def _finite(value: float) -> float | None:
    return round(float(value), 4) if math.isfinite(value) else None


class DashboardHub:
    """The dashboard's state: recent trace points, predictions, the model card, the status.

    Args:
        model_card: what the page's model panel shows (``{"text": …, "facts": {…}}``).
        source: the stream's description, until the status says better.
        history_s: how much trace and prediction history is kept (s).
    """

    def __init__(self, model_card: dict[str, Any], source: str = "", history_s: float = HISTORY_S) -> None:
        self.model_card = model_card
        self._trace: deque[tuple[float, float | None, int]] = deque(maxlen=int(history_s * TRACE_RATE_HZ))
        self._predictions: deque[dict[str, Any]] = deque(maxlen=int(history_s * 20))
        self._events: deque[Event] = deque(maxlen=EVENT_BUFFER)
        self._status: dict[str, Any] = {"source": source, "state": "waiting for samples"}
        self._seq = 0
        self._carry: list[tuple[int, float, int]] = []  # samples of a trace point still filling up
        self._cond = threading.Condition()
        self.closed = False

    # --- fed by the stream loop --------------------------------------------------------------
    def add_block(self, block: SampleBlock, status: StreamStatus) -> None:
        """Decimate a block to :data:`TRACE_RATE_HZ` points (mean µS, OR of the flags)."""
        per_point = max(1, int(round(block.rate_hz / TRACE_RATE_HZ)))
        points: list[tuple[float, float | None, int]] = []
        for i in range(len(block)):
            index = block.first_index + i
            self._carry.append((index, float(block.conductance_us[i]), int(block.flags[i])))
            if (index + 1) % per_point == 0:
                values = np.array([v for _, v, _ in self._carry])
                flags = 0
                for _, _, f in self._carry:
                    flags |= f
                t = self._carry[0][0] / block.rate_hz
                mean = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
                points.append((round(t, 3), _finite(mean), flags))
                self._carry.clear()
        status_now = self._status_dict(status)
        with self._cond:
            self._trace.extend(points)
            self._status = status_now
            if points:
                self._publish("samples", {"t": [p[0] for p in points], "us": [p[1] for p in points],
                                          "flag": [_flag_word(p[2]) for p in points], "status": status_now})

    def write(self, prediction: Prediction, status: StreamStatus) -> None:
        """A prediction output: the page's arousal/valence history and current values."""
        row = prediction.to_dict()
        row["quality_word"] = quality_word(prediction.quality)
        status_now = self._status_dict(status)
        with self._cond:
            self._predictions.append(row)
            self._status = status_now
            self._publish("prediction", {"prediction": row, "status": status_now})

    def close(self) -> None:
        """The stream ended: tell the pages, and let their connections finish."""
        with self._cond:
            if self.closed:
                return
            self._status = {**self._status, "state": "stream ended"}
            self._publish("end", {"status": self._status})
            self.closed = True

    # --- read by the server ------------------------------------------------------------------
    def snapshot(self) -> tuple[int, dict[str, Any]]:
        """Everything a newly opened page needs, and the sequence number it is current to."""
        with self._cond:
            return self._seq, {
                "trace": {"t": [p[0] for p in self._trace], "us": [p[1] for p in self._trace],
                          "flag": [_flag_word(p[2]) for p in self._trace]},
                "predictions": list(self._predictions),
                "status": self._status,
                "model": self.model_card,
                "ended": self.closed,
            }

    def events_after(self, seq: int, timeout_s: float) -> tuple[list[Event], bool]:
        """Events newer than ``seq`` (waiting up to ``timeout_s`` for one), and whether the hub
        is closed. A connection that fell more than :data:`EVENT_BUFFER` events behind gets
        what is left."""
        with self._cond:
            if not self.closed and (not self._events or self._events[-1].seq <= seq):
                self._cond.wait(timeout_s)
            return [e for e in self._events if e.seq > seq], self.closed

    def _publish(self, name: str, payload: dict[str, Any]) -> None:  # holds self._cond
        self._seq += 1
        self._events.append(Event(self._seq, name, json.dumps(payload, allow_nan=False)))
        self._cond.notify_all()

    @staticmethod
    def _status_dict(status: StreamStatus) -> dict[str, Any]:
        rate = status.rate_hz
        return {"source": status.source, "state": "streaming", "samples": status.samples,
                "rate_hz": None if math.isnan(rate) else round(rate, 1),
                "nominal_rate_hz": status.nominal_rate_hz, "predictions": status.predictions,
                "not_ok": status.not_ok, "lost": status.lost, "bad": status.bad}


def _flag_word(flags: int) -> str | None:
    """The marker a trace point carries: the most telling flag it has, or None."""
    if flags & SampleFlag.ELECTRODE_OFF:
        return "electrode off"
    if flags & SampleFlag.GAP:
        return "gap"
    if flags & SampleFlag.SATURATED:
        return "saturated"
    return None


__all__ = ["EVENT_BUFFER", "HISTORY_S", "TRACE_RATE_HZ", "DashboardHub", "Event"]
