"""Protocols never leak a trial (or, for LOSO, a subject) across a split; metrics are exact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.training.evaluation import (
    EvaluationReport,
    aggregate,
    binary_metrics,
    compare_arms,
    comparison_table,
    folds,
    leave_one_subject_out,
    paired_comparison,
    split_by_trial,
    trialwise_kfold,
    validation_split,
)
from emotionkd.training.windowed import WindowedDataset


def _dataset(subjects: int = 4, trials: int = 12, windows: int = 3, seed: int = 0) -> WindowedDataset:
    rng = np.random.default_rng(seed)
    subject = np.repeat(np.arange(1, subjects + 1), trials * windows)
    trial = np.tile(np.repeat(np.arange(1, trials + 1), windows), subjects)
    trial_labels = rng.integers(0, 2, size=(subjects, trials, 2))
    labels = trial_labels[subject - 1, trial - 1]
    n = subject.size
    return WindowedDataset(
        gsr=rng.normal(size=(n, 8)).astype(np.float32), eeg=None, labels=labels.astype(np.int64),
        ratings=np.where(labels == 1, 7.0, 3.0).astype(np.float32), subject=subject, trial=trial,
        start_s=np.tile(np.arange(windows) * 4.0, subjects * trials).astype(np.float32),
    )


def _pairs(data: WindowedDataset, index: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(data.subject[index].tolist(), data.trial[index].tolist(), strict=True))


@pytest.mark.parametrize("stratify", [None, "arousal"])
def test_trialwise_kfold_never_puts_a_trial_on_both_sides(stratify: str | None) -> None:
    data = _dataset()
    all_folds = list(trialwise_kfold(data, k=4, seed=1, stratify=stratify))
    assert len(all_folds) == 4 * 4
    tested: list[tuple[int, int]] = []
    for fold in all_folds:
        assert not _pairs(data, fold.train) & _pairs(data, fold.test)
        assert set(data.subject[fold.train]) == set(data.subject[fold.test]) == {fold.subject}
        assert np.intersect1d(fold.train, fold.test).size == 0
        assert fold.train.size + fold.test.size == (data.subject == fold.subject).sum()
        tested += sorted(_pairs(data, fold.test))
    # every trial is tested exactly once
    assert sorted(tested) == sorted(_pairs(data, np.arange(len(data))))
    assert len(tested) == len(set(tested))


def test_stratified_folds_hold_both_classes() -> None:
    data = _dataset(subjects=1, trials=20)
    per_trial = data.labels[::3, 0]
    assert 4 <= per_trial.sum() <= 16  # both classes present
    for fold in trialwise_kfold(data, k=4, stratify="arousal"):
        assert set(data.labels[fold.test, 0].tolist()) == {0, 1}


def test_default_k_is_ten_and_too_few_trials_is_refused() -> None:
    assert len(list(folds(_dataset(subjects=2, trials=10), "trialwise_kfold"))) == 20
    with pytest.raises(ConfigError, match="fewer than k = 10"):
        list(trialwise_kfold(_dataset(trials=8)))
    with pytest.raises(ConfigError, match="unknown protocol"):
        folds(_dataset(), "random")


def test_leave_one_subject_out_never_shares_a_subject() -> None:
    data = _dataset()
    all_folds = list(leave_one_subject_out(data))
    assert [f.subject for f in all_folds] == [1, 2, 3, 4]
    for fold in all_folds:
        assert set(data.subject[fold.test].tolist()) == {fold.subject}
        assert fold.subject not in set(data.subject[fold.train].tolist())
        assert fold.train.size + fold.test.size == len(data)
    with pytest.raises(ConfigError, match="at least 2 subjects"):
        list(leave_one_subject_out(_dataset(subjects=1)))


def test_split_by_trial_holds_out_whole_trials() -> None:
    data = _dataset()
    fold = next(iter(leave_one_subject_out(data)))
    train, quiz = split_by_trial(data, fold.train, 0.25, seed=3)
    assert not _pairs(data, train) & _pairs(data, quiz)
    assert np.array_equal(np.sort(np.concatenate([train, quiz])), np.sort(fold.train))
    assert len(_pairs(data, quiz)) == round(0.25 * 36)
    with pytest.raises(DataError, match="whole trials"):
        split_by_trial(data, np.flatnonzero((data.subject == 1) & (data.trial == 1)))


def test_binary_metrics_by_hand() -> None:
    m = binary_metrics([1, 1, 0, 0], [1, 0, 0, 0])
    assert m["accuracy"] == 0.75
    assert m["f1"] == pytest.approx(2 / 3)  # high: tp 1, fn 1
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)  # low: tp 2, fp 1
    assert m["majority_rate"] == 0.5
    constant = binary_metrics([1, 0, 0, 0], [0, 0, 0, 0], y_train=[0, 0, 1])
    assert constant["f1"] == 0.0 and constant["majority_rate"] == 0.75
    assert constant["macro_f1"] == pytest.approx((0 + 2 * 3 / (6 + 1)) / 2)
    with pytest.raises(DataError):
        binary_metrics([0, 1], [0])
    with pytest.raises(DataError):
        binary_metrics([0, 2], [0, 1])


def test_aggregate_and_report_outputs() -> None:
    stats = aggregate([{"accuracy": 0.5, "macro_f1": 0.4, "f1": 0.3, "majority_rate": 0.6},
                       {"accuracy": 0.7, "macro_f1": 0.6, "f1": 0.5, "majority_rate": 0.6}])
    assert stats["accuracy"]["mean"] == pytest.approx(0.6)
    assert stats["accuracy"]["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    data = _dataset()
    report = EvaluationReport("loso", "student")
    for fold in leave_one_subject_out(data):
        for t, target in enumerate(("arousal", "valence")):
            report.add(target, fold, data.labels[fold.test, t], np.ones(fold.test.size, int), data.labels[fold.train, t])
    parsed = json.loads(report.to_json())
    assert set(parsed["summary"]) == {"arousal", "valence"}
    assert len(parsed["folds"]["arousal"]) == 4
    table = report.to_markdown()
    assert table.count("\n") == 4 and "| student | loso | arousal |" in table and "±" in table


def test_validation_split_takes_whole_subjects_or_whole_trials() -> None:
    data = _dataset(subjects=6)
    fit, val = validation_split(data, 0.2, seed=0)
    assert set(data.subject[fit].tolist()).isdisjoint(data.subject[val].tolist())
    assert len(set(data.subject[val].tolist())) == 1 and len(fit) + len(val) == len(data)
    one = _dataset(subjects=1)
    fit, val = validation_split(one, 0.25, seed=0)
    assert _pairs(one, fit).isdisjoint(_pairs(one, val)) and len(_pairs(one, val)) == 3
    with pytest.raises(ConfigError, match="fraction"):
        validation_split(data, 0.0)


def test_paired_comparison_by_hand() -> None:
    a, b = [0.7, 0.6, 0.8, 0.65, 0.9, 0.75], [0.5, 0.55, 0.6, 0.6, 0.7, 0.5]
    stats = paired_comparison(a, b)
    d = np.subtract(a, b)
    assert stats["mean_difference"] == pytest.approx(d.mean()) and stats["n"] == 6
    assert stats["ci_low"] <= d.mean() <= stats["ci_high"] and stats["ci_low"] > 0
    assert stats["p_value"] == pytest.approx(0.03125)  # all 6 positive: 2 / 2**6, exact Wilcoxon
    assert paired_comparison(a, b) == stats  # fixed bootstrap seed
    assert paired_comparison(a, a)["p_value"] == 1.0
    with pytest.raises(DataError, match="equal-length"):
        paired_comparison(a, b[:3])


def test_compare_arms_matches_folds_by_name() -> None:
    data = _dataset(subjects=3)
    reports = {m: EvaluationReport("loso", m) for m in ("kd", "student")}
    for i, fold in enumerate(leave_one_subject_out(data)):
        y = data.labels[fold.test, 0]
        reports["student"].add("arousal", fold, y, 1 - y)
        reports["kd"].add("arousal", fold, y, y if i < 2 else 1 - y)
    rows = compare_arms(reports, [("kd", "student"), ("kd", "missing")])["arousal"]
    assert len(rows) == 1 and rows[0]["differences"] == [1.0, 1.0, 0.0]
    assert "| arousal | kd − student | +66.67 |" in comparison_table({"arousal": rows})


def test_binary_metrics_agree_with_scikit_learn() -> None:
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(4)
    for _ in range(20):
        t, p = rng.integers(0, 2, 30), rng.integers(0, 2, 30)
        m = binary_metrics(t, p)
        assert m["accuracy"] == pytest.approx(accuracy_score(t, p))
        assert m["f1"] == pytest.approx(f1_score(t, p, zero_division=0))
        assert m["macro_f1"] == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
        assert m["chance"] == pytest.approx(max(t.mean(), 1 - t.mean()))
