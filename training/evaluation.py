"""Evaluation protocols (index generators over a :class:`WindowedDataset`) and metrics.

Protocols (METHOD.md):

* :func:`trialwise_kfold` — subject-dependent: within each subject, its *trials* are split into
  k folds (default 10); a window is tested only by a model that never saw its trial.
* :func:`leave_one_subject_out` — train on all other subjects, test on one: the honest estimate
  for a product that meets new users.

Both split by trial (or subject), never by window: windows of one trial are highly correlated,
and splitting them across train and test inflates accuracy. :func:`split_by_trial` carves a
validation or "quiz" set out of a training split the same way.

Metrics: accuracy, macro-F1, binary F1 (class 1 = high), the majority-class rate (the
accuracy of always answering the training split's majority class), chance (the test fold's
own majority share) and, where the caller adds it, the training accuracy; mean ± sample
standard deviation (ddof = 1) over folds; JSON and Markdown output. Arms are compared per fold
(per subject under LOSO): :func:`paired_comparison` gives the mean paired difference, its
bootstrap 95 % CI (seed :data:`BOOTSTRAP_SEED`) and the Wilcoxon signed-rank p-value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.training.windowed import TARGETS, WindowedDataset

METRICS: Final = ("accuracy", "macro_f1", "f1", "majority_rate", "chance", "train_accuracy")
METRIC_TITLES: Final = {"accuracy": "Accuracy", "macro_f1": "Macro-F1", "f1": "F1 (high)",
                        "majority_rate": "Majority rate (train class)", "chance": "Chance (test majority)",
                        "train_accuracy": "Training accuracy"}


@dataclass(frozen=True)
class Fold:
    """One train/test split of window indices.

    Attributes:
        protocol: ``trialwise_kfold`` or ``loso``.
        name: e.g. ``s03-f2`` or ``s03``.
        subject: the subject tested (both protocols test one subject per fold).
        index: fold number within the subject (k-fold) or 0 (LOSO).
        train, test: (n,) int64 window indices into the dataset.
    """

    protocol: str
    name: str
    subject: int
    index: int
    train: npt.NDArray[np.int64]
    test: npt.NDArray[np.int64]


def _trial_keys(data: WindowedDataset) -> npt.NDArray[np.int64]:
    # one integer per (subject, trial), so trials of different subjects never collide
    return data.subject.astype(np.int64) * (int(data.trial.max(initial=0)) + 1) + data.trial.astype(np.int64)


def _trial_labels(data: WindowedDataset, rows: npt.NDArray[np.int64], trials: npt.NDArray[np.int64],
                  keys: npt.NDArray[np.int64], target: str) -> npt.NDArray[np.int64]:
    column = TARGETS.index(target)
    first = {int(k): int(data.labels[r, column]) for r, k in zip(rows[::-1], keys[rows][::-1], strict=True)}
    return np.array([first[int(t)] for t in trials], dtype=np.int64)


def _assign_folds(trials: npt.NDArray[np.int64], k: int, rng: np.random.Generator,
                  strata: npt.NDArray[np.int64] | None) -> npt.NDArray[np.int64]:
    """Fold number of each trial: shuffled, round-robin within each stratum (balanced sizes)."""
    folds = np.empty(trials.size, dtype=np.int64)
    groups = [np.arange(trials.size)] if strata is None else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    offset = 0
    for group in groups:
        order = rng.permutation(group)
        folds[order] = (offset + np.arange(order.size)) % k
        offset += order.size  # continue the round robin so fold sizes stay balanced overall
    return folds


def trialwise_kfold(data: WindowedDataset, k: int = 10, *, seed: int = 0,
                    stratify: str | None = None) -> Iterator[Fold]:
    """Subject-dependent trial-wise k-fold: for each subject, k folds of its trials.

    Args:
        k: folds per subject (each subject needs at least k trials).
        seed: shuffling seed.
        stratify: ``arousal`` or ``valence`` to balance that label over folds, or None.

    Yields:
        One :class:`Fold` per (subject, fold); train and test hold only that subject's windows.
    """
    if k < 2:
        raise ConfigError(f"k must be at least 2, got {k}")
    if stratify is not None and stratify not in TARGETS:
        raise ConfigError(f"stratify must be one of {TARGETS} or None, got {stratify!r}")
    keys = _trial_keys(data)
    rng = np.random.default_rng(seed)
    for subject in np.unique(data.subject):
        rows = np.flatnonzero(data.subject == subject)
        trials = np.unique(keys[rows])
        if trials.size < k:
            raise ConfigError(f"subject {subject} has {trials.size} trials, fewer than k = {k} folds; lower k")
        strata = _trial_labels(data, rows, trials, keys, stratify) if stratify else None
        fold_of_trial = dict(zip(trials.tolist(), _assign_folds(trials, k, rng, strata).tolist(), strict=True))
        fold_of_row = np.array([fold_of_trial[int(t)] for t in keys[rows]], dtype=np.int64)
        for f in range(k):
            yield Fold("trialwise_kfold", f"s{int(subject):02d}-f{f}", int(subject), f,
                       rows[fold_of_row != f], rows[fold_of_row == f])


def leave_one_subject_out(data: WindowedDataset) -> Iterator[Fold]:
    """One fold per subject: test on that subject, train on every other one."""
    subjects = np.unique(data.subject)
    if subjects.size < 2:
        raise ConfigError(f"leave-one-subject-out needs at least 2 subjects, the dataset has {subjects.size}")
    for subject in subjects:
        test = data.subject == subject
        yield Fold("loso", f"s{int(subject):02d}", int(subject), 0, np.flatnonzero(~test), np.flatnonzero(test))


PROTOCOLS: Final = ("trialwise_kfold", "loso")


def folds(data: WindowedDataset, protocol: str, *, k: int = 10, seed: int = 0,
          stratify: str | None = None) -> Iterator[Fold]:
    """The folds of ``protocol`` (``trialwise_kfold`` or ``loso``)."""
    if protocol == "trialwise_kfold":
        return trialwise_kfold(data, k, seed=seed, stratify=stratify)
    if protocol == "loso":
        return leave_one_subject_out(data)
    raise ConfigError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")


def split_by_trial(data: WindowedDataset, index: npt.ArrayLike, fraction: float = 0.1, *,
                   seed: int = 0) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Split window indices (a training split) into (train, held-out) by whole trials.

    For a validation set or the feedback stage's quiz set: about ``fraction`` of the trials
    (at least one) go to the held-out part, and no trial is on both sides.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"fraction must be in (0, 1), got {fraction!r}")
    idx = np.asarray(index, dtype=np.int64)
    keys = _trial_keys(data)[idx]
    trials = np.unique(keys)
    if trials.size < 2:
        raise DataError(f"cannot hold out whole trials: the split has {trials.size} trial(s)")
    rng = np.random.default_rng(seed)
    count = min(trials.size - 1, max(1, int(round(fraction * trials.size))))
    held = rng.choice(trials, size=count, replace=False)
    mask = np.isin(keys, held)
    return idx[~mask], idx[mask]


def validation_split(data: WindowedDataset, fraction: float, *,
                     seed: int = 0) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Split a *training* split into (fit, validation) window indices for model selection.

    By whole subjects when it holds >= 3 subjects (about ``fraction`` of them, at least one,
    so validation measures what LOSO measures: unseen people); with one or two subjects, by
    whole trials (:func:`split_by_trial`). The caller passes only training windows, so the
    test subject can never be chosen.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), got {fraction!r}")
    subjects = np.unique(data.subject)
    every = np.arange(len(data), dtype=np.int64)
    if subjects.size < 3:
        return split_by_trial(data, every, fraction, seed=seed)
    rng = np.random.default_rng(seed)
    count = min(subjects.size - 1, max(1, int(round(fraction * subjects.size))))
    held = rng.choice(subjects, size=count, replace=False)
    mask = np.isin(data.subject, held)
    return every[~mask], every[mask]


# --- metrics -------------------------------------------------------------------------------------

def _f1(y_true: npt.NDArray[np.int64], y_pred: npt.NDArray[np.int64], positive: int) -> float:
    tp = int(((y_pred == positive) & (y_true == positive)).sum())
    fp = int(((y_pred == positive) & (y_true != positive)).sum())
    fn = int(((y_pred != positive) & (y_true == positive)).sum())
    # F1 of a class that is neither present nor predicted is undefined; count it as 0 (the
    # convention of sklearn's zero_division=0), so a constant predictor gets no credit for it.
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def binary_metrics(y_true: npt.ArrayLike, y_pred: npt.ArrayLike,
                   y_train: npt.ArrayLike | None = None) -> dict[str, float]:
    """Accuracy, macro-F1, binary F1 (class 1) and the majority-class rate of one test set.

    Args:
        y_true, y_pred: (n,) labels in {0, 1}.
        y_train: the training labels; the majority rate is the test accuracy of always
            answering their majority class. Without it, the test set's own majority share.
    """
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if t.shape != p.shape:
        raise DataError(f"y_true has {t.size} labels, y_pred {p.size}")
    if t.size == 0:
        raise DataError("cannot score an empty test set")
    if not (np.isin(t, (0, 1)).all() and np.isin(p, (0, 1)).all()):
        raise DataError("labels and predictions must be 0 or 1")
    if y_train is not None and np.asarray(y_train).size:
        majority = int(np.asarray(y_train).mean() >= 0.5)
        majority_rate = float((t == majority).mean())
    else:
        majority_rate = float(max(t.mean(), 1 - t.mean()))
    f1_high, f1_low = _f1(t, p, 1), _f1(t, p, 0)
    chance = float(max(t.mean(), 1 - t.mean()))  # the test fold's own majority share
    return {"accuracy": float((t == p).mean()), "macro_f1": (f1_high + f1_low) / 2, "f1": f1_high,
            "majority_rate": majority_rate, "chance": chance, "n": float(t.size)}


def aggregate(per_fold: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation (ddof 1; 0 for a single fold) of each metric over folds."""
    out: dict[str, dict[str, float]] = {}
    for metric in METRICS:
        values = np.array([m[metric] for m in per_fold if metric in m], dtype=np.float64)
        if values.size:
            std = float(values.std(ddof=1)) if values.size > 1 else 0.0
            out[metric] = {"mean": float(values.mean()), "std": std, "folds": int(values.size)}
    return out


@dataclass
class EvaluationReport:
    """Per-fold metrics for each target, with their aggregate.

    Attributes:
        protocol: protocol name; model: what was evaluated (e.g. ``student``);
        folds: per target, a list of ``{"fold": name, "subject": id, **metrics}``.
        info: anything else worth keeping (dataset meta summary, config).
    """

    protocol: str
    model: str
    folds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def add(self, target: str, fold: Fold, y_true: npt.ArrayLike, y_pred: npt.ArrayLike,
            y_train: npt.ArrayLike | None = None, extra: Mapping[str, float] | None = None) -> dict[str, float]:
        """Score one fold of one target and keep it (``extra``: more metrics, e.g. ``train_accuracy``)."""
        if target not in TARGETS:
            raise ConfigError(f"target must be one of {TARGETS}, got {target!r}")
        metrics = {**binary_metrics(y_true, y_pred, y_train), **(extra or {})}
        self.folds.setdefault(target, []).append({"fold": fold.name, "subject": fold.subject, **metrics})
        return metrics

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        return {target: aggregate(rows) for target, rows in self.folds.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "model": self.model, "summary": self.summary(),
                "folds": self.folds, "info": self.info}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, allow_nan=False)

    def to_markdown(self) -> str:
        """A table: one row per target, ``mean ± std`` in percent per metric."""
        header = "| model | protocol | target | " + " | ".join(METRIC_TITLES[m] for m in METRICS) + " | folds |"
        lines = [header, "|" + "---|" * (len(METRICS) + 4)]
        for target, stats in self.summary().items():
            cells = []
            for m in METRICS:
                cells.append("–" if m not in stats else format_mean_std(stats[m]))
            n = stats["accuracy"]["folds"] if "accuracy" in stats else 0
            lines.append(f"| {self.model} | {self.protocol} | {target} | " + " | ".join(cells) + f" | {n} |")
        return "\n".join(lines) + "\n"


BOOTSTRAP_SEED: Final = 20231201  # fixed so results.json is reproducible; not tuned
BOOTSTRAP_RESAMPLES: Final = 10_000


def paired_comparison(a: Sequence[float], b: Sequence[float], *, resamples: int = BOOTSTRAP_RESAMPLES,
                      seed: int = BOOTSTRAP_SEED) -> dict[str, float]:
    """Paired per-fold (per-subject under LOSO) comparison of two arms' scores, ``a − b``.

    Returns ``mean_difference``, the percentile bootstrap 95 % CI of the mean difference
    (``ci_low``, ``ci_high``; folds resampled with replacement ``resamples`` times, generator
    seeded with ``seed``), the two-sided Wilcoxon signed-rank ``p_value`` (scipy, zero
    differences dropped; 1.0 when every difference is zero) and ``n`` folds.
    """
    from scipy.stats import wilcoxon

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise DataError(f"paired comparison needs two equal-length, non-empty score lists, got {x.shape} and {y.shape}")
    d = x - y
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(resamples, d.size))].mean(1)
    p_value = 1.0 if not np.any(d != 0) else float(wilcoxon(d, zero_method="wilcox").pvalue)
    return {"mean_difference": float(d.mean()), "ci_low": float(np.percentile(means, 2.5)),
            "ci_high": float(np.percentile(means, 97.5)), "p_value": p_value, "n": float(d.size)}


def compare_arms(reports: Mapping[str, EvaluationReport], pairs: Sequence[tuple[str, str]],
                 metric: str = "accuracy") -> dict[str, list[dict[str, Any]]]:
    """Per target, :func:`paired_comparison` of each (a, b) pair present in ``reports``, folds
    matched by name; ``{target: [{"a", "b", "metric", "differences": [...], **stats}]}``."""
    out: dict[str, list[dict[str, Any]]] = {}
    targets = sorted({t for r in reports.values() for t in r.folds})
    for target in targets:
        for a, b in pairs:
            if a not in reports or b not in reports or target not in reports[a].folds or target not in reports[b].folds:
                continue
            right = {row["fold"]: row[metric] for row in reports[b].folds[target]}
            rows = [(row[metric], right[row["fold"]]) for row in reports[a].folds[target] if row["fold"] in right]
            if not rows:
                continue
            xs, ys = zip(*rows, strict=True)
            out.setdefault(target, []).append({
                "a": a, "b": b, "metric": metric,
                "differences": [float(x - y) for x, y in rows], **paired_comparison(xs, ys)})
    return out


def comparison_table(comparisons: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """Markdown: one row per target and pair, mean paired difference (points), 95 % CI, p."""
    lines = ["| target | a − b | mean difference (points) | bootstrap 95 % CI | Wilcoxon p | folds |",
             "|---|---|---|---|---|---|"]
    for target, rows in comparisons.items():
        for r in rows:
            lines.append(f"| {target} | {r['a']} − {r['b']} | {100 * r['mean_difference']:+.2f} | "
                         f"[{100 * r['ci_low']:+.2f}, {100 * r['ci_high']:+.2f}] | {r['p_value']:.3g} | {int(r['n'])} |")
    return "\n".join(lines) + "\n"


def format_mean_std(stats: Mapping[str, float], percent: bool = True) -> str:
    """``"62.88 ± 3.10"`` from ``{"mean": .6288, "std": .031}``."""
    scale = 100.0 if percent else 1.0
    if not math.isfinite(stats["mean"]):
        return "–"
    return f"{scale * stats['mean']:.2f} ± {scale * stats['std']:.2f}"


__all__ = [
    "METRICS",
    "PROTOCOLS",
    "EvaluationReport",
    "Fold",
    "BOOTSTRAP_SEED",
    "aggregate",
    "binary_metrics",
    "compare_arms",
    "comparison_table",
    "paired_comparison",
    "folds",
    "format_mean_std",
    "leave_one_subject_out",
    "split_by_trial",
    "trialwise_kfold",
    "validation_split",
]
