"""Where predictions go: a live table for people, JSON lines and CSV for programs.

Every output has ``write(prediction, status)`` and ``close()``; :class:`StreamStatus` carries
what a display shows besides the prediction (rate, counters). The LSL outlet lives in
:mod:`emotionkd.sdk.lsl` (optional extra).
"""

from __future__ import annotations

import csv
import json
import math
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

import numpy as np

from emotionkd.firmware_bridge.errors import DataError
from emotionkd.sdk.prediction import Prediction

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


def bar(probability: float | None, width: int = 24) -> str:
    """A horizontal bar for a probability (``·`` all over when there is none)."""
    if probability is None:
        return "·" * width
    filled = int(round(max(0.0, min(1.0, probability)) * width))
    return "█" * filled + "░" * (width - filled)


SPARK_LEVELS = "▁▂▃▄▅▆▇█"

#: the live view's short word for each quality code (the detail line says the rest)
QUALITY_WORDS: Mapping[str, str] = {
    "ok": "ok", "gap": "gap", "electrode_off": "electrode off", "saturation": "saturated",
    "flat_line": "flat line", "implausible_unit": "wrong unit?",
}


def quality_word(quality: str) -> str:
    """The short word the live view shows for a quality code (the code itself if unknown)."""
    return QUALITY_WORDS.get(quality, quality.replace("_", " "))


def sparkline(values: Sequence[float], width: int, low: float | None = None, high: float | None = None) -> str:
    """``values`` (oldest first) as at most ``width`` block characters, newest at the right.

    More values than columns are averaged in consecutive groups; a group with no finite value
    (windows that failed the quality gate) is a blank. ``low``/``high`` fix the scale
    (default: the finite values' range).
    """
    if width <= 0 or not values:
        return ""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size > width:
        groups = np.array_split(arr, width)
        arr = np.array([float(np.nanmean(g)) if np.isfinite(g).any() else math.nan for g in groups])
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return " " * arr.size
    lo = float(finite.min()) if low is None else low
    hi = float(finite.max()) if high is None else high
    span = hi - lo
    out = []
    for v in arr:
        if not math.isfinite(v):
            out.append(" ")
            continue
        level = 0.5 if span <= 0 else (min(max(v, lo), hi) - lo) / span
        out.append(SPARK_LEVELS[min(len(SPARK_LEVELS) - 1, int(level * len(SPARK_LEVELS)))])
    return "".join(out)


def quality_strip_text(ok: Sequence[bool], width: int) -> str:
    """Windows' quality (oldest first) in the sparklines' columns: ``·`` all passed, ``!`` a
    window in the column failed the quality gate."""
    if width <= 0 or not ok:
        return ""
    groups = np.array_split(np.asarray(ok, dtype=bool), min(width, len(ok)))
    return "".join("·" if g.all() else "!" for g in groups)


class TableOutput:
    """The live view for a person at a terminal.

    On a terminal it keeps one block in place with :class:`rich.live.Live`: the source and its
    measured rate, the current window's P(high) for arousal and valence with bars, sparklines of
    arousal, valence and skin-conductance level over the last ``history_s``, the quality as a
    short word (the ``d`` key shows its detail and the recent failures), and the counters. Every line
    is cut to the terminal's width with an ellipsis, never wrapped, so the block redraws in
    place at any width (60 columns and up show everything). Before the first window it says
    how long until there is one. Elsewhere (a pipe, a log) it prints one line per prediction.

    Args:
        stream: where to draw (a terminal) or write lines.
        live: force the live view on or off (default: whether ``stream`` is a terminal).
        header: a line written once before everything else.
        status: the stream's :class:`StreamStatus` (the live view shows it before the first
            prediction too).
        window_s: the classifier's window (s), for the "waiting for the first window" state.
        history_s: how far back the sparklines reach (s).
        width: columns to draw in (default: the terminal's, followed when it is resized).
    """

    def __init__(self, stream: TextIO, *, live: bool | None = None, header: str = "",
                 status: StreamStatus | None = None, window_s: float = 4.0, history_s: float = 300.0,
                 width: int | None = None) -> None:
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self.status = status if status is not None else StreamStatus()
        self.window_s = window_s
        self.history_s = history_s
        self._history: deque[Prediction] = deque(maxlen=4096)
        self._lock = threading.Lock()
        self._live: Any = None
        self.show_detail = False
        self._keys: threading.Thread | None = None
        self._stop_keys = threading.Event()
        if not self.live:
            if header:
                stream.write(header + "\n")
            stream.write(f"{'window (s)':>13}  {'arousal P(high)':>15}  {'valence P(high)':>15}  "
                         f"{'SCL µS':>7}  quality\n")
            stream.flush()
            return
        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=stream, force_terminal=True, width=width, highlight=False,
                                soft_wrap=False)
        if header:
            self._console.print(self._line(header))
        redirect = stream is sys.stdout  # messages on stdout/stderr then print above the view
        self._live = Live(console=self._console, get_renderable=self._render, refresh_per_second=4,
                          redirect_stdout=redirect, redirect_stderr=redirect, vertical_overflow="crop")
        self._live.start()
        if redirect and _stdin_is_terminal():  # the person can press keys: d shows the detail
            self._keys = threading.Thread(target=self._read_keys, name="emotionkd-live-keys", daemon=True)
            self._keys.start()

    def write(self, prediction: Prediction, status: StreamStatus) -> None:
        p = prediction
        if not self.live:
            quality = "ok" if p.ok else f"{p.quality}: {p.quality_detail}"
            self.stream.write(
                f"{p.start_s:6.1f}–{p.end_s:6.1f}  {_prob(p.arousal, p.arousal_label):>15}  "
                f"{_prob(p.valence, p.valence_label):>15}  {p.conductance_us:7.3f}  {quality}\n")
            self.stream.flush()
            return
        with self._lock:
            self.status = status
            self._history.append(p)
            while self._history and self._history[0].end_s < p.end_s - self.history_s:
                self._history.popleft()
        self._live.refresh()

    def note(self, text: str) -> None:
        """An event line (e.g. "arousal rises"), printed above the live block."""
        if self._live is None:
            self.stream.write(text + "\n")
            self.stream.flush()
        else:
            self._console.print(self._line(text))

    def close(self) -> None:
        if self._keys is not None:  # gives the terminal its settings back
            self._stop_keys.set()
            self._keys.join(timeout=2.0)
            self._keys = None
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.stream.flush()

    def toggle_detail(self) -> None:
        """Show or hide the quality detail (the ``d`` key)."""
        self.show_detail = not self.show_detail
        if self._live is not None:
            self._live.refresh()

    def _read_keys(self) -> None:
        """Read single keys from the terminal (cbreak: no echo, Ctrl-C still interrupts)."""
        import os
        import select

        try:
            import termios
            import tty
        except ImportError:  # not a POSIX terminal (Windows): no keys, the view works without
            return
        fd = sys.stdin.fileno()
        try:
            saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        except termios.error:
            return
        try:
            while not self._stop_keys.is_set():
                if select.select([fd], [], [], 0.2)[0] and os.read(fd, 1).lower() == b"d":
                    self.toggle_detail()
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    # --- drawing ---------------------------------------------------------------------------
    @staticmethod
    def _line(text: str, style: str = "") -> Any:
        from rich.text import Text

        return Text(text, style=style, no_wrap=True, overflow="ellipsis")

    def _render(self) -> Any:
        from rich.console import Group

        with self._lock:
            lines = self.render_lines(self._console.width)
        return Group(*(self._line(text, style) for text, style in lines))

    def render_lines(self, width: int) -> list[tuple[str, str]]:
        """The live block as (text, rich style) lines for ``width`` columns (longer lines are
        cut with an ellipsis when drawn)."""
        status = self.status
        rate = status.rate_hz
        rate_text = "rate –" if math.isnan(rate) else f"{rate:.1f} Hz measured"
        nominal = f" ({status.nominal_rate_hz:g} Hz nominal)" if status.nominal_rate_hz else ""
        lines: list[tuple[str, str]] = [(f"{status.source or 'connecting…'} · {rate_text}{nominal}", "bold")]
        if not self._history:
            if status.samples == 0:
                lines.append(("waiting for samples…", "yellow"))
            else:
                left = math.ceil(max(0.0, self.window_s - status.signal_s))
                lines.append((f"waiting for the first window ({left} s of signal to go)", "yellow"))
            lines.append(self._counters(status))
            return lines
        p = self._history[-1]
        label_w, now_w, bar_w = 9, 11, 12
        spark_w = max(0, width - label_w - now_w - bar_w - 3)
        span_s = p.end_s - self._history[0].start_s
        lines.append((f"window {p.start_s:.1f}–{p.end_s:.1f} s · quality {quality_word(p.quality)}",
                      "green" if p.ok else "bold yellow"))
        lines.append((f"{'':<{label_w}}{'P(high)':<{now_w}}{'':<{bar_w}} "
                      f"history, last {_span(span_s)} →", "dim"))
        rows = [("arousal", p.arousal, p.arousal_label, [q.arousal for q in self._history]),
                ("valence", p.valence, p.valence_label, [q.valence for q in self._history])]
        for name, prob, label, series in rows:
            now = "–" if prob is None else f"{prob:.2f} {label}"
            spark = sparkline([math.nan if v is None else v for v in series], spark_w, 0.0, 1.0)
            lines.append((f"{name:<{label_w}}{now:<{now_w}}{bar(prob, bar_w - 2):<{bar_w}} {spark}", ""))
        scl = [q.conductance_us for q in self._history]
        finite = [v for v in scl if math.isfinite(v)]
        scl_now = "–" if not math.isfinite(p.conductance_us) else f"{p.conductance_us:.3f}"
        scale = f"{min(finite):.2f}–{max(finite):.2f} µS" if finite else ""
        lines.append((f"{'SCL µS':<{label_w}}{scl_now:<{now_w}}{scale:<{bar_w}} {sparkline(scl, spark_w)}", ""))
        quality_strip = quality_strip_text([q.ok for q in self._history], spark_w)
        lines.append((f"{'quality':<{label_w}}{quality_word(p.quality):<{now_w + bar_w}} {quality_strip}",
                      "" if p.ok else "yellow"))
        if self.show_detail:
            problems = Counter(quality_word(q.quality) for q in self._history if not q.ok)
            lines.append((f"{'':<{label_w}}{p.quality_detail or 'the window passed the quality gate'}", "yellow"))
            lines.append((f"{'':<{label_w}}last {_span(span_s)}: "
                          + (", ".join(f"{n} {word}" for word, n in problems.most_common()) or "no failed window")
                          + " · d hides this", "dim"))
        else:
            lines.append((f"{'':<{label_w}}press d for the detail" if not p.ok else "", "dim"))
        lines.append(self._counters(status))
        return lines

    @staticmethod
    def _counters(status: StreamStatus) -> tuple[str, str]:
        return (f"predictions {status.predictions} ({status.not_ok} not ok) · lost {status.lost} · "
                f"bad {status.bad} · {status.signal_s:.0f} s of signal", "dim")


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdin
        return False


def _span(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _prob(probability: float | None, label: str | None) -> str:
    return "–" if probability is None else f"{probability:.2f} {label}"


__all__ = ["CSV_COLUMNS", "CsvOutput", "JsonlOutput", "PredictionOutput", "QUALITY_WORDS", "StreamStatus",
           "TableOutput", "bar", "quality_strip_text", "quality_word", "sparkline"]
