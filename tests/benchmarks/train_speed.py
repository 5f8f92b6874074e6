"""Prints training throughput (windows/s) of one optimisation step of the faithful models on CPU:
teacher, GSR-only student, KD (cached teacher outputs), KD + adaptive feedback, and the cost of a
feedback step relative to a KD step.

Run: ``python tests/benchmarks/train_speed.py [--batch 32] [--steps 5] [--threads N]``.
Numbers, not assertions: they depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch.nn import functional as F

from emotionkd.training.distillation import DistillConfig, FeatureMatcher, distillation_loss
from emotionkd.training.feedback import FeedbackConfig, feedback_step
from emotionkd.training.models import (
    EmotionNetStudent,
    EmotionNetTeacher,
    TeacherConfig,
    l2_penalty,
)


def _time(step: Callable[[], None], steps: int) -> float:
    step()  # warm-up (allocations, first-call dispatch)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = TeacherConfig()
    teacher, student = EmotionNetTeacher(cfg).train(), EmotionNetStudent(cfg.student_config()).train()
    matcher = FeatureMatcher("gsr_half", cfg.tokens, cfg.filters)
    distill = DistillConfig()
    b = args.batch
    eeg, gsr = torch.randn(b, 28, 512), torch.randn(b, 512)
    labels = torch.randint(0, 2, (b,))
    quiz = (torch.randn(b, 512), torch.randint(0, 2, (b,)))
    t_opt = torch.optim.Adam(teacher.parameters(), lr=1e-4, eps=1e-7)
    s_opt = torch.optim.Adam(student.parameters(), lr=1e-4, eps=1e-7)
    with torch.no_grad():
        teacher.eval()
        cached_logits, raw = teacher.forward_with_features(eeg, gsr)
        cached_feature = matcher.reduce_teacher(raw)
        teacher.train()

    def teacher_step() -> None:
        loss = F.cross_entropy(teacher(eeg, gsr), labels) + l2_penalty(teacher, distill.l2)
        t_opt.zero_grad()
        loss.backward()
        t_opt.step()

    def student_step() -> None:
        loss = F.cross_entropy(student(gsr), labels) + l2_penalty(student, distill.l2)
        s_opt.zero_grad()
        loss.backward()
        s_opt.step()

    def kd_step(t_logits: torch.Tensor = cached_logits, t_feature: torch.Tensor = cached_feature) -> None:
        logits, feature = student.forward_with_features(gsr)
        loss, _ = distillation_loss(logits, feature, labels, t_logits, t_feature, matcher, distill)
        loss = loss + l2_penalty(student, distill.l2)
        s_opt.zero_grad()
        loss.backward()
        s_opt.step()

    def feedback_kd_step() -> None:
        feedback_step(teacher, student, matcher, t_opt, (eeg, gsr, labels), quiz, distill, FeedbackConfig())
        with torch.no_grad():  # the real KD step uses the updated teacher's eval-mode outputs
            teacher.eval()
            logits, raw_feature = teacher.forward_with_features(eeg, gsr)
            teacher.train()
        kd_step(logits, matcher.reduce_teacher(raw_feature))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {b}, {args.steps} steps, "
          "faithful models (teacher 2,047,490 / student 993,986 parameters)")
    timings = {name: _time(fn, args.steps) for name, fn in
               (("teacher", teacher_step), ("student", student_step), ("kd", kd_step),
                ("kd+feedback", feedback_kd_step))}
    for name, seconds in timings.items():
        print(f"{name:>12}: {b / seconds:8.1f} windows/s  ({1000 * seconds:7.1f} ms/step)")
    print(f"feedback step (pilot + teacher update + real KD step) costs "
          f"{timings['kd+feedback'] / timings['kd']:.1f}x a KD step with cached teacher outputs")


if __name__ == "__main__":
    main()
