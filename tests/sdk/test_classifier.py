"""EmotionClassifier: the numbers, chunk-size invariance, streams, callbacks, model errors."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx_test_models import build_test_model, expected_probabilities

from emotionkd.firmware_bridge.errors import ConfigError, DataError, ModelError
from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, synthesize_gsr
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag
from emotionkd.sdk import EmotionClassifier, Prediction
from emotionkd.sdk.preprocessing import preprocess_recording
from emotionkd.sdk.recording import RecordingWriter

GSR = synthesize_gsr(40.0, arousal=0.7, seed=11)  # 128 Hz, µS


@pytest.fixture(scope="module")
def clf(test_model: Path) -> EmotionClassifier:
    return EmotionClassifier(test_model)


def _probs(predictions: list[Prediction], target: str) -> np.ndarray:
    return np.array([getattr(p, target) for p in predictions], dtype=float)


def test_predict_gives_the_models_numbers_at_the_hop_cadence(clf: EmotionClassifier) -> None:
    predictions = clf.predict(GSR, 128.0)
    windows = preprocess_recording(GSR, 128.0, hop_samples=128)
    expected = expected_probabilities(windows.features)
    assert len(predictions) == len(windows) == 37
    assert [p.start_s for p in predictions] == [float(i) for i in range(37)]
    assert all(p.end_s - p.start_s == 4.0 and p.ok for p in predictions)
    for target in ("arousal", "valence"):
        np.testing.assert_allclose(_probs(predictions, target), expected[target], atol=1e-5)
        # the test model's outputs vary across windows: a constant would not pass
        assert np.ptp(expected[target]) > 0.2
    p = predictions[0]
    assert p.arousal_label == ("high" if p.arousal >= 0.5 else "low")
    assert p.conductance_us == pytest.approx(np.median(windows.conductance_us[0]))
    json.dumps(p.to_dict(), allow_nan=False)


def test_hop_is_configurable(test_model: Path) -> None:
    predictions = EmotionClassifier(test_model, hop_s=2.0).predict(GSR, 128.0)
    assert [p.start_s for p in predictions[:3]] == [0.0, 2.0, 4.0]
    with pytest.raises(ConfigError):
        EmotionClassifier(test_model, hop_s=0)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=40))
def test_push_any_chunking_equals_predict(clf: EmotionClassifier, sizes: list[int]) -> None:
    offline = clf.predict(GSR, 128.0)
    clf.reset()
    streamed: list[Prediction] = []
    edges = np.cumsum(sizes)
    for chunk in np.split(GSR, edges[edges < GSR.size]):
        streamed += clf.push(chunk, sample_rate_hz=128.0)
    streamed += clf.flush()
    assert [(p.start_s, p.quality) for p in streamed] == [(p.start_s, p.quality) for p in offline]
    np.testing.assert_allclose(_probs(streamed, "arousal"), _probs(offline, "arousal"), atol=1e-6)
    np.testing.assert_allclose(_probs(streamed, "valence"), _probs(offline, "valence"), atol=1e-6)


def test_predict_push_and_stream_agree_on_a_recording(clf: EmotionClassifier, tmp_path: Path) -> None:
    rate = 32.0
    gsr = synthesize_gsr(30.0, arousal=0.5, seed=4, config=GsrSynthConfig(rate_hz=rate))
    path = tmp_path / "rec.csv"
    with RecordingWriter(path, device="test", protocol="sim", rate_hz=rate) as writer:
        for start in range(0, gsr.size, 50):
            chunk = gsr[start : start + 50]
            writer.write(SampleBlock(start, chunk, np.zeros(chunk.size, np.uint8), rate))
    offline = clf.predict(gsr, rate)
    streamed = list(clf.stream(f"replay://{path}?speed=0"))
    clf.reset()
    pushed = [p for block in np.array_split(gsr, 7) for p in clf.push(block, sample_rate_hz=rate)] + clf.flush()

    async def collect() -> list[Prediction]:
        return [p async for p in clf.astream(f"replay://{path}?speed=0&block=0.1")]

    asynced = asyncio.run(collect())
    assert len(offline) == 27  # 4 s windows every 1 s over 30 s: starts 0 … 26 s
    for other in (streamed, pushed, asynced):
        assert [p.start_s for p in other] == [p.start_s for p in offline]
        # the recording stores 6 significant digits
        np.testing.assert_allclose(_probs(other, "arousal"), _probs(offline, "arousal"), atol=1e-4)
        np.testing.assert_allclose(_probs(other, "valence"), _probs(offline, "valence"), atol=1e-4)


def test_stream_duration_stops_a_live_source(clf: EmotionClassifier) -> None:
    predictions = list(clf.stream("sim://?speed=0", duration_s=10))
    assert 5 <= len(predictions) <= 7
    assert all(0.0 <= p.arousal <= 1.0 and 0.0 <= p.valence <= 1.0 for p in predictions)


def test_failing_windows_are_reported_not_predicted(clf: EmotionClassifier) -> None:
    url = "sim://?speed=0&duration=30&faults=electrode_off@6:1,saturation@14:1,gap@22:2"
    by_start = {p.start_s: p for p in clf.stream(url)}
    for start in (3.0, 4.0, 5.0, 6.0):
        assert by_start[start].quality == "electrode_off"
    for start in (11.0, 14.0):
        assert by_start[start].quality == "saturation"
    assert by_start[20.0].quality == "gap" and by_start[20.0].samples_missing > 200
    assert by_start[0.0].ok and by_start[26.0].ok and len(by_start) == 27
    bad = [p for p in by_start.values() if not p.ok]
    assert all(p.arousal is None and p.valence is None and p.arousal_label is None for p in bad)
    assert all(p.quality_detail for p in bad)


def test_flat_line_and_wrong_unit(clf: EmotionClassifier) -> None:
    flat = clf.predict(np.full(128 * 10, 3.0), 128.0)
    assert {p.quality for p in flat} == {"flat_line"}
    # nanosiemens declared as microsiemens: 5000 "µS" is no skin
    wrong = clf.predict(GSR[: 128 * 10] * 1000.0, 128.0, unit="uS")
    assert {p.quality for p in wrong} == {"implausible_unit"}
    right = clf.predict(GSR[: 128 * 10] * 1000.0, 128.0, unit="nS")
    assert all(p.ok for p in right)
    kohm = clf.predict(1000.0 / GSR[: 128 * 10], 128.0, unit="kOhm")  # resistance is inverted
    np.testing.assert_allclose(_probs(kohm, "arousal"), _probs(clf.predict(GSR[: 128 * 10], 128.0), "arousal"), atol=1e-5)


def test_e4_rate_is_served(clf: EmotionClassifier) -> None:
    gsr = synthesize_gsr(60.0, seed=2, config=GsrSynthConfig(rate_hz=4.0))
    predictions = clf.predict(gsr, 4.0)
    assert len(predictions) == 57 and all(p.ok for p in predictions)  # starts 0 … 56 s


def test_stream_of_an_e4_export_equals_predict(clf: EmotionClassifier, tmp_path: Path) -> None:
    gsr = np.round(synthesize_gsr(40.0, seed=6, config=GsrSynthConfig(rate_hz=4.0)), 6)
    eda = tmp_path / "EDA.csv"
    eda.write_text("1495437325.000000\n4.000000\n" + "".join(f"{v:.6f}\n" for v in gsr))
    streamed = list(clf.stream(f"replay://{eda}?speed=0"))
    offline = clf.predict(gsr, 4.0)
    assert len(streamed) == len(offline) == 37  # starts 0 … 36 s
    np.testing.assert_allclose(_probs(streamed, "arousal"), _probs(offline, "arousal"), atol=1e-6)


def test_blocks_that_skip_keep_the_time_axis(clf: EmotionClassifier) -> None:
    clf.reset()
    out: list[Prediction] = []
    n = 64
    for i in range(0, 128 * 30, n):
        if 128 * 10 <= i < 128 * 12:
            continue  # lost on the way: the next block skips ahead
        out += clf.push(SampleBlock(i, GSR[i : i + n], np.zeros(n, np.uint8), 128.0))
    starts = [p.start_s for p in out]
    assert starts == [float(s) for s in range(len(out))]  # no window lost, none stitched
    assert {p.quality for p in out if 7.0 <= p.start_s <= 11.0} == {"gap"}
    assert out[0].ok and out[-1].ok


def test_a_gap_over_a_minute_starts_a_segment_where_the_block_lies(clf: EmotionClassifier) -> None:
    """Up to MAX_FILLED_GAP_S the gap is filled (its windows say ``gap``); beyond, a new segment
    starts at the block's own time: no window spans the jump, none is invented inside it."""
    rate = 4.0
    gsr = synthesize_gsr(40.0, arousal=0.6, seed=3, config=GsrSynthConfig(rate_hz=rate))
    n = int(20 * rate)
    for jump_s, filled in ((30.0, True), (90.0, False)):
        clf.reset()
        first = clf.push(SampleBlock(0, gsr[:n], np.zeros(n, np.uint8), rate))
        later = int(round((20.0 + jump_s) * rate))
        second = clf.push(SampleBlock(later, gsr[n:], np.zeros(gsr.size - n, np.uint8), rate)) + clf.flush()
        assert first and second and all(p.start_s < 20.0 for p in first)
        inside = [p for p in second if p.end_s > 20.0 and p.start_s < 20.0 + jump_s]
        if filled:
            assert inside and {p.quality for p in inside} == {"gap"}
        else:
            assert inside == [] and min(p.start_s for p in second) == 20.0 + jump_s
        assert [p.start_s for p in second] == sorted(p.start_s for p in second)
        assert second[-1].ok


def test_a_restarted_device_continues_the_time_axis(clf: EmotionClassifier) -> None:
    clf.reset()
    out: list[Prediction] = []
    for i in range(0, 128 * 10, 128):
        out += clf.push(SampleBlock(i, GSR[i : i + 128], np.zeros(128, np.uint8), 128.0))
    last = out[-1].start_s
    repeated = SampleBlock(128 * 9, GSR[128 * 9 : 128 * 10], np.zeros(128, np.uint8), 128.0)
    assert clf.push(repeated) == []  # a repeated block is ignored, not a restart
    for i in range(0, 128 * 10, 128):  # the device restarted: its counter begins at 0 again
        out += clf.push(SampleBlock(i, GSR[i : i + 128], np.zeros(128, np.uint8), 128.0))
    starts = [p.start_s for p in out]
    assert starts == sorted(starts) and starts[-1] > last + 5


def test_flags_travel_from_blocks_to_the_window(clf: EmotionClassifier) -> None:
    clf.reset()
    flags = np.zeros(GSR.size, np.uint8)
    flags[128 * 20 : 128 * 20 + 3] = SampleFlag.SATURATED  # three samples are enough
    out = clf.push(SampleBlock(0, GSR, flags, 128.0)) + clf.flush()
    bad = {p.start_s for p in out if p.quality == "saturation"}
    assert bad == {17.0, 18.0, 19.0, 20.0}


def test_callbacks_and_background(clf: EmotionClassifier, test_model: Path, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Prediction] = []

    def broken(_: Prediction) -> None:
        raise RuntimeError("an app bug")

    own = EmotionClassifier(test_model, on_prediction=seen.append)
    own.add_callback(broken)  # logged, never stops the stream
    with caplog.at_level("ERROR", logger="emotionkd.sdk.classifier"):  # the SDK fetches its logger when it writes
        pushed = own.push(GSR, sample_rate_hz=128.0)
    assert seen == pushed and len(pushed) > 30
    raised = [r for r in caplog.records if r.name == "emotionkd.sdk.classifier" and "callback" in r.getMessage()]
    assert len(raised) == len(pushed) and all(r.exc_info and r.exc_info[0] is RuntimeError for r in raised)
    got: list[Prediction] = []
    handle = clf.run_in_background("sim://?speed=0&duration=12", got.append)
    handle.join(30)
    assert not handle.running and handle.error is None and len(got) == 9
    errors: list[BaseException] = []
    with pytest.raises(DataError, match="does not exist"):  # a bad URL fails at once, here
        clf.run_in_background("replay:///no/such/file.csv", got.append)
    # an error while streaming reaches on_error (a rate that cannot be resampled)
    handle = clf.run_in_background("sim://?speed=0&rate=127.123456789", got.append, on_error=errors.append)
    handle.join(30)
    assert isinstance(handle.error, ConfigError) and errors == [handle.error]


def test_first_array_push_needs_a_rate(test_model: Path) -> None:
    with pytest.raises(ConfigError, match="sample_rate_hz"):
        EmotionClassifier(test_model).push(GSR[:100])


def test_no_bundled_model_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import emotionkd.sdk.model as model_module

    monkeypatch.setattr(model_module, "_PACKAGE_DIR", tmp_path)
    with pytest.raises(ModelError, match="make bundled-model"):
        EmotionClassifier()
    (tmp_path / "models").mkdir()
    build_test_model(tmp_path / "models" / "emotionkd-student.onnx")
    assert EmotionClassifier().contract.is_synthetic


@pytest.mark.parametrize("kind", ["missing", "no-contract", "wrong-input", "not-onnx"])
def test_bad_models_are_refused_clearly(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "m.onnx"
    if kind == "no-contract":
        build_test_model(path, with_contract=False)
    elif kind == "wrong-input":
        build_test_model(path, input_name="eda")
    elif kind == "not-onnx":
        path.write_bytes(b"not a model")
    with pytest.raises(ModelError) as info:
        EmotionClassifier(path)
    assert str(path) in str(info.value)


def test_a_batch_one_model_runs_window_by_window(tmp_path: Path) -> None:
    path = build_test_model(tmp_path / "b1.onnx", batch=1)
    predictions = EmotionClassifier(path).predict(GSR, 128.0)
    expected = expected_probabilities(preprocess_recording(GSR, 128.0, hop_samples=128).features)
    np.testing.assert_allclose(_probs(predictions, "arousal"), expected["arousal"], atol=1e-5)
    assert not math.isnan(predictions[0].conductance_us)


@settings(max_examples=12, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 400), min_size=1, max_size=30),
    faults=st.lists(st.tuples(st.integers(0, 128 * 38), st.integers(1, 200), st.sampled_from([1, 2, 32])), max_size=4),
)
def test_blocks_with_flags_and_gaps_in_any_chunking_equal_predict(
    clf: EmotionClassifier, sizes: list[int], faults: list[tuple[int, int, int]]
) -> None:
    values, flags = GSR.copy(), np.zeros(GSR.size, np.uint8)
    for start, length, flag in faults:
        flags[start : start + length] |= flag
        if flag == SampleFlag.GAP:
            values[start : start + length] = np.nan
    offline = clf.predict(values, 128.0, flags=flags)
    clf.reset()
    streamed: list[Prediction] = []
    start = 0
    for size in sizes * (GSR.size // sum(sizes) + 1):
        if start >= GSR.size:
            break
        stop = min(start + size, GSR.size)
        streamed += clf.push(SampleBlock(start, values[start:stop], flags[start:stop], 128.0))
        start = stop
    streamed += clf.flush()
    assert [(p.start_s, p.quality, p.samples_missing) for p in streamed] == \
        [(p.start_s, p.quality, p.samples_missing) for p in offline]
    ok = [p.ok for p in offline]
    np.testing.assert_allclose(_probs([p for p in streamed if p.ok], "arousal"),
                               _probs([p for p, good in zip(offline, ok, strict=True) if good], "arousal"), atol=1e-6)
