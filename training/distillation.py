"""The teaching stage: the student's distillation loss, feature matching and the teacher cache.

``L_S = CE(y, p_S) + kl_weight · T² · KL(p_T^T ‖ p_S^T) + feature_weight · MSE(match(f_T), f_S)``
(plus the L2 penalty on the student's convolution kernels, added by the trainer), with
p = softmax outputs (``^T``: at temperature T; the authors use T = 1) and f the flattened fused
features: the teacher's (7808) and the student's (3904) differ in size, and the paper does not
say how they were matched, so :class:`FeatureMatcher` offers four ways (METHOD.md):

* ``projection`` (default, chosen by experiment): a learned per-token map of the concatenated
  (EEG, GSR) token pair (2·64 → 64), trained with the student (both sides learn, so it could
  shrink towards a trivial match; the CE and KL terms and the L2 on the student keep that in
  check, and it gave the largest paired gain in the sweep);
* ``sum_halves``: EEG half + GSR half, token by token, no parameters; the target moves with
  the EEG input (tested), so the student is asked to reproduce from GSR what the teacher saw
  in EEG (a close second in the sweep);
* ``relational``: MSE between the batch's cosine-similarity matrices of the whole teacher
  feature and the student's (size-free);
* ``gsr_half`` (the original default, kept for the ``paper`` preset and comparison): the
  GSR-token half (tokens 61–121). A mistake as a default: the IMF score gates act per token,
  so in eval mode (what is cached) this half is a function of the GSR input alone and carries
  no EEG knowledge (``test_gsr_half_target_ignores_eeg_in_eval_mode``).

The matching, KL weight and temperature were chosen by experiment (``emotionkd-train kd-sweep
--preset experiment``, docs/results.md "KD choice"): on arousal, 2 LOSO folds of the experiment
data, ``projection`` with KL 0.1 at T = 1 gave +3.8 points over the GSR-only student
(``sum_halves`` +2.9, ``relational`` +1.3); a strong soft-label term (KL 1.0, T = 4) lowered
accuracy with every matching (−1.3 to −7.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from emotionkd.firmware_bridge.errors import ConfigError

MATCHINGS: Final = ("gsr_half", "sum_halves", "projection", "relational")


@dataclass(frozen=True)
class DistillConfig:
    """Weights of the distillation loss (authors' defaults).

    Attributes:
        kl_weight: weight of KL(p_T ‖ p_S) (0.1).
        feature_weight: weight of the feature-matching MSE (1.0).
        temperature: softmax temperature of the KL term (1.0 = none; T ≠ 1 multiplies by T²).
        matching: one of :data:`MATCHINGS`.
        l2: coefficient of Σ W² over convolution kernels (1e-3), for teacher and student alike.
    """

    kl_weight: float = 0.1
    feature_weight: float = 1.0
    temperature: float = 1.0
    matching: str = "projection"
    l2: float = 1e-3

    def __post_init__(self) -> None:
        if self.matching not in MATCHINGS:
            raise ConfigError(f"distill.matching must be one of {MATCHINGS}, got {self.matching!r}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"distill.temperature must be positive, got {self.temperature!r}")
        for name in ("kl_weight", "feature_weight", "l2"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"distill.{name} must be a non-negative number, got {value!r}")


class FeatureMatcher(nn.Module):
    """Maps a teacher feature onto the student's and measures the mismatch.

    :meth:`reduce_teacher` is the parameter-free part (so it can be cached per window);
    :meth:`forward` is the loss, which for ``projection`` owns learned parameters.

    Args:
        mode: one of :data:`MATCHINGS`.
        tokens: tokens per modality (61).
        features: features per token (64).
    """

    def __init__(self, mode: str, tokens: int, features: int) -> None:
        super().__init__()
        if mode not in MATCHINGS:
            raise ConfigError(f"feature matching must be one of {MATCHINGS}, got {mode!r}")
        self.mode = mode
        self.tokens = tokens
        self.features = features
        self.projection = nn.Linear(2 * features, features) if mode == "projection" else None

    def reduce_teacher(self, teacher_feature: Tensor) -> Tensor:
        """(B, 2·T·F) teacher feature → what :meth:`forward` compares (no parameters)."""
        halves = teacher_feature.reshape(-1, 2, self.tokens, self.features)  # EEG, GSR tokens
        if self.mode == "gsr_half":
            return halves[:, 1].flatten(1)
        if self.mode == "sum_halves":
            return (halves[:, 0] + halves[:, 1]).flatten(1)
        return teacher_feature

    def forward(self, reduced_teacher: Tensor, student_feature: Tensor) -> Tensor:
        """Scalar mismatch between a reduced teacher feature and the student's (B, T·F)."""
        if self.mode == "relational":
            t = F.normalize(reduced_teacher.flatten(1), dim=1)
            s = F.normalize(student_feature.flatten(1), dim=1)
            return F.mse_loss(s @ s.T, t @ t.T)
        if self.projection is not None:
            pairs = reduced_teacher.reshape(-1, 2, self.tokens, self.features).permute(0, 2, 1, 3)
            target = self.projection(pairs.flatten(2)).flatten(1)
            return F.mse_loss(student_feature, target)
        return F.mse_loss(student_feature, reduced_teacher)


def kl_teacher_student(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """``T² · KL(softmax(t/T) ‖ softmax(s/T))``, mean over the batch."""
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    return kl * temperature**2 if temperature != 1.0 else kl


def distillation_loss(
    student_logits: Tensor,
    student_feature: Tensor,
    labels: Tensor,
    teacher_logits: Tensor,
    reduced_teacher_feature: Tensor,
    matcher: FeatureMatcher,
    config: DistillConfig,
    class_weight: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``L_S`` without the L2 term, and its parts (``ce``, ``kl``, ``feature``) detached
    (``class_weight``: (2,) weights of the CE term, None = unweighted)."""
    ce = F.cross_entropy(student_logits, labels, weight=class_weight)
    kl = kl_teacher_student(student_logits, teacher_logits, config.temperature)
    feature = matcher(reduced_teacher_feature, student_feature)
    loss = ce + config.kl_weight * kl + config.feature_weight * feature
    return loss, {"ce": ce.detach(), "kl": kl.detach(), "feature": feature.detach()}


@dataclass(frozen=True)
class TeacherOutputs:
    """What a frozen teacher says about each training window, computed once for plain KD.

    Attributes:
        logits: (N, 2) teacher logits.
        features: (N, D) teacher features already reduced by the matcher.
    """

    logits: Tensor
    features: Tensor

    def __len__(self) -> int:
        return int(self.logits.shape[0])


@torch.no_grad()
def cache_teacher_outputs(
    teacher: nn.Module,
    eeg: Tensor,
    gsr: Tensor,
    matcher: FeatureMatcher,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> TeacherOutputs:
    """Run the teacher in eval mode over every window once (eeg (N, C, W), gsr (N, W))."""
    was_training = teacher.training
    teacher.eval()
    logits, features = [], []
    try:
        for start in range(0, gsr.shape[0], batch_size):
            e = eeg[start:start + batch_size].to(device)
            g = gsr[start:start + batch_size].to(device)
            out, feature = teacher.forward_with_features(e, g)  # type: ignore[operator]
            logits.append(out.cpu())
            features.append(matcher.reduce_teacher(feature).cpu())
    finally:
        teacher.train(was_training)
    return TeacherOutputs(torch.cat(logits), torch.cat(features))


__all__ = [
    "MATCHINGS",
    "DistillConfig",
    "FeatureMatcher",
    "TeacherOutputs",
    "cache_teacher_outputs",
    "distillation_loss",
    "kl_teacher_student",
]
