"""How much arousal the student's GSR window holds: the four baseline features against richer ones.

Prints, per LOSO fold and on average, the held-out window accuracy of

* ``4 features``: the ``logreg-gsr`` baseline of the results table (level, slope, SCR count and
  amplitude; :func:`~emotionkd.training.baselines.gsr_features`),
* ``14 features, logistic``: those four plus the window's quarter means, end − start, the
  summed and the largest rise rate, range, standard deviation and mean absolute change,
* ``14 features, boosted trees``: the same 14 in scikit-learn's histogram gradient boosting
  (class-balanced, 200 trees of at most 8 leaves),

on exactly the experiment preset's windows. If neither richer read-out beats the four
features, they already hold what a window says about arousal, and a network can at best tie
them (docs/recipe-choice.md, part 10). Design questions use the development draw
(``--data-seed 1``, the default); the evaluation draw is seed 0.

    .venv/bin/python tests/benchmarks/gsr_window_information.py --data-seed 1
"""

from __future__ import annotations

import argparse

import numpy as np
import numpy.typing as npt

from emotionkd.training.baselines import gsr_features, logistic_baseline, scr_rise_threshold_per_s
from emotionkd.training.config import load_config
from emotionkd.training.evaluation import folds
from emotionkd.training.experiment import load_windows


def richer_features(gsr: npt.NDArray[np.floating], rate_hz: float, threshold_per_s: float) -> npt.NDArray[np.float64]:
    """(N, W) windows → (N, 14): the four baseline features and ten more shape statistics."""
    x = gsr.astype(np.float64)
    quarter = x.shape[1] // 4
    rise_per_s = np.diff(x, axis=1) * rate_hz
    edge = max(1, int(round(rate_hz)))  # one second at each end
    extra = [x[:, i * quarter:(i + 1) * quarter].mean(1) for i in range(4)]
    extra += [x[:, -edge:].mean(1) - x[:, :edge].mean(1), np.clip(rise_per_s, 0, None).sum(1) / rate_hz,
              rise_per_s.max(1), np.ptp(x, axis=1), x.std(1), np.abs(rise_per_s).mean(1)]
    return np.hstack([gsr_features(x, rate_hz, threshold_per_s), np.stack(extra, axis=1)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-seed", type=int, default=1, help="generator seed (1: development draw, 0: evaluation)")
    args = parser.parse_args()
    from sklearn.ensemble import HistGradientBoostingClassifier

    path = {0: "data/synthetic-experiment-60s-drive015", 1: "data/synthetic-dev-seed1"}.get(
        args.data_seed, f"data/synthetic-experiment-seed{args.data_seed}")
    data = load_windows(load_config(preset="experiment", overrides={"data.seed": args.data_seed, "data.path": path}))
    params = (data.meta.get("preprocessing") or {}).get("params", {})
    rate_hz, threshold = float(params["rate_hz"]), scr_rise_threshold_per_s(params)
    four, rich = gsr_features(data.gsr, rate_hz, threshold), richer_features(data.gsr, rate_hz, threshold)
    labels = data.labels[:, 0]  # arousal
    scores: dict[str, list[float]] = {"4 features": [], "14 features, logistic": [], "14 features, boosted trees": []}
    chance = []
    for fold in folds(data, "loso"):
        y_train, y_test = labels[fold.train], labels[fold.test]
        chance.append(max(y_test.mean(), 1 - y_test.mean()))
        scores["4 features"].append((logistic_baseline(four[fold.train], y_train, four[fold.test]) == y_test).mean())
        scores["14 features, logistic"].append((logistic_baseline(rich[fold.train], y_train, rich[fold.test]) == y_test).mean())
        trees = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=8,
                                               class_weight="balanced", random_state=0)
        trees.fit(rich[fold.train], y_train)
        scores["14 features, boosted trees"].append((trees.predict(rich[fold.test]) == y_test).mean())
    print(f"arousal, LOSO {len(chance)} folds, generator seed {args.data_seed}; chance {100 * np.mean(chance):.1f} %")
    for name, values in scores.items():
        per_fold = " ".join(f"{100 * v:.1f}" for v in values)
        print(f"{name:28s} {100 * np.mean(values):5.1f} %   per fold: {per_fold}")


if __name__ == "__main__":
    main()
