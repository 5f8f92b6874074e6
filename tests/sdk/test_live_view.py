"""The live view a person watches: fits the terminal, explains itself, measures the rate honestly."""

from __future__ import annotations

import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest

from emotionkd.sdk.classifier import Prediction
from emotionkd.sdk.live_view import TableOutput, quality_strip_text, sparkline
from emotionkd.sdk.outputs import StreamStatus


def _prediction(start_s: float, quality: str = "ok", arousal: float | None = 0.7) -> Prediction:
    ok = quality == "ok"
    return Prediction(start_s, start_s + 4.0, arousal if ok else None, 0.3 if ok else None,
                      "high" if ok else None, "low" if ok else None, quality,
                      "" if ok else "electrode off in 256 of 512 samples, a very long detail " * 3,
                      0 if ok else 256, 5.0 + 0.01 * start_s)


@pytest.mark.parametrize("width", [60, 80, 132])
def test_every_line_fits_the_width_with_an_ellipsis(width: int) -> None:
    screen = StringIO()
    status = StreamStatus(source="a sensor with a really quite remarkably long name " * 3, nominal_rate_hz=128)
    table = TableOutput(screen, live=True, status=status, width=width)
    for i in range(40):
        p = _prediction(float(i), "electrode_off" if 10 <= i < 15 else "ok")
        status.count(p)
        table.write(p, status)
    lines = table.render_lines(width)
    table.close()
    texts = [text for text, _ in lines]
    assert any("P(high)" in t for t in texts) and texts[0].startswith("a sensor")
    from rich.console import Console

    frame = StringIO()
    Console(file=frame, width=width, force_terminal=False).print(table._render())
    visible = frame.getvalue().splitlines()
    assert len(visible) == len(lines)  # one screen row per line: nothing wrapped
    assert all(len(line) <= width for line in visible), max(map(len, visible))
    assert visible[0].endswith("…")  # the long source was cut, not wrapped


def test_history_sparklines_and_the_waiting_state() -> None:
    status = StreamStatus(source="sim", nominal_rate_hz=128)
    table = TableOutput(StringIO(), live=False, status=status)  # render_lines needs no terminal
    table.live, table._history = True, table._history  # draw as the live view would
    assert "waiting for samples" in table.render_lines(80)[1][0]
    status.received(128 * 3, now=100.0)
    assert "waiting for the first window (1 s of signal to go)" in table.render_lines(80)[1][0]
    for i in range(10):
        table._history.append(_prediction(float(i), arousal=i / 10))
    arousal = next(text for text, _ in table.render_lines(80) if text.startswith("arousal"))
    assert arousal.split()[1:3] == ["0.90", "high"] and arousal.endswith("▁▁▂▃▄▅▅▆▇█")


def test_sparkline_averages_into_columns_and_leaves_failed_windows_blank() -> None:
    assert sparkline([0.0, 1.0], 10, 0.0, 1.0) == "▁█"
    assert sparkline([0.0, 0.0, 1.0, 1.0], 2, 0.0, 1.0) == "▁█"
    assert sparkline([0.5, math.nan, 0.5], 3, 0.0, 1.0) == "▅ ▅"
    assert sparkline([], 5) == "" and sparkline([1.0], 0) == ""


def test_the_quality_strip_uses_the_sparklines_columns() -> None:
    ok = [True] * 10 + [False] * 2 + [True] * 88  # 100 windows into 10 columns
    assert quality_strip_text(ok, 10) == "·!········"
    assert len(sparkline([0.5] * 100, 10)) == 10
    assert quality_strip_text([True, False], 10) == "·!" and quality_strip_text([], 5) == ""


def test_the_measured_rate_does_not_count_the_first_block_twice() -> None:
    status = StreamStatus()
    for i in range(41):  # 128 Hz in 16-sample blocks, 0.125 s apart, for 5 s
        status.received(16, now=10.0 + i * 0.125)
    assert status.rate_hz == pytest.approx(128.0)
    assert math.isnan(StreamStatus().rate_hz)


def test_plain_lines_when_not_a_terminal_label_p_high() -> None:
    screen = StringIO()
    table = TableOutput(screen, status=StreamStatus())
    table.write(_prediction(0.0), StreamStatus())
    header, row = screen.getvalue().splitlines()
    assert "arousal P(high)" in header and "0.70 high" in row and "\x1b" not in row


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (make system-deps)")
def test_tmux_80x24_electrode_off_no_wrapped_or_stale_lines(test_model: Path, tmp_path: Path) -> None:
    """A real terminal at 80×24: every capture shows each row of the view exactly once, and no
    line longer than the terminal (capture-pane -J joins wrapped lines)."""
    session = f"ekd-live-{os.getpid()}"
    script = tmp_path / "run.sh"
    done = tmp_path / "done"
    script.write_text(
        f"cd {shlex.quote(str(tmp_path))}\n"
        f"{shlex.quote(sys.executable)} -m emotionkd.sdk.cli stream --model {shlex.quote(str(test_model))} "
        "--source 'sim://?rate=128&faults=electrode_off@5:4' --duration 14\n"
        f"stty -a > {shlex.quote(str(tmp_path / 'stty.txt'))}\n"
        f"touch {shlex.quote(str(done))}\nsleep 60\n")
    env = {**os.environ, "TERM": "xterm-256color"}
    subprocess.run(["tmux", "-f", "/dev/null", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    f"bash {shlex.quote(str(script))}"], check=True, env=env, timeout=30)
    captures: list[str] = []
    pressed_at = None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            time.sleep(1.0)
            captures.append(subprocess.run(["tmux", "capture-pane", "-p", "-J", "-t", session],
                                           capture_output=True, text=True, check=True, timeout=10).stdout)
            if pressed_at is None and "quality electrode off" in captures[-1]:
                assert "press d for the detail" in captures[-1]
                subprocess.run(["tmux", "send-keys", "-t", session, "d"], check=True, timeout=10)
                pressed_at = len(captures)
            if done.exists():
                break
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, timeout=10)
    assert done.exists(), captures[-1]
    screens = [c for c in captures if "P(high)" in c]
    assert len(screens) >= 5, captures[-1]
    assert any("quality electrode off" in c for c in screens) and "quality ok" in screens[-1]
    assert any("waiting for the first window" in c for c in captures)
    for screen in captures:
        lines = screen.splitlines()
        assert all(len(line) <= 80 for line in lines), screen
        for row in ("arousal ", "valence ", "SCL µS ", "quality ", "predictions "):
            assert sum(line.startswith(row) for line in lines) <= 1, screen  # never a stale copy
    assert pressed_at is not None
    assert any("electrode off in" in c and "d hides this" in c for c in captures[pressed_at:])  # detail on demand
    stty = (tmp_path / "stty.txt").read_text().split()
    assert "icanon" in stty and "echo" in stty  # the terminal got its settings back
    final = captures[-1]
    assert "128.0 Hz measured" in final or "127.9 Hz measured" in final or "128.1 Hz measured" in final
    assert "predictions (" in final and "failed the quality gate" in final


def test_every_quality_code_has_one_word_and_a_plot_colour() -> None:
    # the codes are quality.py's; the words and colours are keyed by them, so none is missing
    from emotionkd.sdk.outputs import QUALITY_WORDS
    from emotionkd.sdk.quality import OK, QUALITY_REASONS
    from emotionkd.sdk.session_plot import QUALITY_COLOURS

    assert set(QUALITY_WORDS) == set(QUALITY_REASONS)
    assert set(QUALITY_COLOURS) == set(QUALITY_REASONS) - {OK}
