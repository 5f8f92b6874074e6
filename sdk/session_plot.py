"""A picture of one session: ``emotionkd-sdk plot rec.csv [--predictions p.jsonl] -o session.png``.

Two panels on one time axis: the skin conductance with the stretches the device or the host
flagged shaded (gaps, electrodes off, saturation), and the arousal and valence P(high) per
window with the windows that failed the quality gate marked by their reason. Needs matplotlib
(``pip install 'emotionkd[plot]'``); drawn with the Agg backend, so no display is needed.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.firmware_bridge.samples import SampleFlag
from emotionkd.sdk.outputs import quality_word
from emotionkd.sdk.quality import ELECTRODE_OFF, FLAT_LINE, GAP, IMPLAUSIBLE_UNIT, SATURATION

#: flag -> (legend label, colour) of the shading on the conductance panel, drawn in this order
FLAG_SHADES: tuple[tuple[int, str, str], ...] = (
    (SampleFlag.GAP, "gap (no sample)", "#adb5bd"),
    (SampleFlag.ELECTRODE_OFF, "electrode off", "#fd7e14"),
    (SampleFlag.SATURATED, "saturated", "#e03131"),
)
#: quality code -> marker colour on the prediction panel
QUALITY_COLOURS = {GAP: "#868e96", ELECTRODE_OFF: "#fd7e14", SATURATION: "#e03131",
                   FLAT_LINE: "#7048e8", IMPLAUSIBLE_UNIT: "#c2255c"}


def flagged_spans(flags: npt.NDArray[np.uint8], bit: int, rate_hz: float) -> list[tuple[float, float]]:
    """Contiguous runs of samples with ``bit`` set, as (start_s, end_s) spans."""
    on = (np.asarray(flags) & bit) != 0
    if not on.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate(([0], on.astype(np.int8), [0]))))
    return [(float(a) / rate_hz, float(b) / rate_hz) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """Predictions written by ``stream --format jsonl`` or ``--format csv`` (one dict per window).

    Raises:
        DataError: missing file, or a line that is not a prediction (with its line number).
    """
    if not path.is_file():
        raise DataError(f"predictions file {str(path)!r} does not exist", path=str(path))
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8", newline="") as f:
        if path.suffix.lower() == ".csv":
            for n, row in enumerate(csv.DictReader(f), 2):
                rows.append(_checked({k: _csv_value(v) for k, v in row.items()}, path, n))
        else:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(_checked(json.loads(line), path, n))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{str(path)!r} line {n}: not JSON ({exc.msg})", path=str(path)) from exc
    return rows


def _csv_value(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _checked(row: Any, path: Path, line: int) -> dict[str, Any]:
    if not isinstance(row, dict) or not {"start_s", "end_s", "quality"} <= row.keys():
        raise DataError(f"{str(path)!r} line {line}: not a prediction (needs start_s, end_s, quality); "
                        "write one with emotionkd-sdk stream --format jsonl", path=str(path))
    return row


def plot_session(conductance_us: npt.NDArray[np.float64], flags: npt.NDArray[np.uint8], rate_hz: float,
                 predictions: Sequence[dict[str, Any]], output: Path, *, title: str = "") -> Path:
    """Draw the session and save it to ``output`` (PNG, SVG or PDF by its suffix).

    Args:
        conductance_us: (n,) µS, NaN where missing.
        flags: (n,) :class:`SampleFlag` bits.
        rate_hz: the samples' rate (Hz).
        predictions: dicts with ``start_s``, ``end_s``, ``arousal``, ``valence``, ``quality``
            (as :meth:`Prediction.to_dict` writes them); may be empty.
        output: the image to write.
        title: a line above the panels.
    """
    plt = _pyplot()
    t = np.arange(conductance_us.size) / rate_hz
    fig, (ax_gsr, ax_prob) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=(3, 2),
                                          layout="constrained")
    ax_gsr.plot(t, conductance_us, color="#2b8a3e", lw=1.0, label="skin conductance")
    for bit, label, colour in FLAG_SHADES:
        for i, (a, b) in enumerate(flagged_spans(flags, bit, rate_hz)):
            ax_gsr.axvspan(a, b, color=colour, alpha=0.3, lw=0, label=label if i == 0 else None)
    # Scale to the samples that measure skin: a saturated or open-electrode stretch (shaded)
    # would otherwise flatten the rest of the session into a line.
    trusted = np.isfinite(conductance_us) & ((flags & (SampleFlag.SATURATED | SampleFlag.ELECTRODE_OFF)) == 0)
    if trusted.any():
        lo, hi = float(conductance_us[trusted].min()), float(conductance_us[trusted].max())
        pad = max(0.05, 0.1 * (hi - lo))
        ax_gsr.set_ylim(lo - pad, hi + pad)
    ax_gsr.set_ylabel("skin conductance (µS)")
    ax_gsr.legend(loc="upper right", fontsize=8, ncols=4)
    ax_gsr.set_title(title, loc="left", fontsize=10)

    ends = np.array([float(p["end_s"]) for p in predictions])
    for name, colour in (("arousal", "#d9480f"), ("valence", "#1c7ed6")):
        values = np.array([math.nan if p.get(name) is None else float(p[name]) for p in predictions])
        ax_prob.plot(ends, values, color=colour, lw=1.5, label=f"{name} P(high)")
    for quality in sorted({str(p["quality"]) for p in predictions} - {"ok"}):
        at = [float(p["end_s"]) for p in predictions if p["quality"] == quality]
        ax_prob.plot(at, np.full(len(at), -0.06), "|", ms=9, mew=2, color=QUALITY_COLOURS.get(quality, "black"),
                     label=f"{quality_word(quality)} ({len(at)} windows)")
    ax_prob.axhline(0.5, color="#adb5bd", lw=0.8, ls="--")
    ax_prob.set_ylim(-0.12, 1.02)
    ax_prob.set_ylabel("P(high)")
    ax_prob.set_xlabel("time (s) · predictions drawn at each window's end")
    if predictions:
        ax_prob.legend(loc="upper right", fontsize=8, ncols=4)
    else:
        ax_prob.text(0.5, 0.5, "no predictions", transform=ax_prob.transAxes, ha="center", color="#868e96")
    ax_prob.set_xlim(0, max(float(t[-1]) if t.size else 0.0, float(ends.max()) if ends.size else 0.0) or 1.0)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(output, dpi=100)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot write {str(output)!r}: {exc}") from exc
    finally:
        plt.close(fig)
    return output


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigError(f"plot needs matplotlib: pip install 'emotionkd[plot]' ({exc})") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


__all__ = ["FLAG_SHADES", "QUALITY_COLOURS", "flagged_spans", "plot_session", "read_predictions"]
