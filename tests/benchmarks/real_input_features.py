"""Real skin: the four GSR features read from the model's *own input* instead of raw µS.

docs/results-real.md scores its ``logreg-features`` baseline on the raw µS of each 32 s window.
The network reads something else: log conductance relative to a slow causal baseline (ekd-gsr
v2, τ = 900 s, seeded from the recording's first rest). This benchmark separates the two
effects, on the same 14,697 decision points, folds and persons as ``evaluate-real``:

* ``raw µS, 4 features``: the results-real baseline, recomputed here (its median must read
  0.675, which checks that the points and folds are the same);
* ``model input, 4 features``: level, slope, SCR count and amplitude of the window the network
  sees (:func:`~emotionkd.training.real_eval.input_features`, ``evaluate-real``'s
  ``logreg-input-features`` arm);
* ``model input, 14 features``: those plus ten shape statistics
  (``tests/benchmarks/gsr_window_information.py``).

Each is the same L2 logistic regression as ``evaluate-real`` (pooled over the training persons),
scored by per-person AUC (chance 0.5). With ``--paired-with RESULTS.json --arm ARM`` (an
``evaluate-real`` run on the same recipe) it adds the paired per-person difference ARM − each
feature arm: median, bootstrap 95 % CI over persons, wins/losses, Wilcoxon p.

    .venv/bin/python tests/benchmarks/real_input_features.py --paired-with runs/real-input-arm/results.json --arm fine-tuned
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from gsr_window_information import richer_features  # noqa: E402

from emotionkd.training.baselines import scr_rise_threshold_per_s  # noqa: E402
from emotionkd.training.checkpoint import load_student_checkpoint  # noqa: E402
from emotionkd.training.datasets.recordings import read_labelled_recordings  # noqa: E402
from emotionkd.training.real_eval import (  # noqa: E402
    RealEvalConfig,
    auc,
    decision_points,
    fit_logistic,
    fold_groups,
    input_features,
    inside_first_rest,
    model_inputs,
    paired_difference,
    rest_seeds_us,
)

LABEL_SOURCE = "binary stress label: stress task = high arousal"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/stress-predict"))
    parser.add_argument("--model", type=Path, default=Path("training/pretrained/bundled-student.pt"),
                        help="a v2 student checkpoint: only its preprocessing is used")
    parser.add_argument("--tau", type=float, default=900.0, help="baseline time constant, s (evaluate-real chose 900)")
    parser.add_argument("--folds", type=int, default=6)
    parser.add_argument("--paired-with", type=Path, help="an evaluate-real results.json on the same recipe")
    parser.add_argument("--arm", default="fine-tuned", help="its arm to pair with the feature arms")
    args = parser.parse_args()

    config = RealEvalConfig(folds=args.folds, seed=0)
    by_subject, _ = read_labelled_recordings(args.data, label_source=LABEL_SOURCE)
    recordings = [(sid, rec) for sid, recs in sorted(by_subject.items()) for rec in recs]
    decisions = decision_points(recordings, config)
    base = load_student_checkpoint(args.model)
    pre = replace(base.contract.preprocessing_config(), baseline_tau_s=args.tau)
    x, ok = model_inputs(recordings, decisions, pre, config.hop_s, rest_seeds_us(recordings, pre, config.rest_s))
    usable = ok & np.isfinite(decisions.features).all(axis=1) & ~inside_first_rest(recordings, decisions)
    arms = {"raw µS, 4 features": decisions.features,
            "model input, 4 features": input_features(x, pre),
            "model input, 14 features": richer_features(x, pre.rate_hz, scr_rise_threshold_per_s(pre.to_params()))}
    subject, label = decisions.subject, decisions.label
    per_person: dict[str, dict[int, float]] = {name: {} for name in arms}
    for held in fold_groups(subject[usable].tolist(), args.folds):
        test = usable & np.isin(subject, held)
        train = usable & ~test
        for name, features in arms.items():
            p_high = fit_logistic(features[train], label[train])(features[test])
            for person in held:
                mine = subject[test] == person
                per_person[name][person] = auc(label[test][mine], p_high[mine])
    print(f"{int(usable.sum())} decision points, {len(per_person['raw µS, 4 features'])} persons, "
          f"{args.folds} folds, τ {args.tau:g} s seeded from rest; chance AUC 0.5")
    for name, table in per_person.items():
        v = np.array(list(table.values()))
        print(f"{name:26s} median per-person AUC {np.median(v):.3f}  mean {v.mean():.3f}  range {v.min():.2f}-{v.max():.2f}")
    if args.paired_with is None:
        return
    network = json.loads(args.paired_with.read_text())["per_person"][args.arm]
    rng = np.random.default_rng(0)
    for name, table in per_person.items():
        persons = sorted(table)
        t = paired_difference(np.array([network[str(p)]["auc"] for p in persons]),
                              np.array([table[p] for p in persons]), rng, 10_000)
        low, high = t["median_difference_ci95"]
        print(f"{args.arm} − {name:26s} median {t['median_difference']:+.3f} [{low:+.3f}, {high:+.3f}]  "
              f"wins/losses {t['wins']}/{t['losses']}  Wilcoxon p {t['wilcoxon_p']:.3g}")


if __name__ == "__main__":
    main()
