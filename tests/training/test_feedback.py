"""Adaptive feedback: the teacher learns from the temporary student through the pilot step."""

from __future__ import annotations

import copy

import pytest
import torch

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.training.distillation import DistillConfig, FeatureMatcher
from emotionkd.training.feedback import (
    FeedbackConfig,
    feedback_step,
    pilot_parameters,
    temporary_student_quiz_loss,
)
from emotionkd.training.models import EmotionNetStudent, EmotionNetTeacher, TeacherConfig

SHAPES = dict(window_samples=64, kernel_samples=8, stride_samples=4, filters=8, heads=2, head_dim=4,
              ff_dim=8, hidden=8, max_positions=16, eeg_channels=3)
NO_DROPOUT = dict(filter_dropout=0.0, attention_dropout=0.0, classifier_dropout=0.0)


def _setup(matching: str = "sum_halves", dropout: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    cfg = TeacherConfig(**SHAPES, **({} if dropout else NO_DROPOUT))
    teacher, student = EmotionNetTeacher(cfg), EmotionNetStudent(cfg.student_config())
    matcher = FeatureMatcher(matching, cfg.tokens, cfg.filters)
    batch = (torch.randn(6, 3, 64), torch.randn(6, 64), torch.tensor([0, 1, 0, 1, 1, 0]))
    quiz = (torch.randn(5, 64), torch.tensor([1, 0, 1, 1, 0]))
    return teacher, student, matcher, batch, quiz


def _quiz_grads(second_order: bool, matching: str = "sum_halves"):
    teacher, student, matcher, batch, quiz = _setup(matching)
    teacher.train(), student.train()
    _, quiz_ce = temporary_student_quiz_loss(teacher, student, matcher, batch, quiz, DistillConfig(),
                                             pilot_lr=0.1, second_order=second_order)
    return torch.autograd.grad(quiz_ce, list(teacher.parameters()), allow_unused=True)


@pytest.mark.parametrize("matching", ["sum_halves", "relational", "gsr_half"])
def test_teacher_gets_a_gradient_through_the_pilot_step(matching: str) -> None:
    grads = _quiz_grads(second_order=True, matching=matching)
    norm = sum(float(g.norm()) ** 2 for g in grads if g is not None) ** 0.5
    assert norm > 1e-8
    # it reaches the EEG side too: the teacher's EEG encoder is taught by the quiz result
    teacher = EmotionNetTeacher(TeacherConfig(**SHAPES))
    names = [n for n, _ in teacher.named_parameters()]
    eeg = [g for n, g in zip(names, grads, strict=True) if n.startswith("eeg_encoder") and g is not None]
    assert sum(float(g.abs().sum()) for g in eeg) > 0


def test_first_order_pilot_carries_no_feedback() -> None:
    grads = _quiz_grads(second_order=False)
    assert all(g is None or torch.count_nonzero(g) == 0 for g in grads)


def test_hypergradient_matches_finite_differences() -> None:
    teacher, student, matcher, batch, quiz = _setup(dropout=False)
    teacher, student = teacher.double(), student.double()
    batch = (batch[0].double(), batch[1].double(), batch[2])
    quiz = (quiz[0].double(), quiz[1])
    teacher.train(), student.train()

    def quiz_loss(t: EmotionNetTeacher) -> torch.Tensor:
        return temporary_student_quiz_loss(t, student, matcher, batch, quiz, DistillConfig(), 0.5)[1]

    weight = teacher.classifier.layers[-1].weight
    (grad,) = torch.autograd.grad(quiz_loss(teacher), [weight])
    direction = torch.randn_like(weight)
    eps = 1e-5
    plus, minus = copy.deepcopy(teacher), copy.deepcopy(teacher)
    with torch.no_grad():
        plus.classifier.layers[-1].weight += eps * direction
        minus.classifier.layers[-1].weight -= eps * direction
    numeric = (quiz_loss(plus) - quiz_loss(minus)).detach() / (2 * eps)
    assert float((grad * direction).sum()) == pytest.approx(float(numeric), rel=1e-4, abs=1e-9)
    assert abs(float(numeric)) > 1e-8


def test_pilot_leaves_the_real_student_untouched() -> None:
    teacher, student, matcher, batch, _ = _setup()
    before = copy.deepcopy(student.state_dict())
    student.train()
    t_logits, t_feature = teacher.forward_with_features(batch[0], batch[1])
    theta, _ = pilot_parameters(student, batch[1], batch[2], t_logits, matcher.reduce_teacher(t_feature),
                                matcher, DistillConfig(), pilot_lr=0.1)
    for name, value in student.state_dict().items():
        torch.testing.assert_close(value, before[name])  # BN running stats included
    assert any(not torch.equal(theta[f"student.{n}"], p) for n, p in student.named_parameters())


def test_feedback_step_updates_only_the_teacher() -> None:
    teacher, student, matcher, batch, quiz = _setup()
    optimizer = torch.optim.Adam(teacher.parameters(), lr=1e-3, eps=1e-7)
    teacher_before = copy.deepcopy(teacher.state_dict())
    student_before = copy.deepcopy(student.state_dict())
    parts = feedback_step(teacher, student, matcher, optimizer, batch, quiz, DistillConfig(), FeedbackConfig())
    assert parts["quiz_ce"] > 0 and parts["teacher_ce"] > 0
    assert any(not torch.equal(v, teacher_before[k]) for k, v in teacher.state_dict().items())
    for k, v in student.state_dict().items():
        torch.testing.assert_close(v, student_before[k])
    assert all(p.grad is None for p in student.parameters())


def test_feedback_config_validation() -> None:
    with pytest.raises(ConfigError, match="period"):
        FeedbackConfig(period=0)
    with pytest.raises(ConfigError, match="quiz_fraction"):
        FeedbackConfig(quiz_fraction=1.0)
