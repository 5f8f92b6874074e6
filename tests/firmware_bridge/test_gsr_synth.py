"""The emulated wearer's arousal looks like real stress: its rest -> aroused contrast, measured
with the functions that measured Stress-Predict, lies in the measured ranges."""

from __future__ import annotations

import numpy as np
import pytest

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, GsrSynthesizer
from emotionkd.training.eda_contrast import summarise_figures, transition_figures

# `emotionkd-train eda-contrast ../shared/data/stress-predict`: median and quartiles over 64
# rest -> stress transitions of 24 people (Empatica E4, 4 Hz); cited in gsr_synth's docstring.
MEASURED = {
    "level_ratio": (1.238, 1.035, 1.584),
    "ratio_at_10s": (1.043, 0.981, 1.170),
    "ratio_at_30s": (1.048, 0.992, 1.185),
    "ratio_at_60s": (1.117, 1.014, 1.336),
    "ratio_at_120s": (1.138, 1.018, 1.361),
    "ratio_at_180s": (1.181, 1.016, 1.482),
    "ratio_at_300s": (1.333, 1.113, 1.959),
    "scr_per_min_rest": (4.524, 1.346, 7.667),
    "scr_per_min_stress": (5.682, 1.105, 11.029),
    "scr_rise_us_rest": (0.064, 0.037, 0.111),
}


def _synthetic_transitions(seeds: int = 8) -> dict[str, dict[str, float]]:
    rows = []
    for seed in range(seeds):
        synth = GsrSynthesizer(GsrSynthConfig(rate_hz=128.0), seed=seed, arousal=0.0)
        rest = synth.read(300 * 128)
        synth.set_arousal(1.0)
        stress = synth.read(360 * 128)
        e4 = [x.reshape(-1, 32).mean(axis=1) for x in (rest, stress)]  # what a 4 Hz E4 would record
        rows.append(transition_figures(e4[0], e4[1], 4.0))
    return summarise_figures(rows)


def test_rest_to_aroused_contrast_lies_in_the_range_measured_on_stress_predict() -> None:
    synthetic = _synthetic_transitions()
    for name, (_, q25, q75) in MEASURED.items():
        assert q25 <= synthetic[name]["median"] <= q75, (name, synthetic[name], MEASURED[name])
    # the level carries arousal and rises over minutes: little in 10 s, clearly by 2 and 5 minutes
    course = [synthetic[f"ratio_at_{t}s"]["median"] for t in (10, 60, 120, 300)]
    assert course == sorted(course) and course[0] < 1.05 and course[-1] > 1.2
    # SCRs change little (measured rise 0.064 -> 0.066 µS)
    assert synthetic["scr_rise_us_stress"]["median"] / synthetic["scr_rise_us_rest"]["median"] < 1.3


def test_constant_arousal_keeps_its_level_and_a_return_to_rest_comes_back() -> None:
    synth = GsrSynthesizer(GsrSynthConfig(rate_hz=16.0, drift_us_per_sqrt_min=0.0, noise_us=0.0,
                                          scr_rate_per_min=(0.0, 0.0)), seed=1, arousal=0.6)
    assert synth.read(16 * 600) == pytest.approx(5.0)  # starts settled at tonic_us for its arousal
    synth.set_arousal(0.0)
    calm = synth.read(16 * 3600)
    assert calm[-1] == pytest.approx(5.0 / (1 + 0.97 * 0.6), rel=0.01) and np.all(np.diff(calm) <= 1e-12)


def test_tonic_parameters_are_checked() -> None:
    with pytest.raises(ConfigError, match="tonic_tau_s"):
        GsrSynthConfig(tonic_tau_s=0.0)
