"""Label hysteresis (as silero-vad's enter/leave thresholds): off by default, the same in the
classifier, the gateway and the CLI, probabilities untouched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.sdk.classifier import EmotionClassifier
from emotionkd.sdk.cli import app
from emotionkd.sdk.gateway import Gateway
from emotionkd.sdk.prediction import LabelDecision, LabelRule


def _reference(probabilities: list[float], width: float) -> list[str]:
    """The rule written out: first window at 0.5; then enter high at >= 0.5 + w/2, leave below 0.5 - w/2."""
    labels: list[str] = []
    high = None
    for p in probabilities:
        if high is None:
            high = p >= 0.5
        elif high:
            high = p >= 0.5 - width / 2
        else:
            high = p >= 0.5 + width / 2
        labels.append("high" if high else "low")
    return labels


def test_label_decision_enters_above_and_leaves_below() -> None:
    probabilities = [0.45, 0.55, 0.58, 0.62, 0.55, 0.42, 0.38, 0.45, 0.59, 0.61]
    plain = LabelDecision(LabelRule(), ("low", "high"))
    steady = LabelDecision(LabelRule(hysteresis=0.2), ("low", "high"))
    assert [plain.label("arousal", p) for p in probabilities] == [
        "low", "high", "high", "high", "high", "low", "low", "low", "high", "high"]
    assert [steady.label("arousal", p) for p in probabilities] == [
        "low", "low", "low", "high", "high", "high", "low", "low", "low", "high"]
    steady.reset()
    assert steady.label("arousal", 0.55) == "high"  # a new stream starts at the threshold


@pytest.mark.parametrize("width", [-0.1, 1.0, float("nan")])
def test_bad_hysteresis_is_refused(test_model: Path, width: float) -> None:
    with pytest.raises(ConfigError, match="hysteresis"):
        EmotionClassifier(test_model, hysteresis=width)


def _wavering(seconds: float = 240.0, rate_hz: float = 32.0) -> np.ndarray:
    """Conductance whose trend flips every few seconds, so arousal wavers around 0.5."""
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    rng = np.random.default_rng(3)
    return 5.0 + 0.05 * np.sin(2 * np.pi * t / 7.0) + 0.02 * np.cumsum(rng.standard_normal(t.size)) / np.sqrt(rate_hz)


def test_classifier_hysteresis_changes_labels_only(test_model: Path) -> None:
    gsr = _wavering()
    plain = EmotionClassifier(test_model).predict(gsr, sample_rate_hz=32.0)
    clf = EmotionClassifier(test_model, hysteresis=0.2)
    steady = [p for chunk in np.array_split(gsr, 37) for p in clf.push(chunk, sample_rate_hz=32.0)] + clf.flush()
    assert [(p.start_s, p.quality) for p in steady] == [(p.start_s, p.quality) for p in plain]
    assert [p.arousal for p in steady if p.ok] == pytest.approx([p.arousal for p in plain if p.ok], abs=1e-6)
    assert [p.valence for p in steady if p.ok] == pytest.approx([p.valence for p in plain if p.ok], abs=1e-6)
    ok = [p for p in steady if p.ok]
    assert [p.arousal_label for p in ok] == _reference([p.arousal for p in ok], 0.2)
    assert [p.valence_label for p in ok] == _reference([p.valence for p in ok], 0.2)
    flips = [sum(a != b for a, b in zip(labels, labels[1:], strict=False))
             for labels in ([p.arousal_label for p in plain if p.ok], [p.arousal_label for p in ok])]
    assert flips[1] < flips[0]  # the point of it: fewer flips on a wavering signal
    assert [p.arousal_label for p in steady] != [p.arousal_label for p in plain]


def test_gateway_hysteresis_matches_the_classifier(test_model: Path) -> None:
    gsr = _wavering(120.0)
    expected = EmotionClassifier(test_model, hysteresis=0.2).predict(gsr, sample_rate_hz=32.0)
    with Gateway(test_model, hysteresis=0.2) as gateway:
        gateway.add_stream("a")
        got = []
        for chunk in np.array_split(gsr, 12):
            gateway.push("a", chunk, sample_rate_hz=32.0)
            got += gateway.run_batch().get("a", [])
        got += gateway.remove_stream("a")
    assert [(p.arousal_label, p.valence_label) for p in got] == [(p.arousal_label, p.valence_label) for p in expected]


def test_cli_stream_hysteresis(test_model: Path) -> None:
    result = CliRunner().invoke(app, ["stream", "--simulate", "--speed", "0", "--duration", "40", "--format", "jsonl",
                                      "--hysteresis", "0.3", "--model", str(test_model)])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    ok = [r for r in rows if r["quality"] == "ok"]
    assert len(ok) > 10
    assert [r["arousal_label"] for r in ok] == _reference([r["arousal"] for r in ok], 0.3)
