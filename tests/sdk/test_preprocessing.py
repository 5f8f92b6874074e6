"""The one preprocessing core: streaming equals offline, gaps are honest, config is strict."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotionkd.firmware_bridge.errors import ConfigError, ContractError, DataError
from emotionkd.firmware_bridge.gsr_synth import synthesize_gsr
from emotionkd.sdk.preprocessing import (
    DEFAULT_PREPROCESSING,
    PAPER_PREPROCESSING,
    GsrPreprocessor,
    LogBaseline,
    PreprocessingConfig,
    Windows,
    preprocess_recording,
    rest_baseline_us,
)


def _stream(x: np.ndarray, rate: float, chunks: list[int], hop: int, unit: str = "uS",
            config: PreprocessingConfig | None = None) -> Windows:
    pre = GsrPreprocessor(rate, unit, config, hop_samples=hop)
    parts, i, c = [], 0, 0
    while i < x.size:
        n = chunks[c % len(chunks)]
        parts.append(pre.push(x[i : i + n]))
        i += n
        c += 1
    parts.append(pre.flush())
    return Windows.concatenate(parts, pre.config.window_samples)


def _assert_same(a: Windows, b: Windows) -> None:
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.start_index, b.start_index)
    np.testing.assert_array_equal(a.usable, b.usable)
    np.testing.assert_array_equal(a.samples_missing, b.samples_missing)
    np.testing.assert_allclose(a.conductance_us, b.conductance_us, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(a.features, b.features, atol=1e-6, equal_nan=True)


def _wandering_trace_with_gaps(rate, seconds, gaps, seed):
    """A random-walk conductance trace (µS) at ``rate`` with NaN gaps at ``(where 0-1, length s)``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    x = 4.0 + np.cumsum(rng.normal(0, 0.02, n)) + rng.normal(0, 0.01, n)
    for where, length_s in gaps:
        start = int(where * n)
        x[start : start + int(length_s * rate) + 1] = np.nan
    return x


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.sampled_from([4.0, 15.0, 32.0, 50.0, 128.0, 256.0, 1000.0]),
    seconds=st.integers(6, 40),
    chunks=st.lists(st.integers(1, 700), min_size=1, max_size=6),
    hop=st.sampled_from([64, 128, 512]),
    gaps=st.lists(st.tuples(st.floats(0, 1), st.floats(0.0, 3.0)), max_size=3),
    seed=st.integers(0, 2**16),
)
def test_streaming_equals_offline_for_any_chunking(rate, seconds, chunks, hop, gaps, seed):
    x = _wandering_trace_with_gaps(rate, seconds, gaps, seed)
    offline = preprocess_recording(x, rate, hop_samples=hop)
    streamed = _stream(x, rate, chunks, hop)
    _assert_same(offline, streamed)


def test_apply_is_push_then_flush() -> None:
    x = synthesize_gsr(30, seed=1)
    a = GsrPreprocessor(128).apply(x)
    pre = GsrPreprocessor(128)
    b = Windows.concatenate([pre.push(x), pre.flush()], 512)
    _assert_same(a, b)


def test_window_count_and_times_on_true_axis() -> None:
    # 60 s at 128 Hz with hop 512: exactly 15 non-overlapping windows, as DEAP windows are cut.
    w = preprocess_recording(synthesize_gsr(60, seed=2), 128.0)
    assert len(w) == 15
    np.testing.assert_array_equal(w.start_index, np.arange(15) * 512)
    np.testing.assert_allclose(w.start_s, np.arange(15) * 4.0)
    np.testing.assert_allclose(w.end_s - w.start_s, 4.0)
    assert w.features.dtype == np.float32 and w.features.shape == (15, 512)
    assert w.usable.all()


def test_long_gap_voids_windows_and_is_never_stitched() -> None:
    rate = 128.0
    x = synthesize_gsr(40, seed=3)
    x[int(10 * rate) : int(15 * rate)] = np.nan  # a 5 s dropout
    w = preprocess_recording(x, rate, hop_samples=128)
    # Every window overlapping 10-15 s (plus the filter's half-length) is unusable …
    overlapping = (w.start_s < 15.0) & (w.end_s > 10.0)
    assert not w.usable[overlapping].any()
    assert np.all(w.samples_missing[overlapping] > 0)
    # … the gap stays NaN in place (the time axis is not shortened) …
    assert np.isnan(w.conductance_us[overlapping]).any(axis=1).all()
    # … and windows clear of it are usable again.
    clear = (w.start_s >= 15.5) | (w.end_s <= 9.5)
    assert w.usable[clear].all()


def test_short_dropout_is_held_counted_and_window_kept() -> None:
    x = synthesize_gsr(20, seed=4)
    x[1000:1004] = np.nan  # one lost BLE packet of 4 samples
    w = preprocess_recording(x, 128.0, hop_samples=128)
    hit = (w.start_index <= 1000) & (w.start_index + 512 > 1003)
    assert w.usable[hit].all()
    assert (w.samples_missing[hit] == 4).all()
    assert np.isfinite(w.features[w.usable]).all()


def test_unusable_windows_carry_nan_features_not_silent_values() -> None:
    x = synthesize_gsr(20, seed=5)
    x[600:1200] = np.nan
    w = preprocess_recording(x, 128.0, hop_samples=128)
    assert (~w.usable).any()
    assert np.isnan(w.features[~w.usable]).all()


def test_resistance_input_is_inverted() -> None:
    us = synthesize_gsr(12, seed=6)
    a = preprocess_recording(us, 128.0, "uS")
    b = preprocess_recording(1e6 / us, 128.0, "Ohm")
    np.testing.assert_allclose(a.conductance_us, b.conductance_us, rtol=1e-9)


def test_window_zscore_has_floor_and_unit_variance() -> None:
    cfg = PreprocessingConfig()
    w = preprocess_recording(synthesize_gsr(60, arousal=1.0, seed=7), 128.0, config=cfg)
    lively = w.conductance_us.std(axis=1) > cfg.zscore_floor_us
    np.testing.assert_allclose(w.features[lively].std(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(w.features.mean(axis=1), 0.0, atol=1e-4)
    flat = preprocess_recording(np.full(128 * 10, 3.0) + 1e-4 * np.sin(np.arange(1280)), 128.0)
    assert np.abs(flat.features).max() < 0.01  # noise is not blown up to unit variance


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="normalisation"):
        PreprocessingConfig(normalisation="minmax")
    with pytest.raises(ConfigError, match="max_missing_fraction"):
        PreprocessingConfig(max_missing_fraction=2.0)
    with pytest.raises(ContractError, match="unknown"):
        PreprocessingConfig.from_params({"rate_hz": 128.0, "new_knob": 1})
    assert PreprocessingConfig.from_params(PreprocessingConfig().to_params()) == PreprocessingConfig()


@pytest.mark.parametrize("rate", [4.0, 15.0, 32.0, 128.0, 1000.0])
def test_a_recording_yields_all_its_windows_at_any_rate(rate: float) -> None:
    # Each sample stands for its sampling period: 60 s of an E4 at 4 Hz is 60 s, i.e. 15 windows.
    w = preprocess_recording(np.full(int(60 * rate), 5.0), rate)
    assert len(w) == 15
    assert w.usable.all()


# -- ekd-gsr version 2: causal log-baseline normalisation and a 32 s context --------------------

V2 = DEFAULT_PREPROCESSING


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.sampled_from([4.0, 15.0, 32.0, 128.0]),
    seconds=st.integers(40, 120),
    chunks=st.lists(st.integers(1, 900), min_size=1, max_size=6),
    hop=st.sampled_from([16, 64, 512]),
    gaps=st.lists(st.tuples(st.floats(0, 1), st.floats(0.0, 6.0)), max_size=3),
    tau_s=st.sampled_from([2.0, 90.0]),
    seed=st.integers(0, 2**16),
)
def test_v2_streaming_equals_offline_for_any_chunking(rate, seconds, chunks, hop, gaps, tau_s, seed):
    x = _wandering_trace_with_gaps(rate, seconds, gaps, seed)
    cfg = replace(V2, baseline_tau_s=tau_s)
    offline = preprocess_recording(x, rate, config=cfg, hop_samples=hop)
    _assert_same(offline, _stream(x, rate, chunks, hop, config=cfg))


def _ema_reference(y: np.ndarray, cfg: PreprocessingConfig, start: float | None = None) -> np.ndarray:
    """The per-sample definition of the log baseline, written out as a loop."""
    a = np.exp(-1.0 / (cfg.baseline_tau_s * cfg.rate_hz))
    b = np.nan if start is None else np.log(start)
    out = np.full(y.size, np.nan)
    for k, v in enumerate(y):
        if not (np.isfinite(v) and v > 0):
            continue
        b = np.log(v) if np.isnan(b) else a * b + (1 - a) * np.log(v)
        out[k] = cfg.log_scale * (np.log(v) - b)
    return out


@pytest.mark.parametrize("tau_s", [0.05, 3.0, 90.0])
def test_log_baseline_is_the_causal_ema_it_documents(tau_s: float) -> None:
    cfg = replace(V2, baseline_tau_s=tau_s)
    rng = np.random.default_rng(0)
    y = 3.0 + np.abs(np.cumsum(rng.normal(0, 0.05, 5000)))
    y[100:140] = np.nan  # a gap: the baseline holds
    y[300] = -0.2  # non-positive conductance is invalid
    for start in (None, 2.5):
        got = LogBaseline(cfg, start).push(y)
        np.testing.assert_allclose(got, _ema_reference(y, cfg, start), rtol=1e-9, atol=1e-9)


def test_v2_window_is_32_s_and_keeps_level_relative_to_the_wearer() -> None:
    assert V2.window_s == 32.0 and V2.version == 2 and PAPER_PREPROCESSING.version == 1
    t = np.arange(0, 200, 1 / 32)
    calm = 5.0 + 0.0 * t
    rise = np.where(t > 120, 5.0 * 1.2, 5.0)  # a 20 % tonic rise after 120 s
    w_calm = preprocess_recording(calm, 32.0, config=V2)
    w_rise = preprocess_recording(rise, 32.0, config=V2)
    assert w_calm.features.shape == (6, 512)
    np.testing.assert_allclose(w_calm.features, 0.0, atol=1e-6)
    after = w_rise.start_s >= 128
    assert (w_rise.features[after].mean(axis=1) > 0.3).all()  # the per-window z-score loses this
    # An electrode gain (x3 conductance) changes nothing: the baseline is the wearer's own.
    gained = preprocess_recording(3.0 * rise, 32.0, config=V2)
    np.testing.assert_allclose(gained.features, w_rise.features, atol=1e-5)


def test_rest_recording_seeds_the_baseline() -> None:
    rest = np.full(60 * 32, 4.0)
    rest[200:260] = np.nan
    rest[500:520] = 9.0  # a brief response during the rest does not move the median
    base = rest_baseline_us(rest, 32.0, config=V2)
    assert base == pytest.approx(4.0, rel=1e-3)
    session = np.full(64 * 32, 5.0)  # the wearer is 25 % above rest from the start
    seeded = preprocess_recording(session, 32.0, config=V2, initial_baseline_us=base)
    unseeded = preprocess_recording(session, 32.0, config=V2)
    assert seeded.features[0, 0] == pytest.approx(10.0 * np.log(5 / 4), rel=0.01)
    np.testing.assert_allclose(unseeded.features, 0.0, atol=1e-6)
    pre = GsrPreprocessor(32.0, config=V2, initial_baseline_us=base)
    assert pre.baseline_us == pytest.approx(base)
    pre.apply(session)
    assert 4.0 < pre.baseline_us < 5.0
    with pytest.raises(DataError, match="rest"):
        rest_baseline_us(np.full(100, np.nan), 32.0, config=V2)
    with pytest.raises(ConfigError, match="initial_baseline_us"):
        GsrPreprocessor(32.0, config=V2, initial_baseline_us=-1.0)


def test_v1_and_v2_params_round_trip_and_v1_stays_v1() -> None:
    v1 = PAPER_PREPROCESSING.to_params()
    assert "baseline_tau_s" not in v1 and "log_scale" not in v1  # old readers still accept it
    assert PreprocessingConfig.from_params(v1, version=1) == PAPER_PREPROCESSING
    assert PreprocessingConfig.from_params(V2.to_params(), version=2) == V2
    with pytest.raises(ContractError, match="unknown to ekd-gsr version 1"):
        PreprocessingConfig.from_params(v1 | {"baseline_tau_s": 90.0}, version=1)
    with pytest.raises(ContractError, match="version 2"):
        PreprocessingConfig.from_params({"normalisation": "log_baseline"}, version=1)
    with pytest.raises(ContractError, match="version 3"):
        PreprocessingConfig.from_params(v1, version=3)
    with pytest.raises(ConfigError, match="baseline_tau_s"):
        PreprocessingConfig(baseline_tau_s=0.0)


def test_a_rest_seeded_model_says_so_and_earlier_v2_contracts_are_unchanged() -> None:
    assert "baseline_seed" not in V2.to_params() and not V2.wants_rest_baseline  # as v2 models were written
    rest = replace(V2, baseline_seed="rest")
    assert rest.to_params()["baseline_seed"] == "rest" and rest.wants_rest_baseline
    assert PreprocessingConfig.from_params(rest.to_params(), version=2) == rest
    with pytest.raises(ContractError, match="unknown to ekd-gsr version 1"):
        PreprocessingConfig.from_params(PAPER_PREPROCESSING.to_params() | {"baseline_seed": "rest"}, version=1)
    with pytest.raises(ConfigError, match="baseline_seed"):
        PreprocessingConfig(baseline_seed="yesterday")
