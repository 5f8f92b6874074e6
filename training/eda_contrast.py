"""What changes in real wrist EDA from rest to stress: the figures the emulated wearer follows.

For every rest → stress transition in labelled recordings (a stress span that starts within
``max_gap_s`` of the end of a rest span), measured on the raw µS:

* **tonic level**: mean of the stress span against the mean of the rest's last ``rest_tail_s``
  seconds, as a difference (µS) and a ratio;
* **time course**: the level in 10 s around ``t`` seconds after the stress onset, as a ratio to
  that rest level (a transition counts at ``t`` only when its stress span lasts ``t + 5`` s);
* **SCRs**: responses per minute and mean rise (µS) in the whole rest span and in the stress
  span, with the detector of the real-data baselines (:func:`emotionkd.training.real_eval.raw_features`:
  a run of rising samples adding up to 0.02 µS or more).

:func:`firmware_bridge.gsr_synth <emotionkd.firmware_bridge.gsr_synth.GsrSynthConfig>` cites the
Stress-Predict figures (``emotionkd-train eda-contrast ../shared/data/stress-predict``) and its
test measures the synthesizer with the same functions. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import DataError
from emotionkd.training.datasets.recordings import Recording
from emotionkd.training.real_eval import fill_gaps, raw_features

COURSE_S: Final = (10.0, 30.0, 60.0, 120.0, 180.0, 300.0)
FIGURES: Final = ("level_delta_us", "level_ratio", *(f"ratio_at_{int(t)}s" for t in COURSE_S),
                  "scr_per_min_rest", "scr_per_min_stress", "scr_rise_us_rest", "scr_rise_us_stress")


def transition_figures(rest_us: npt.NDArray[np.float64], stress_us: npt.NDArray[np.float64], rate_hz: float,
                       rest_tail_s: float = 60.0) -> dict[str, float]:
    """The figures of :data:`FIGURES` for one rest span followed by one stress span (µS at
    ``rate_hz``; NaN samples interpolated); course points beyond the stress span are NaN."""
    rest, stress = fill_gaps(np.asarray(rest_us, float)), fill_gaps(np.asarray(stress_us, float))
    level_rest = float(np.mean(rest[-int(round(rest_tail_s * rate_hz)):]))
    level_stress = float(np.mean(stress))
    out = {"level_delta_us": level_stress - level_rest, "level_ratio": level_stress / level_rest}
    for t in COURSE_S:
        lo, hi = int(round((t - 5) * rate_hz)), int(round((t + 5) * rate_hz))
        out[f"ratio_at_{int(t)}s"] = float(np.mean(stress[lo:hi])) / level_rest if stress.size >= hi else np.nan
    for name, x in (("rest", rest), ("stress", stress)):
        features = raw_features(x, rate_hz)
        out[f"scr_per_min_{name}"], out[f"scr_rise_us_{name}"] = float(features[2]), float(features[3])
    return out


def rest_stress_transitions(recordings: Iterable[tuple[int, Recording]], *, max_gap_s: float = 10.0,
                            min_stress_s: float = 120.0, min_valid: float = 0.9,
                            ) -> list[tuple[int, npt.NDArray[np.float64], npt.NDArray[np.float64], float]]:
    """(subject, rest µS, stress µS, rate Hz) for each arousal-labelled rest span followed within
    ``max_gap_s`` by a stress span of at least ``min_stress_s``, both ``min_valid`` finite."""
    out = []
    for sid, rec in recordings:
        spans = [s for s in rec.segments if s.labels[0] >= 0]
        for rest, stress in zip(spans, spans[1:], strict=False):
            if not (rest.labels[0] == 0 and stress.labels[0] == 1):
                continue
            if (stress.start - rest.end) > max_gap_s * rec.rate_hz or (stress.end - stress.start) < min_stress_s * rec.rate_hz:
                continue
            r, s = rec.gsr[rest.start:rest.end], rec.gsr[stress.start:stress.end]
            if np.isfinite(r).mean() >= min_valid and np.isfinite(s).mean() >= min_valid:
                out.append((sid, r, s, rec.rate_hz))
    return out


def summarise_figures(rows: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Median, quartiles and count of each figure over transitions (NaN ones left out)."""
    if not rows:
        raise DataError("no rest -> stress transition to measure")
    out = {}
    for name in FIGURES:
        v = np.array([r[name] for r in rows], float)
        v = v[np.isfinite(v)]
        out[name] = ({"median": float(np.median(v)), "q25": float(np.percentile(v, 25)),
                      "q75": float(np.percentile(v, 75)), "n": int(v.size)} if v.size else
                     {"median": np.nan, "q25": np.nan, "q75": np.nan, "n": 0})
    return out


def contrast_markdown(summary: Mapping[str, Mapping[str, float]], transitions: int, subjects: int) -> str:
    lines = [f"{transitions} rest -> stress transitions, {subjects} participants", "",
             "| figure | median | quartiles | n |", "|---|---|---|---|"]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['median']:.3f} | {s['q25']:.3f} – {s['q75']:.3f} | {s['n']} |")
    return "\n".join(lines)


__all__ = ["COURSE_S", "FIGURES", "contrast_markdown", "rest_stress_transitions", "summarise_figures",
           "transition_figures"]
