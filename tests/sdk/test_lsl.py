"""LSL in and out: GSR from an LSL stream (gaps kept), predictions published with metadata."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from emotionkd.firmware_bridge.errors import TransportError
from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, synthesize_gsr

pylsl = pytest.importorskip("pylsl", reason="pylsl (the lsl extra) is not installed")
try:
    pylsl.local_clock()
except Exception as exc:  # pragma: no cover - liblsl missing on this platform
    pytest.skip(f"liblsl cannot be loaded: {exc}", allow_module_level=True)

from emotionkd.sdk import EmotionClassifier  # noqa: E402
from emotionkd.sdk.lsl import QUALITY_CODES, PredictionOutlet  # noqa: E402


def _send_gsr(name: str, gsr_kohm: np.ndarray, rate: float, stop: threading.Event, skip: slice) -> None:
    info = pylsl.StreamInfo(name, "GSR", 1, rate, "float32", f"{name}-id")
    channel = info.desc().append_child("channels").append_child("channel")
    channel.append_child_value("label", "GSR")
    channel.append_child_value("unit", "kOhm")
    outlet = pylsl.StreamOutlet(info)
    time.sleep(0.5)  # let the reader resolve and connect
    start = pylsl.local_clock()
    step = int(rate / 8)
    for i in range(0, gsr_kohm.size, step):
        if stop.is_set():
            return
        if skip.start <= i < skip.stop:
            continue  # samples lost on the network
        chunk = gsr_kohm[i : i + step]
        outlet.push_chunk(chunk.reshape(-1, 1).tolist(), start + (i + chunk.size - 1) / rate)
        time.sleep(0.01)
    time.sleep(1.0)


def test_lsl_source_streams_resistance_with_gaps_kept(test_model: Path) -> None:
    rate = 32.0
    gsr = synthesize_gsr(14.0, seed=8, config=GsrSynthConfig(rate_hz=rate))
    stop = threading.Event()
    sender = threading.Thread(target=_send_gsr, args=("ekd-test-gsr", 1000.0 / gsr, rate, stop, slice(192, 256)))
    sender.start()
    try:
        clf = EmotionClassifier(test_model)
        predictions = list(clf.stream("lsl://ekd-test-gsr?timeout=5", duration_s=12.0))
    finally:
        stop.set()
        sender.join()
    assert len(predictions) >= 6
    by_start = {p.start_s: p for p in predictions}
    assert by_start[0.0].ok and by_start[0.0].conductance_us == pytest.approx(np.median(gsr[:128]), rel=0.05)
    assert by_start[5.0].quality == "gap"  # 6–8 s never arrived
    assert [p.start_s for p in predictions] == [float(i) for i in range(len(predictions))]


def test_a_missing_lsl_stream_is_a_clear_error(test_model: Path) -> None:
    with pytest.raises(TransportError, match="no LSL stream with name 'nobody-sends-this'"):
        list(EmotionClassifier(test_model).stream("lsl://nobody-sends-this?timeout=0.5"))


def test_prediction_outlet_publishes_with_units_and_labels(test_model: Path) -> None:
    clf = EmotionClassifier(test_model)
    outlet = PredictionOutlet(clf.contract, name="ekd-test-predictions")
    (found,) = pylsl.resolve_byprop("name", "ekd-test-predictions", timeout=5)
    inlet = pylsl.StreamInlet(found)
    inlet.open_stream(timeout=5)
    meta = inlet.info(timeout=5)
    time.sleep(0.3)
    predictions = list(clf.stream("sim://?speed=0&duration=9&faults=electrode_off@6:1"))
    for p in predictions:
        outlet.write(p)
    samples, _ = inlet.pull_chunk(timeout=2.0, max_samples=100)
    assert len(samples) == len(predictions)
    assert samples[0][0] == pytest.approx(predictions[0].arousal, abs=1e-6)
    bad = [s for s, p in zip(samples, predictions, strict=True) if not p.ok]
    assert bad and all(np.isnan(s[0]) and s[2] == QUALITY_CODES.index("electrode_off") for s in bad)
    channel = meta.desc().child("channels").child("channel")
    labels = []
    while not channel.empty():
        labels.append((channel.child_value("label"), channel.child_value("unit")))
        channel = channel.next_sibling()
    assert labels == [("arousal", "probability"), ("valence", "probability"), ("quality", "code")]
    assert meta.desc().child("model").child_value("trained_on") == "synthetic"
    outlet.close()


def test_predictions_carry_the_lsl_time_of_their_window_end(test_model: Path) -> None:
    """mne-lsl's way: a prediction's LSL stamp is its window's end on the GSR stream's clock,
    not the push time (the sender's stamps lie 500 s in the past, so push time would be off by
    500 s); across a 3 s gap in the sender's stamps (filled on the axis) they stay aligned."""
    from emotionkd.sdk.sources.lsl import LslSource

    rate = 32.0
    gsr = synthesize_gsr(12.0, seed=3, config=GsrSynthConfig(rate_hz=rate))
    stop = threading.Event()
    offset = -500.0
    base: list[float] = []
    reading = threading.Event()

    def send() -> None:
        info = pylsl.StreamInfo("ekd-test-time", "GSR", 1, rate, "float32", "ekd-test-time-id")
        outlet = pylsl.StreamOutlet(info)
        reading.wait(10.0)  # the source's inlet is open: no sample is lost before it
        time.sleep(0.2)
        base.append(pylsl.local_clock() + offset)
        for i in range(0, gsr.size, 8):
            if stop.is_set():
                return
            shift = 3.0 if i >= 192 else 0.0  # 3 s of stamps missing after 6 s: a gap
            outlet.push_chunk(gsr[i : i + 8].reshape(-1, 1).tolist(), base[0] + shift + (i + 7) / rate)
            time.sleep(0.02)
        time.sleep(1.0)

    clf = EmotionClassifier(test_model)
    out = PredictionOutlet(clf.contract, name="ekd-test-time-predictions")
    (found,) = pylsl.resolve_byprop("name", "ekd-test-time-predictions", timeout=5)
    reader = pylsl.StreamInlet(found)
    reader.open_stream(timeout=5)
    sender = threading.Thread(target=send)
    sender.start()
    predictions = []
    try:
        with LslSource("lsl://ekd-test-time?timeout=5&unit=uS") as source:
            out.bind_source(source)
            reading.set()
            for prediction in clf.stream(source, duration_s=14.0):
                out.write(prediction)
                predictions.append(prediction)
    finally:
        stop.set()
        sender.join()
    _, stamps = reader.pull_chunk(timeout=2.0, max_samples=100)
    assert len(stamps) == len(predictions) and predictions[-1].end_s >= 12.0  # windows after the gap
    for prediction, stamp in zip(predictions, stamps, strict=True):
        assert stamp == pytest.approx(base[0] + prediction.end_s, abs=0.010), prediction
    out.close()
