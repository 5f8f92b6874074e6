"""The training recipe: learning-rate schedule, class weights, best-epoch model selection and
early stopping on a validation set."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.training.config import OptimConfig, load_config
from emotionkd.training.trainer import (
    PLATEAU_SHARE,
    LoopOptions,
    TensorSet,
    balanced_accuracy,
    class_weights,
    constant_answer_ce,
    lr_factor,
    predict_proba,
    train_student,
    train_teacher,
    validation_loss,
)

from .conftest import make_dataset, tiny_student_config, tiny_teacher_config


def test_cosine_schedule_warms_up_then_decays_to_zero() -> None:
    total = 100
    factors = [lr_factor(s, total, "cosine", 0.1) for s in range(total)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(b <= a + 1e-12 for a, b in zip(factors[9:], factors[10:], strict=False))  # monotone decay
    assert factors[-1] < 0.01
    assert lr_factor(50, total, "constant", 0.1) == 1.0
    assert lr_factor(0, total, "cosine", 0.0) == pytest.approx(1.0)
    assert lr_factor(55, total, "cosine", 0.1) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


def test_balanced_class_weights_make_classes_count_equally() -> None:
    labels = torch.tensor([0, 0, 0, 1])
    weights = class_weights(labels, "balanced")
    assert weights is not None
    torch.testing.assert_close(weights, torch.tensor([4 / 6, 4 / 2]))
    counted = torch.bincount(labels, minlength=2).float() * weights
    assert counted[0] == pytest.approx(counted[1])
    assert class_weights(labels, "none") is None


def _noise_sets() -> tuple[TensorSet, TensorSet]:
    # GSR unrelated to the labels: the student can only overfit, so validation loss gets worse
    train = make_dataset(subjects=2, trials=8, windows=4, seed=1)
    val = make_dataset(subjects=1, trials=8, windows=4, seed=2)
    train.gsr[:] = torch.randn(train.gsr.shape, generator=torch.Generator().manual_seed(3)).numpy()
    return TensorSet.from_dataset(train, "valence", need_eeg=False), TensorSet.from_dataset(val, "valence", need_eeg=False)


def test_the_best_validation_epoch_is_kept_not_the_last() -> None:
    train, val = _noise_sets()
    optim = OptimConfig(lr=1e-2, epochs=8, batch_size=8)
    result = train_student(train, tiny_student_config(), optim, 0.0, LoopOptions(val_data=val))
    losses = [h["val_loss"] for h in result.history]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert best < len(losses) - 1, "setup must overfit, or this test could not tell best from last"
    assert result.history[-1]["best_epoch"] == best + 1
    assert validation_loss(result.model, val, "cpu", optim.class_weighting) == pytest.approx(losses[best], rel=1e-5)


def test_balanced_accuracy_selection_keeps_the_latest_most_accurate_epoch() -> None:
    train, val = _noise_sets()
    optim = OptimConfig(lr=1e-2, epochs=8, batch_size=8, select_by="balanced_accuracy")
    result = train_student(train, tiny_student_config(), optim, 0.0, LoopOptions(val_data=val))
    scores = [h["val_balanced_accuracy"] for h in result.history]
    best = max(i for i, score in enumerate(scores) if score == max(scores))  # ties: the later epoch
    assert result.history[-1]["best_epoch"] == best + 1
    assert all("val_loss" in h for h in result.history)  # both scores are recorded either way
    kept = balanced_accuracy(predict_proba(result.model, val, "cpu"), val.labels)
    assert kept == pytest.approx(scores[best])


def test_last_selection_keeps_the_last_epoch_and_still_records_validation() -> None:
    train, val = _noise_sets()
    optim = OptimConfig(lr=1e-2, epochs=8, batch_size=8, select_by="last")
    result = train_student(train, tiny_student_config(), optim, 0.0, LoopOptions(val_data=val))
    losses = [h["val_loss"] for h in result.history]
    assert min(losses) < losses[-1], "setup must overfit, or this test could not tell best from last"
    assert [h["best_epoch"] for h in result.history] == [float(e) for e in range(1, 9)]
    assert validation_loss(result.model, val, "cpu", optim.class_weighting) == pytest.approx(losses[-1], rel=1e-5)
    with pytest.raises(ConfigError, match="patience must be 0"):
        OptimConfig(select_by="last", patience=2)


def test_balanced_accuracy_of_a_constant_answer_is_one_half() -> None:
    labels = np.array([0, 0, 0, 1])
    always_zero = np.array([[0.9, 0.1]] * 4, dtype=np.float32)
    assert balanced_accuracy(always_zero, labels) == 0.5  # plain accuracy would say 0.75
    perfect = np.eye(2, dtype=np.float32)[labels]
    assert balanced_accuracy(perfect, labels) == 1.0
    with pytest.raises(ConfigError, match="select_by"):
        OptimConfig(select_by="accuracy")


def test_early_stopping_waits_patience_epochs_after_the_best() -> None:
    train, val = _noise_sets()
    optim = OptimConfig(lr=1e-2, epochs=8, batch_size=8, patience=1)
    history = train_student(train, tiny_student_config(), optim, 0.0, LoopOptions(val_data=val)).history
    best_epoch = int(history[-1]["best_epoch"])
    assert len(history) == min(8, best_epoch + 1)


def test_without_validation_the_last_epoch_is_kept_and_recorded_nothing_else() -> None:
    data = make_dataset(subjects=2, trials=4, windows=4)
    tensors = TensorSet.from_dataset(data, "arousal", need_eeg=True)
    history = train_teacher(tensors, tiny_teacher_config(), OptimConfig(epochs=2, batch_size=8), 0.0).history
    assert len(history) == 2 and "val_loss" not in history[-1]


def test_constant_answer_cross_entropy_is_the_weighted_label_entropy() -> None:
    labels = torch.tensor([0, 0, 0, 1])
    assert constant_answer_ce(labels, "balanced") == pytest.approx(math.log(2))
    assert constant_answer_ce(labels, "none") == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert constant_answer_ce(torch.tensor([1, 1]), "none") == 0.0


def test_a_teacher_stuck_on_the_plateau_is_retrained_from_the_next_seed(caplog: pytest.LogCaptureFixture) -> None:
    tensors = TensorSet.from_dataset(make_dataset(subjects=2, trials=4, windows=4), "arousal", need_eeg=True)
    # an lr this small cannot move the weights: every run ends where it started, on the plateau
    stuck = OptimConfig(lr=1e-12, epochs=1, batch_size=8, plateau_restarts=2)
    with caplog.at_level("INFO", logger="emotionkd.training.trainer"):
        result = train_teacher(tensors, tiny_teacher_config(), stuck, 0.0)
    assert sum("still on the plateau" in r.getMessage() for r in caplog.records) == 3  # 1 run + 2 restarts
    assert result.history[-1]["restart"] in (0.0, 1.0, 2.0) and result.history[-1]["plateau"] == 1.0
    assert any(r.levelname == "WARNING" and "all 3 run(s) ended on the majority plateau" in r.getMessage()
               for r in caplog.records)
    caplog.clear()
    # a teacher that learns (the EEG tone gives the label away) is trained once
    learns = OptimConfig(lr=1e-2, epochs=6, batch_size=8, plateau_restarts=2)
    with caplog.at_level("INFO", logger="emotionkd.training.trainer"):
        result = train_teacher(tensors, tiny_teacher_config(), learns, 0.0)
    assert result.history[-1]["ce"] < PLATEAU_SHARE * math.log(2)
    # (the per-epoch lines print the history entries, whose keys include "plateau")
    assert result.history[-1]["restart"] == 0.0
    assert not any("on the plateau" in r.getMessage() or "majority plateau" in r.getMessage() for r in caplog.records)
    assert result.history[-1]["plateau"] == 0.0


def test_plateau_restarts_belong_to_the_teacher_only() -> None:
    with pytest.raises(ConfigError, match="plateau_restarts"):
        OptimConfig(plateau_restarts=-1)
    with pytest.raises(ConfigError, match="student_optim.plateau_restarts"):
        load_config(overrides={"student_optim.plateau_restarts": 1})


def test_the_report_names_teachers_that_ended_on_the_plateau() -> None:
    from emotionkd.training.experiment import teacher_restarts

    def last(restart: float, plateau: float) -> list[dict[str, float]]:
        return [{"epoch": 1.0, "ce": 0.69, "restart": restart, "plateau": plateau}]

    results = {"curves": {"valence": {"teacher": [last(0.0, 0.0), last(2.0, 1.0)]},
                          "arousal": {"teacher": [last(1.0, 0.0), last(0.0, 0.0)]}},
               "reports": {"teacher": {"folds": {"valence": [{"fold": "s01"}, {"fold": "s02"}],
                                                 "arousal": [{"fold": "s01"}, {"fold": "s02"}]}}}}
    words = teacher_restarts(results, 2)
    assert words.startswith(", up to 2 restarts on a plateau (kept a restart: 2 of 4 teachers)")
    assert words.endswith("**1 of 4 teachers ended on the plateau** (a near-constant answer: valence s02)")
    # restarts off: only a stuck teacher is worth a word
    assert teacher_restarts(results, 0).startswith("; **1 of 4")
    clean = {"curves": {"arousal": {"teacher": [last(0.0, 0.0)]}}}
    assert teacher_restarts(clean, 0) == ""
