"""Streams in lockstep (a gateway cohort): preprocessing and quality gate vectorised across
streams give each stream exactly what ``EmotionClassifier.push`` gives it alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx_test_models import build_test_model
from test_gateway import _same

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, GsrSynthesizer
from emotionkd.firmware_bridge.samples import SampleFlag
from emotionkd.sdk.classifier import EmotionClassifier
from emotionkd.sdk.gateway import Gateway
from emotionkd.sdk.preprocessing import DEFAULT_PREPROCESSING
from emotionkd.sdk.quality import (
    QualityConfig,
    WindowFlags,
    judge_window,
    window_levels_us,
    windows_pass,
)


@pytest.fixture(scope="module")
def v2_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_test_model(tmp_path_factory.mktemp("v2") / "v2.onnx", preprocessing=DEFAULT_PREPROCESSING)


def _cohort_signals(rate: float, seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(S, n) µS and flags: clean streams and one of every failure the gate knows."""
    n = int(rate * seconds)
    x = np.stack([GsrSynthesizer(GsrSynthConfig(rate_hz=rate), seed=seed + k).read(n) for k in range(7)])
    flags = np.zeros(x.shape, np.uint8)
    x[1, int(rate * 20):int(rate * 24)] = np.nan  # a dropout: gap windows
    x[2, int(rate * 5):int(rate * 5) + 2] = np.nan  # short loss, held and counted
    flags[3, int(rate * 30):int(rate * 31)] = SampleFlag.ELECTRODE_OFF
    x[4] = 4.0  # a stuck sensor: flat line
    x[5] *= 1e3  # nS pushed as µS: implausible
    x[6, int(rate * 40):int(rate * 42)] = 0.001  # contact lost without a flag
    flags[np.isnan(x)] |= np.uint8(SampleFlag.GAP)
    return x, flags


@pytest.mark.parametrize(("rate", "chunk_s"), [(16.0, 1.0), (128.0, 1.0), (4.0, 2.5), (32.0, 0.75)])
def test_cohort_gives_each_stream_the_classifiers_predictions(v2_model: Path, rate: float, chunk_s: float) -> None:
    x, flags = _cohort_signals(rate, 75.0, seed=int(rate))
    chunk = int(round(rate * chunk_s))
    expected = []
    for s in range(x.shape[0]):
        clf = EmotionClassifier(v2_model, hop_s=1.0)
        got = [p for i in range(0, x.shape[1], chunk)
               for p in clf.push(x[s, i:i + chunk], sample_rate_hz=rate, flags=flags[s, i:i + chunk])]
        expected.append(got + clf.flush())
    ids = [f"w{s}" for s in range(x.shape[0])]
    results: dict[str, list] = {sid: [] for sid in ids}
    with Gateway(v2_model, hop_s=1.0, max_batch=5, workers=2) as gateway:
        gateway.add_cohort("ward", ids, sample_rate_hz=rate)
        for i in range(0, x.shape[1], chunk):
            gateway.push_cohort("ward", x[:, i:i + chunk], flags[:, i:i + chunk])
            for sid, predictions in gateway.run_batch().items():
                results[sid] += predictions
        for sid, predictions in gateway.remove_cohort("ward").items():
            results[sid] += predictions
    for s, sid in enumerate(ids):
        _same(results[sid], expected[s])
    reasons = {p.quality for ps in expected for p in ps}
    assert {"ok", "gap", "electrode_off", "flat_line", "implausible_unit"} <= reasons  # the test sees every path


def test_cohorts_and_single_streams_share_one_model_call(v2_model: Path) -> None:
    x, _ = _cohort_signals(16.0, 40.0, seed=3)
    x = np.stack([x[0], x[2], 1.1 * x[0], 0.9 * x[2]])  # four clean streams
    with Gateway(v2_model, hop_s=1.0, max_batch=1000) as gateway:
        calls: list[int] = []
        run = gateway.model.run
        gateway.model.run = lambda f: (calls.append(f.shape[0]), run(f))[1]  # type: ignore[method-assign,func-returns-value]
        gateway.add_cohort("c", ["a", "b", "c"], sample_rate_hz=16.0)
        gateway.add_stream("solo")
        for i in range(0, x.shape[1], 16):
            gateway.push_cohort("c", x[:3, i:i + 16])
            gateway.push("solo", x[3, i:i + 16], sample_rate_hz=16.0)
            made = gateway.run_batch()
        assert set(made) == {"a", "b", "c", "solo"}
        assert gateway.streams == ["solo", "a", "b", "c"]
    assert calls and all(n == 4 for n in calls[-5:])  # one call per tick for all four streams


def test_cohort_errors_are_clear(v2_model: Path) -> None:
    with Gateway(v2_model) as gateway:
        gateway.add_stream("a")
        with pytest.raises(ConfigError, match="already open"):
            gateway.add_cohort("c", ["a", "b"], sample_rate_hz=16.0)
        with pytest.raises(ConfigError, match="already open"):
            gateway.add_cohort("c", ["b", "b"], sample_rate_hz=16.0)
        gateway.add_cohort("c", ["b", "d"], sample_rate_hz=16.0)
        with pytest.raises(ConfigError, match=r"shape \(2, n\)"):
            gateway.push_cohort("c", np.ones((3, 16)))
        with pytest.raises(ConfigError, match="no cohort"):
            gateway.push_cohort("x", np.ones((2, 16)))
        with pytest.raises(ConfigError, match="flags has shape"):
            gateway.push_cohort("c", np.ones((2, 16)), np.zeros((2, 15), np.uint8))


@settings(max_examples=60, deadline=None)
@given(
    level=st.floats(0.0, 200.0), spread=st.floats(0.0, 3.0), usable=st.booleans(),
    off=st.integers(0, 3), saturated=st.integers(0, 3), total=st.integers(0, 40), nan_at=st.integers(-1, 31),
    tolerance=st.sampled_from([0.0, 0.1]),
)
def test_vectorised_gate_agrees_with_judge_window(level: float, spread: float, usable: bool, off: int, saturated: int,
                                                  total: int, nan_at: int, tolerance: float) -> None:
    rng = np.random.default_rng(int(level * 10))
    x = level + spread * rng.random(32)
    if nan_at >= 0:
        x[nan_at] = np.nan
    cfg = QualityConfig(max_electrode_off_fraction=tolerance, max_saturated_fraction=tolerance)
    verdict = judge_window(x, usable, 0, WindowFlags(total, off, saturated), cfg)
    vectorised = windows_pass(x[None], np.array([usable]), np.array([off]), np.array([saturated]), total, cfg)
    assert bool(vectorised[0]) == verdict.ok
    median = window_levels_us(x[None])[0]
    assert np.isnan(median) if np.isnan(x).all() else median == float(np.nanmedian(x))
