"""The live push's shortcuts (issue 17, round 3) give exactly what the general code gives.

Each shortcut is checked against the computation it replaces: the strided view against
``sliding_window_view`` (same strides, so the same products, bit for bit), the windower against
a fancy-index gather over the whole stream, the missing-mark shortcut of :class:`SourceFlags`
against the full gather, and the bundled model's live 1 s pushes against ``predict``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from emotionkd.firmware_bridge.samples import SampleFlag
from emotionkd.sdk.quality import window_statistics_us
from emotionkd.sdk.source_flags import SourceFlags
from emotionkd.sdk.windowing import Windower, strided_rows


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 600), lead=st.integers(0, 9), width=st.integers(1, 240), step=st.integers(1, 9),
       first=st.integers(0, 600), rows=st.integers(1, 80), seed=st.integers(0, 2**16))
def test_strided_rows_is_the_sliding_window_view(n: int, lead: int, width: int, step: int, first: int, rows: int,
                                                 seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(n + lead)[lead:]  # a view into a larger buffer, as a kept history is
    if width > n:
        return
    first = min(first, n - width)
    rows = min(rows, (n - width - first) // step + 1)
    expected = sliding_window_view(values, width)[first : first + rows * step : step]
    got = strided_rows(values, first, rows, step, width)
    assert got.shape == expected.shape and got.strides == expected.strides and not got.flags.writeable
    np.testing.assert_array_equal(got, expected)
    taps = rng.standard_normal(width)
    np.testing.assert_array_equal(got @ taps, expected @ taps)  # the resampler's product, bit for bit
    streams = np.stack([values, values[::-1]])  # (S, n): the lockstep path
    np.testing.assert_array_equal(strided_rows(streams, first, rows, step, width),
                                  sliding_window_view(streams, width, axis=-1)[:, first : first + rows * step : step])


@settings(max_examples=40, deadline=None)
@given(chunks=st.lists(st.integers(0, 300), min_size=1, max_size=12), window=st.sampled_from([1, 16, 64, 512]),
       hop=st.sampled_from([1, 16, 128, 512]), seed=st.integers(0, 2**16))
def test_windower_cuts_what_an_index_gather_over_the_whole_stream_cuts(chunks: list[int], window: int, hop: int,
                                                                      seed: int) -> None:
    rng = np.random.default_rng(seed)
    total = sum(chunks)
    values, flagged = rng.standard_normal(total), rng.random(total) < 0.1
    windower = Windower(window, hop)
    starts, got_values, got_flags, at = [], [], [], 0
    for n in chunks:
        raw = windower.push(values[at : at + n], flagged[at : at + n])
        starts.append(raw.start_index)
        got_values.append(raw.values)
        got_flags.append(raw.flagged)
        assert raw.values.shape == (len(raw), window) and raw.values.flags.c_contiguous
        at += n
    expected_starts = np.arange(0, max(total - window + 1, 0), hop)
    idx = expected_starts[:, None] + np.arange(window)[None, :]
    np.testing.assert_array_equal(np.concatenate(starts), expected_starts)
    np.testing.assert_array_equal(np.concatenate(got_values), values[idx])
    np.testing.assert_array_equal(np.concatenate(got_flags), flagged[idx])


def _check_missing_marks(chunks: list[int], down: int, missing: np.ndarray, flags: np.ndarray,
                         ahead: int) -> None:
    """After every push, the model-rate samples up to ``ahead`` past the data read the missing
    mark of their source sample (the last one held standing for any later one)."""
    source = SourceFlags(lambda k: k * down, window_samples=4)
    done, at = 0, 0
    for n in chunks:
        source.push(missing[at : at + n], flags[at : at + n])
        at += n
        k = np.arange(done, (at - 1) // down + 1 + ahead)
        np.testing.assert_array_equal(source.missing_at(k), missing[np.minimum(k * down, at - 1)])
        done = int(k[-1]) + 1 if k.size else done
        source.forget_before(max(done - 4, 0))  # as the preprocessor does: keep what windows need


@settings(max_examples=40, deadline=None)
@given(chunks=st.lists(st.integers(1, 200), min_size=1, max_size=15), down=st.sampled_from([1, 2, 8]),
       marks=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 20), st.sampled_from(["nan", "off", "sat"])),
                      max_size=4), ahead=st.integers(0, 3))
def test_source_flags_missing_marks_equal_the_full_gather(chunks: list[int], down: int,
                                                          marks: list[tuple[float, int, str]], ahead: int) -> None:
    total = sum(chunks)
    missing, flags = np.zeros(total, bool), np.zeros(total, np.uint8)
    for where, length, kind in marks:
        at = int(where * (total - 1))
        if kind == "nan":
            missing[at : at + length] = True
        else:
            flags[at : at + length] = SampleFlag.ELECTRODE_OFF if kind == "off" else SampleFlag.SATURATED
    _check_missing_marks(chunks, down, missing, flags, ahead)


@pytest.mark.parametrize("down", [1, 3])
@pytest.mark.parametrize("ahead", [0, 2])
def test_source_flags_missing_marks_at_every_boundary(down: int, ahead: int) -> None:
    """One marked sample (missing, or a gate flag only) at every position of a short stream:
    the shortcut's edge (the first sample a push needs is the last one marked) included."""
    chunks = [7, 5, 1, 9, 6, 12]
    total = sum(chunks)
    for position in range(total):
        for kind in ("nan", "flag"):
            missing, flags = np.zeros(total, bool), np.zeros(total, np.uint8)
            if kind == "nan":
                missing[position] = True
            else:
                flags[position] = SampleFlag.ELECTRODE_OFF
            _check_missing_marks(chunks, down, missing, flags, ahead)


def test_bundled_model_live_pushes_equal_the_model_on_offline_windows() -> None:
    """Live 1 s pushes of the bundled model (the benchmarked path; NaN gaps and a flagged
    stretch included) give ``predict``'s windows and verdicts, and for each window that passed
    the model's own batch-1 answer on the offline preprocessing of the whole recording (float32
    rounding). (``predict`` runs one batch: dynamic INT8 quantises per call, so its numbers
    differ from batch-1 calls at the 1e-3 level; the comparison is per window for that reason.)"""
    from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, GsrSynthesizer
    from emotionkd.sdk.classifier import EmotionClassifier
    from emotionkd.sdk.preprocessing import preprocess_recording

    signal = GsrSynthesizer(GsrSynthConfig(rate_hz=128.0), seed=5).read(128 * 150)
    signal[128 * 50 : 128 * 50 + 20] = np.nan  # a short dropout (held, counted)
    signal[128 * 90 : 128 * 97] = np.nan  # a gap that voids windows
    flags = np.zeros(signal.size, np.uint8)
    flags[128 * 120 : 128 * 125] = SampleFlag.ELECTRODE_OFF
    clf = EmotionClassifier(hop_s=1.0)
    offline = clf.predict(signal, 128.0, flags=flags)
    live = []
    for i in range(0, signal.size, 128):
        live += clf.push(signal[i : i + 128], sample_rate_hz=128.0, flags=flags[i : i + 128])
    live += clf.flush()
    key = [(p.start_s, p.quality, p.samples_missing) for p in live]
    assert key == [(p.start_s, p.quality, p.samples_missing) for p in offline]
    assert {p.quality for p in live} >= {"ok", "gap", "electrode_off"}
    np.testing.assert_allclose([p.conductance_us for p in live], [p.conductance_us for p in offline],
                               atol=1e-6, equal_nan=True)
    windows = preprocess_recording(signal, 128.0, config=clf.recipe.preprocessing, hop_samples=clf.hop_samples,
                                   initial_baseline_us=clf.baseline_us)
    ok = [i for i, p in enumerate(live) if p.ok]
    assert len(ok) > 40
    for i in ok:
        answer = clf.model.run(windows.features[i : i + 1])
        assert live[i].arousal == pytest.approx(float(answer["arousal"][0, 1]), abs=1e-6)
        assert live[i].valence == pytest.approx(float(answer["valence"][0, 1]), abs=1e-6)


@settings(max_examples=30, deadline=None)
@given(chunks=st.lists(st.integers(0, 300), min_size=1, max_size=10), window=st.sampled_from([1, 16, 512]),
       hop=st.sampled_from([1, 16, 128]), streams=st.sampled_from([(), (3,)]), seed=st.integers(0, 2**16))
def test_windower_channels_cut_what_one_windower_per_channel_cuts(chunks: list[int], window: int, hop: int,
                                                                  streams: tuple[int, ...], seed: int) -> None:
    rng = np.random.default_rng(seed)
    total = sum(chunks)
    values = rng.standard_normal((2, *streams, total))
    flagged = rng.random((*streams, total)) < 0.1
    stacked, singles = Windower(window, hop, channels=2), [Windower(window, hop), Windower(window, hop)]
    at = 0
    for n in chunks:
        both = stacked.push(values[..., at : at + n], flagged[..., at : at + n])
        for c, single in enumerate(singles):
            one = single.push(values[c, ..., at : at + n], flagged[..., at : at + n])
            np.testing.assert_array_equal(both.values[c], one.values)
            np.testing.assert_array_equal(both.flagged, one.flagged)
            np.testing.assert_array_equal(both.start_index, one.start_index)
        at += n


@settings(max_examples=40, deadline=None)
@given(windows=st.integers(1, 5), width=st.sampled_from([1, 2, 7, 512]), nan_fraction=st.sampled_from([0.0, 0.3, 1.0]),
       seed=st.integers(0, 2**16))
def test_window_statistics_are_nanmedian_nanmin_nanmax_with_and_without_nan(windows: int, width: int,
                                                                          nan_fraction: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((windows, width))
    x[rng.random(x.shape) < nan_fraction] = np.nan
    median, lowest, highest = window_statistics_us(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_array_equal(median, np.nanmedian(x, axis=-1))
        np.testing.assert_array_equal(lowest, np.nanmin(x, axis=-1))
        np.testing.assert_array_equal(highest, np.nanmax(x, axis=-1))


@settings(max_examples=40, deadline=None)
@given(chunks=st.lists(st.integers(1, 120), min_size=1, max_size=10), down=st.sampled_from([1, 2, 8]),
       flagged=st.booleans(), seed=st.integers(0, 2**16))
def test_source_flags_window_counts_equal_a_direct_count_with_and_without_flags(chunks: list[int], down: int,
                                                                               flagged: bool, seed: int) -> None:
    """Both paths of ``window_counts``: a stream without gate flags (the shortcut) and one with."""
    rng = np.random.default_rng(seed)
    total, window = sum(chunks), 4
    flags = np.zeros(total, np.uint8)
    if flagged:
        flags[rng.random(total) < 0.2] = int(SampleFlag.ELECTRODE_OFF)
        flags[rng.random(total) < 0.2] |= np.uint8(SampleFlag.SATURATED)
    source = SourceFlags(lambda k: k * down, window_samples=window)
    at = 0
    for n in chunks:
        source.push(np.zeros(n, bool), flags[at : at + n])
        at += n
        starts = np.arange(max((at - 1) // down - window - 2, 0), (at - 1) // down + 1)
        total_got, off_got, sat_got = source.window_counts(starts)
        lo, hi = np.minimum(starts * down, at), np.minimum((starts + window) * down, at)
        span = [flags[a:b] for a, b in zip(lo, hi, strict=True)]
        np.testing.assert_array_equal(total_got, hi - lo)
        np.testing.assert_array_equal(off_got, [np.count_nonzero(s & int(SampleFlag.ELECTRODE_OFF)) for s in span])
        np.testing.assert_array_equal(sat_got, [np.count_nonzero(s & int(SampleFlag.SATURATED)) for s in span])
        source.forget_before(int(starts[0]))
