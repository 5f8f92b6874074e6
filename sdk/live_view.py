"""The live table for a person at a terminal (``emotionkd-sdk stream --format table``): bars,
sparklines of the recent history and the quality strip, redrawn in place with rich."""

from __future__ import annotations

import math
import sys
import threading
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

from emotionkd.sdk.outputs import StreamStatus, quality_word
from emotionkd.sdk.prediction import Prediction


def bar(probability: float | None, width: int = 24) -> str:
    """A horizontal bar for a probability (``·`` all over when there is none)."""
    if probability is None:
        return "·" * width
    filled = int(round(max(0.0, min(1.0, probability)) * width))
    return "█" * filled + "░" * (width - filled)


SPARK_LEVELS = "▁▂▃▄▅▆▇█"

#: the live view's short word for each quality code (the detail line says the rest)
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


__all__ = ["TableOutput", "bar", "quality_strip_text", "sparkline"]
