"""The feedback stage: the temporary student's result updates the teacher (second order).

Per feedback batch (METHOD.md, as in MetaDistil):

1. pilot update of a *temporary student*: ``θ' = θ_S − η_pilot · ∇_θS L_S(θ_S; teacher)``, with
   the graph kept (``create_graph=True``) and the student run functionally
   (``torch.func.functional_call``) on cloned buffers, so the real student's BatchNorm running
   statistics are not touched;
2. ``L_T = CE(y, p_T) + CE(y_quiz, S(θ')(x_quiz)) + L2(teacher conv kernels)``, the quiz batch
   coming from trials held out of the training split;
3. step the teacher on ``∇_T L_T``: the quiz term reaches the teacher only through the mixed
   derivative ``∂²L_S / ∂θ_S ∂T`` inside ``θ'``;
4. the trainer then does the real KD step of the student with the updated teacher.

Dropping the mixed derivative (``second_order=False``: ``θ' = θ_S − η·stopgrad(∇L_S)``) leaves
the quiz term with no path to the teacher at all, so the teacher would only see its own CE: that
first-order variant exists for tests and ablations and is **not** feedback.

The pilot sees the teacher's train-mode outputs (the teacher is being trained); the real KD
step uses its eval-mode outputs, exactly as plain KD does, so KD and KD + feedback differ only
in the teacher updates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.training.distillation import DistillConfig, FeatureMatcher, distillation_loss
from emotionkd.training.models import EmotionNetStudent, EmotionNetTeacher, l2_penalty


@dataclass(frozen=True)
class FeedbackConfig:
    """Options of the feedback stage.

    Attributes:
        pilot_lr: η_pilot, the plain gradient step of the temporary student's update (large
            enough that one step changes the student measurably, so the quiz result carries
            a signal back to the teacher).
        period: do a feedback step every ``period`` student batches (1 = every batch).
        teacher_lr: Adam learning rate of the teacher during feedback (the paper preset: 5e-5).
        quiz_fraction: share of the training trials held out as quiz data (never trained on).
    """

    pilot_lr: float = 5e-2
    period: int = 1
    teacher_lr: float = 1e-4
    quiz_fraction: float = 0.1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.pilot_lr) and self.pilot_lr > 0):
            raise ConfigError(f"feedback.pilot_lr must be positive, got {self.pilot_lr!r}")
        if not (math.isfinite(self.teacher_lr) and self.teacher_lr > 0):
            raise ConfigError(f"feedback.teacher_lr must be positive, got {self.teacher_lr!r}")
        if not (isinstance(self.period, int) and self.period >= 1):
            raise ConfigError(f"feedback.period must be an integer >= 1, got {self.period!r}")
        if not 0.0 < self.quiz_fraction < 1.0:
            raise ConfigError(f"feedback.quiz_fraction must be in (0, 1), got {self.quiz_fraction!r}")


class _FeatureView(nn.Module):
    """Lets ``functional_call`` reach :meth:`EmotionNetStudent.forward_with_features`."""

    def __init__(self, student: EmotionNetStudent) -> None:
        super().__init__()
        self.student = student

    def forward(self, gsr: Tensor) -> tuple[Tensor, Tensor]:
        return self.student.forward_with_features(gsr)


def _conv_kernel_names(student: nn.Module) -> list[str]:
    return [f"{name}.weight" for name, m in student.named_modules() if isinstance(m, nn.Conv2d)]


def pilot_parameters(
    student: EmotionNetStudent,
    gsr: Tensor,
    labels: Tensor,
    teacher_logits: Tensor,
    reduced_teacher_feature: Tensor,
    matcher: FeatureMatcher,
    distill: DistillConfig,
    pilot_lr: float,
    *,
    second_order: bool = True,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """θ' = θ_S − η ∇L_S (one KD step of a temporary student) and the buffers it ran with.

    With ``second_order`` the gradient keeps its graph, so θ' is differentiable with respect to
    the teacher's outputs (and through them, the teacher). Buffers are clones: the real
    student's BatchNorm running statistics stay as they were.
    """
    view = _FeatureView(student)
    params: dict[str, Tensor] = {f"student.{n}": p for n, p in student.named_parameters()}
    buffers = {f"student.{n}": b.clone() for n, b in student.named_buffers()}
    logits, feature = functional_call(view, (params, buffers), (gsr,))
    loss, _ = distillation_loss(logits, feature, labels, teacher_logits, reduced_teacher_feature,
                                matcher, distill)
    if distill.l2:
        loss = loss + distill.l2 * sum((params[f"student.{n}"] ** 2).sum() for n in _conv_kernel_names(student))
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=second_order)
    updated = {name: p - pilot_lr * g for (name, p), g in zip(params.items(), grads, strict=True)}
    return updated, buffers


def temporary_student_quiz_loss(
    teacher: EmotionNetTeacher,
    student: EmotionNetStudent,
    matcher: FeatureMatcher,
    batch: tuple[Tensor, Tensor, Tensor],
    quiz: tuple[Tensor, Tensor],
    distill: DistillConfig,
    pilot_lr: float,
    *,
    second_order: bool = True,
) -> tuple[Tensor, Tensor]:
    """(teacher CE on ``batch``, CE of the pilot-updated temporary student on ``quiz``).

    ``batch`` = (eeg (B, C, W), gsr (B, W), labels (B,)); ``quiz`` = (gsr (Q, W), labels (Q,)).
    Both losses carry graphs into the teacher's parameters.
    """
    eeg, gsr, labels = batch
    teacher_logits, teacher_feature = teacher.forward_with_features(eeg, gsr)
    theta, buffers = pilot_parameters(
        student, gsr, labels, teacher_logits, matcher.reduce_teacher(teacher_feature), matcher,
        distill, pilot_lr, second_order=second_order)
    quiz_logits, _ = functional_call(_FeatureView(student), (theta, buffers), (quiz[0],))
    return F.cross_entropy(teacher_logits, labels), F.cross_entropy(quiz_logits, quiz[1])


def feedback_step(
    teacher: EmotionNetTeacher,
    student: EmotionNetStudent,
    matcher: FeatureMatcher,
    teacher_optimizer: torch.optim.Optimizer,
    batch: tuple[Tensor, Tensor, Tensor],
    quiz: tuple[Tensor, Tensor],
    distill: DistillConfig,
    feedback: FeedbackConfig,
    sync_gradients: Callable[[Iterable[nn.Parameter]], None] | None = None,
) -> dict[str, float]:
    """Steps 1–3 above: update the teacher from its CE and the temporary student's quiz CE.

    ``sync_gradients`` averages gradients across data-parallel processes (None: one process).
    Returns the loss parts as floats.
    """
    teacher.train()
    student.train()
    teacher_ce, quiz_ce = temporary_student_quiz_loss(
        teacher, student, matcher, batch, quiz, distill, feedback.pilot_lr)
    loss = teacher_ce + quiz_ce + l2_penalty(teacher, distill.l2)
    params = [p for p in teacher.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    for p, g in zip(params, grads, strict=True):
        p.grad = torch.zeros_like(p) if g is None else g.detach()
    if sync_gradients is not None:
        sync_gradients(params)
    teacher_optimizer.step()
    teacher_optimizer.zero_grad(set_to_none=True)
    return {"teacher_ce": teacher_ce.item(), "quiz_ce": quiz_ce.item()}


__all__ = [
    "FeedbackConfig",
    "feedback_step",
    "pilot_parameters",
    "temporary_student_quiz_loss",
]
