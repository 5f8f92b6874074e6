"""Faithful vs compact student, leave-one-subject-out, same teacher and recipe, paired per fold.

Per fold and target, one teacher is trained on the training subjects; the faithful student and
the compact student (:data:`~emotionkd.training.models.COMPACT_STUDENT_OPTIONS`) are then both
distilled from **that** teacher with the same recipe (``kd``) and scored on the held-out subject.
So each fold gives a paired difference (compact − faithful) that does not contain the
teacher's own fold-to-fold variation. Prints per-fold accuracy / macro-F1 / AUC, the means,
the majority-class rate (chance) beside them, and a Wilcoxon signed-rank test and a bootstrap
CI of the paired difference. Writes the JSON to ``--out``.

    nice .venv/bin/python tests/benchmarks/compact_vs_faithful.py [--subjects 6 --trials 20] [--targets arousal]

Sized for a shared 2-core machine (``threads=1``): the defaults take ~20 CPU-minutes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emotionkd.training.config import load_config
from emotionkd.training.evaluation import binary_metrics, folds, paired_comparison
from emotionkd.training.experiment import fit_methods, load_windows
from emotionkd.training.models import COMPACT_STUDENT_OPTIONS, StudentConfig
from emotionkd.training.trainer import TensorSet, predict_proba
from emotionkd.training.windowed import TARGETS


def auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties half); NaN when one class is absent."""
    pos, neg = score[y_true == 1], score[y_true == 0]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (pos.size * neg.size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="experiment")
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--trial-s", type=float, default=40.0, help="40 s: three 32 s windows per trial")
    parser.add_argument("--targets", default="arousal,valence")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra KEY=VALUE (JSON values)")
    parser.add_argument("--out", type=Path, default=Path("runs/compact-vs-faithful.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    overrides: dict[str, Any] = {
        "threads": 1, "progress": False, "seed": args.seed, "targets": args.targets.split(","),
        "data.subjects": args.subjects, "data.trials": args.trials, "data.trial_s": args.trial_s,
        # the preset's recipe (schedule, class weighting, validation epoch, KD matching), with the
        # teacher's ~300 Adam steps kept on the smaller set by a smaller batch and fewer epochs
        "teacher_optim.epochs": 8, "teacher_optim.batch_size": 8,
        # the data this benchmark was measured on (docs/performance.md), not the preset's newer set
        "data.hop_s": 4.0, "data.gsr_drive_noise": 0.3,
    }
    for item in args.overrides:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    # the experiment preset's student is the compact one: spell out the faithful sizes
    overrides = {"data.path": f"data/synthetic-cvf-{args.subjects}x{args.trials}x{args.trial_s:g}"
                              f"-drive{overrides['data.gsr_drive_noise']:g}",
                 **{f"student.{k}": getattr(StudentConfig(), k) for k in COMPACT_STUDENT_OPTIONS}, **overrides}
    faithful = load_config(preset=args.preset).with_overrides(overrides)
    compact = faithful.with_overrides({f"student.{k}": v for k, v in COMPACT_STUDENT_OPTIONS.items()})
    data = load_windows(faithful)
    rows: list[dict[str, Any]] = []
    cpu0 = time.process_time()
    for fold in folds(data, "loso", seed=args.seed):
        train, test = data.subset(fold.train), data.subset(fold.test)
        for target in faithful.targets:
            tensors = TensorSet.from_dataset(test, target, need_eeg=False)
            y = tensors.labels.numpy()
            y_train = train.labels[:, TARGETS.index(target)]
            first = fit_methods(train, target, faithful, ["teacher", "kd"])
            second = fit_methods(train, target, compact, ["kd"], teacher=first["teacher"].model)
            for arm, result in (("faithful", first["kd"]), ("compact", second["kd"])):
                proba = predict_proba(result.model, tensors, "cpu")
                metrics = binary_metrics(y, proba.argmax(1), y_train)
                rows.append({"fold": fold.name, "target": target, "arm": arm, **metrics, "auc": auc(y, proba[:, 1])})
                print(json.dumps(rows[-1]), flush=True)
    cpu_min = (time.process_time() - cpu0) / 60
    summary: dict[str, Any] = {}
    for target in faithful.targets:
        summary[target] = {}
        for metric in ("accuracy", "macro_f1", "auc"):
            f = np.array([r[metric] for r in rows if r["target"] == target and r["arm"] == "faithful"])
            c = np.array([r[metric] for r in rows if r["target"] == target and r["arm"] == "compact"])
            ok = np.isfinite(f) & np.isfinite(c)  # AUC is undefined on a one-class test subject
            summary[target][metric] = {"faithful": float(np.nanmean(f)), "compact": float(np.nanmean(c)),
                                       "compact_minus_faithful": paired_comparison(c[ok], f[ok])}
        chance = [r["majority_rate"] for r in rows if r["target"] == target and r["arm"] == "faithful"]
        summary[target]["majority_rate"] = float(np.mean(chance))
    report = {"command": vars(args) | {"out": str(args.out)}, "cpu_minutes": cpu_min, "rows": rows, "summary": summary}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"CPU {cpu_min:.1f} min; LOSO over {args.subjects} subjects, same teacher per fold and target")
    for target, metrics in summary.items():
        print(f"{target}: majority-class rate {metrics['majority_rate']:.3f}")
        for metric in ("accuracy", "macro_f1", "auc"):
            m = metrics[metric]
            d = m["compact_minus_faithful"]
            print(f"  {metric:<9} faithful {m['faithful']:.3f}  compact {m['compact']:.3f}  "
                  f"diff {d['mean_difference']:+.3f} [95% bootstrap CI {d['ci_low']:+.3f}, {d['ci_high']:+.3f}], "
                  f"Wilcoxon p={d['p_value']:.2f} over {d['n']:.0f} folds")


if __name__ == "__main__":
    main()
