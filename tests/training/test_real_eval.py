"""The real-data evaluation: decision points aligned with the labels, the same points for every
arm, metrics against brute force, and the command end to end on the Stress-Predict excerpt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emotionkd.sdk.preprocessing import PreprocessingConfig
from emotionkd.training.cli import app
from emotionkd.training.datasets.recordings import read_labelled_recordings
from emotionkd.training.real_eval import (
    RealEvalConfig,
    auc,
    decision_points,
    fit_logistic,
    fold_groups,
    macro_f1,
    model_inputs,
    raw_features,
)

from .test_finetune_real import base_student  # noqa: F401 - fixture

SOURCE = "binary stress label: stress task = high arousal"


def test_decision_points_follow_the_per_second_labels(excerpt: Path) -> None:
    by_subject, meta = read_labelled_recordings(excerpt, label_source=SOURCE)
    recordings = [(s, r) for s, recs in sorted(by_subject.items()) for r in recs]
    config = RealEvalConfig(hop_s=4.0, context_s=32.0)
    d = decision_points(recordings, config)
    assert meta["licence"].startswith("MIT License")
    # participant 2: the stress task is unix 1644228196..1644228572, the recording starts at 1644227574
    lines = (excerpt / "labels.csv").read_text().splitlines()[1:]
    stress = [int(t) - 1644227574 for p, t, lab in (row.split(",") for row in lines) if p == "2" and lab == "1"]
    first, last = min(stress), max(stress) + 1
    mine = (d.subject == 2) & (d.label == 1)
    ends = d.end_s[mine]
    assert ends.min() >= first + 32 and ends.max() <= last and np.all(ends % 4 == 0)
    assert mine.sum() == len(range(int(np.ceil((first + 32) / 4)), last // 4 + 1))
    # the baseline level is the mean of the last 4 s of raw µS before the decision point
    rec = by_subject[2][0]
    k = int(np.flatnonzero(mine)[0])
    end = int(d.end_s[k] * 4)
    assert d.features[k, 0] == pytest.approx(rec.gsr[end - 16:end].mean())
    # the model input ends at the same point: the window a stream of the recording gives there
    x, usable = model_inputs(recordings, d, PreprocessingConfig(), 4.0)
    assert usable.mean() > 0.9
    from emotionkd.sdk.preprocessing import GsrPreprocessor

    pre = PreprocessingConfig()
    windows = GsrPreprocessor(4.0, "uS", pre).apply(rec.gsr[: end + 40])  # + 10 s: the resampler's look-ahead
    j = int(np.flatnonzero(np.isclose(windows.start_s, d.end_s[k] - pre.window_s))[0])
    np.testing.assert_allclose(x[k], windows.features[j], atol=1e-4)


def test_metrics_against_brute_force() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    score = rng.normal(size=200) + y
    pairs = [(a > b) + 0.5 * (a == b) for a in score[y == 1] for b in score[y == 0]]
    assert auc(y, score) == pytest.approx(np.mean(pairs))
    assert np.isnan(auc(np.ones(5, np.int64), score[:5]))
    assert macro_f1(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])) == pytest.approx((2 / 3 + 0.8) / 2)
    x = np.column_stack([y + rng.normal(0, 0.3, 200), rng.normal(size=200)])
    assert auc(y, fit_logistic(x, y)(x)) > 0.9
    assert fold_groups([5, 2, 9, 3, 2], 2) == [[2, 5], [3, 9]] and fold_groups([4, 1], 0) == [[1], [4]]
    flat = raw_features(np.full(128, 2.0), 4.0)
    assert flat.tolist() == [2.0, pytest.approx(0.0, abs=1e-12), 0.0, 0.0]
    rising = raw_features(np.r_[np.full(64, 2.0), np.linspace(2, 2.3, 8), np.full(56, 2.3)], 4.0)
    assert rising[2] == pytest.approx(60 / 32) and rising[3] == pytest.approx(0.3)


def test_evaluate_real_command_on_two_real_participants(excerpt: Path, base_student: Path,  # noqa: F811
                                                        tmp_path: Path) -> None:
    out = tmp_path / "real"
    result = CliRunner().invoke(app, [
        "evaluate-real", str(excerpt), "--from", str(base_student), "--shipped", "bundled", "--folds", "2",
        "--epochs", "1", "--train-windows", "64", "--out", str(out), "--label-source", SOURCE,
        "--write-finetuned", str(out / "student-real.pt"), "--baseline-tau", "90,3000", "--seed-baseline-from-rest"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    results = json.loads((out / "results.json").read_text())
    assert results["data"]["participants"] == 2 and results["folds"] == [[2], [3]]
    assert set(results["per_person"]) == {"fine-tuned", "scratch", "shipped", "logreg-level", "logreg-features",
                                          "logreg-input-features", "person-threshold"}
    for table in results["per_person"].values():
        assert set(table) == {"2", "3"} and all(0.0 <= m["auc"] <= 1.0 for m in table.values())
    # every arm scored on the same points
    windows = {arm: [t[p]["windows"] for p in ("2", "3")] for arm, t in results["per_person"].items()}
    assert len({tuple(v) for v in windows.values()}) == 1
    assert "fine-tuned vs shipped" in results["summary"]["paired_auc"]
    assert (out / "per-person-auc.png").stat().st_size > 5000 and "Wilcoxon" in (out / "results.md").read_text()
    assert results["data"]["label_provenance"]["arousal"] == SOURCE
    # personal calibration (a v2 base): streams after the first rest, baseline cold vs seeded
    cal = results["calibration"]
    assert set(cal["per_person"]["cold"]) == {"2", "3"} and "Personal calibration" in (out / "results.md").read_text()
    assert cal["auc"]["persons"] == 2
    # the final model: arousal head fine-tuned on everyone, its card carries the evaluation
    from emotionkd.training.checkpoint import load_student_checkpoint

    final = load_student_checkpoint(out / "student-real.pt").contract
    arousal = final.origin("arousal")
    assert (arousal.data_kind, arousal.labels, arousal.subjects) == ("real", SOURCE, 2)
    assert arousal.licence.startswith("MIT License") and arousal.protocol.startswith("2-fold grouped by participant")
    median = results["summary"]["arms"]["fine-tuned"]["auc"]["median"]
    assert arousal.metrics["auc_median_per_person"] == pytest.approx(median)
    assert final.origin("valence").data_kind == "synthetic"
    # the baseline time constant: each fold's choice made on its training participant alone
    tau = results["baseline_tau"]
    assert tau["nested"] and tau["grid"] == [90.0, 3000.0]
    assert all(fold["tau_s"] in (90.0, 3000.0) for fold in tau["folds"])
    assert final.preprocessing_config().baseline_tau_s == tau["final"]["tau_s"]
    assert final.preprocessing_config().to_params() == tau["model_preprocessing"]
    # trained on rest-seeded streams: the contract says so (the SDK then asks for a rest recording),
    # and the card carries the personal-calibration figures
    assert final.preprocessing_config().wants_rest_baseline
    assert arousal.metrics["auc_median_post_rest_seeded"] == pytest.approx(cal["auc"]["seeded_median"])


def test_calibration_streams_start_after_the_first_rest_and_differ_only_in_the_seed(excerpt: Path) -> None:
    from emotionkd.sdk.preprocessing import DEFAULT_PREPROCESSING, GsrPreprocessor, rest_baseline_us
    from emotionkd.training.real_eval import calibration_inputs

    by_subject, _ = read_labelled_recordings(excerpt)
    recordings = [(s, r) for s, recs in sorted(by_subject.items()) for r in recs]
    config = RealEvalConfig(rest_s=120.0)
    d = decision_points(recordings, config)
    cold, seeded, usable = calibration_inputs(recordings, d, DEFAULT_PREPROCESSING, config)
    rec = by_subject[2][0]
    rest = rec.segments[0]
    start_s = np.ceil(rest.end / 4.0 / 4.0) * 4.0  # first rest span's end, on the 4 s grid
    mine = np.flatnonzero((d.subject == 2) & usable)
    assert d.end_s[mine].min() >= start_s + DEFAULT_PREPROCESSING.window_s
    assert not usable[(d.subject == 2) & (d.end_s < start_s + 32)].any()
    seed = rest_baseline_us(rec.gsr[rest.start:rest.start + 480], 4.0, "uS", DEFAULT_PREPROCESSING)
    k = mine[0]
    stream = rec.gsr[int(start_s * 4):int(d.end_s[k] * 4) + 40]
    hop = int(4 * DEFAULT_PREPROCESSING.rate_hz)
    for features, baseline in ((seeded, seed), (cold, None)):
        w = GsrPreprocessor(4.0, "uS", DEFAULT_PREPROCESSING, hop, initial_baseline_us=baseline).apply(stream)
        j = int(np.flatnonzero(np.isclose(w.start_s, d.end_s[k] - start_s - 32.0))[0])
        np.testing.assert_allclose(features[k], w.features[j], atol=1e-4)
    assert not np.allclose(cold[k], seeded[k], atol=1e-3)


def test_baseline_tau_is_chosen_on_the_given_participants_only() -> None:
    from emotionkd.training.real_eval import Decisions, choose_baseline_tau

    y = np.tile([0, 0, 1, 1], 3)
    subject = np.repeat([1, 2, 3], 4)
    d = Decisions(subject, y, np.zeros(12, np.int64), np.arange(12.0), np.zeros((12, 4)))
    good, bad = y[:4].astype(float), 1.0 - y[:4]
    levels = {90.0: np.r_[good, good, bad], 900.0: np.r_[bad, bad, good]}  # 90 s ranks people 1, 2 right
    assert choose_baseline_tau(levels, d, [1, 2])[0] == 90.0
    assert choose_baseline_tau(levels, d, [3])[0] == 900.0
    tau, medians = choose_baseline_tau(levels, d, [1, 2, 3])
    assert (tau, medians) == (90.0, {90.0: 1.0, 900.0: 0.0})
    assert choose_baseline_tau({300.0: np.tile(good, 3), 30.0: np.tile(good, 3)}, d, [1])[0] == 30.0  # a tie: the shorter


def test_seed_from_rest_starts_each_recordings_baseline_at_its_rest_level(excerpt: Path) -> None:
    from emotionkd.sdk.preprocessing import DEFAULT_PREPROCESSING, GsrPreprocessor, rest_baseline_us
    from emotionkd.training.real_eval import rest_seeds_us

    by_subject, _ = read_labelled_recordings(excerpt)
    recordings = [(s, r) for s, recs in sorted(by_subject.items()) for r in recs]
    seeds = rest_seeds_us(recordings, DEFAULT_PREPROCESSING, 60.0)
    rec = recordings[0][1]
    rest = next(seg for seg in rec.segments if seg.labels[0] == 0)
    assert seeds[0] == rest_baseline_us(rec.gsr[rest.end - 240:rest.end], 4.0, "uS", DEFAULT_PREPROCESSING)
    d = decision_points(recordings, RealEvalConfig())
    seeded, ok = model_inputs(recordings, d, DEFAULT_PREPROCESSING, 4.0, seeds)
    cold, _ = model_inputs(recordings, d, DEFAULT_PREPROCESSING, 4.0)
    k = int(np.flatnonzero(ok & (d.recording == 0))[0])
    hop = int(4 * DEFAULT_PREPROCESSING.rate_hz)
    w = GsrPreprocessor(4.0, "uS", DEFAULT_PREPROCESSING, hop, initial_baseline_us=seeds[0]).apply(rec.gsr)
    j = int(np.flatnonzero(np.isclose(w.start_s, d.end_s[k] - 32.0))[0])
    np.testing.assert_allclose(seeded[k], w.features[j], atol=1e-5)
    assert not np.allclose(seeded[k], cold[k])  # the first windows differ: the baseline started elsewhere


def test_points_inside_the_seeding_rest_are_marked(excerpt: Path) -> None:
    from emotionkd.training.real_eval import inside_first_rest

    by_subject, _ = read_labelled_recordings(excerpt)
    recordings = [(s, r) for s, recs in sorted(by_subject.items()) for r in recs]
    d = decision_points(recordings, RealEvalConfig())
    inside = inside_first_rest(recordings, d)
    for r, (_, rec) in enumerate(recordings):
        rest = next(seg for seg in rec.segments if seg.labels[0] == 0)
        mine = d.recording == r
        assert np.array_equal(inside[mine], d.end_s[mine] <= rest.end / rec.rate_hz)
        assert inside[mine].any() and not inside[mine].all() and (d.label[mine & inside] == 0).all()


def test_input_features_read_the_model_input_at_its_own_scr_criterion() -> None:
    from emotionkd.sdk.preprocessing import PreprocessingConfig
    from emotionkd.training.baselines import gsr_features
    from emotionkd.training.real_eval import input_features

    v2 = PreprocessingConfig(normalisation="log_baseline", rate_hz=16.0, window_samples=512, log_scale=10.0)
    t = np.arange(512) / 16.0
    # a level of 0.5 and one rise of 0.8 units in 2 s (0.4 units/s, above v2's 0.1 units/s criterion)
    x = (0.5 + 0.8 * np.clip((t - 10.0) / 2.0, 0.0, 1.0)).astype(np.float32)[None]
    got = input_features(x, v2)
    assert got.shape == (1, 4) and got[0, 2] > 0  # one SCR counted
    np.testing.assert_allclose(got, gsr_features(x, 16.0, 0.1))
    # a rise of 0.08 units/s: an SCR at the µS criterion (0.05 /s) but not at v2's 1 %/s (0.1 units/s)
    slow = ((x - 0.5) * 0.2).astype(np.float32)
    assert input_features(slow, v2)[0, 2] == 0 and gsr_features(slow, 16.0, 0.05)[0, 2] > 0
