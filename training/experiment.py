"""Experiments: data from a config, the four methods on a split, protocols, contracts, plots.

What the ``emotionkd-train`` commands call. Each function takes the typed
:class:`~emotionkd.training.config.ExperimentConfig`; nothing here prints (progress bars aside).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.sdk.contract import ModelContract, PreprocessingSpec, Provenance
from emotionkd.sdk.preprocessing import PreprocessingConfig
from emotionkd.training.config import ExperimentConfig
from emotionkd.training.evaluation import (
    METRIC_TITLES,
    METRICS,
    EvaluationReport,
    folds,
    format_mean_std,
    split_by_trial,
)
from emotionkd.training.models import EmotionNetStudent, EmotionNetTeacher, describe
from emotionkd.training.trainer import (
    LoopOptions,
    Parallel,
    TensorSet,
    TrainResult,
    predict_proba,
    train_distilled,
    train_student,
    train_teacher,
)
from emotionkd.training.windowed import TARGETS, WindowedDataset

logger = logging.getLogger(__name__)

NEEDS_TEACHER = ("teacher", "kd", "kd+feedback")


# --- data --------------------------------------------------------------------------------------
def load_windows(config: ExperimentConfig, *, progress: bool = False,
                 preprocessing: PreprocessingConfig | None = None) -> WindowedDataset:
    """The dataset ``config.data`` names (synthetic files are generated on first use), prepared
    with ``preprocessing`` (default: this emotionkd's; a fine-tune passes its base model's).

    Raises:
        DataError: a prepared ``.npz`` was made with other preprocessing than ``preprocessing``.
    """
    from emotionkd.training.datasets import SynthConfig, generate, load_dataset

    data = config.data
    if data.source == "prepared":
        prepared = WindowedDataset.load_npz(data.path)
        made = (prepared.meta.get("preprocessing") or {}).get("params")
        if (preprocessing is not None and made is not None
                and PreprocessingConfig.from_params(dict(made)).to_params() != preprocessing.to_params()):
            raise DataError(f"{data.path} was prepared with preprocessing {made}, the model needs "
                            f"{preprocessing.to_params()}; prepare it again from the recordings")
        return prepared
    from dataclasses import replace

    dataset_config = data.dataset_config()
    dataset_config = replace(dataset_config, preprocessing=preprocessing or dataset_config.preprocessing,
                             subjects=tuple(data.only_subjects) or None)
    root = Path(data.path)
    kind = data.source
    if data.source == "synthetic":
        kind = "deap"
        if not any(root.glob("data_preprocessed_python/s*.dat")):
            generate("deap", root, subjects=data.subjects, trials=data.trials, seed=data.seed,
                     config=SynthConfig(trial_s=data.trial_s), workers=data.workers)
    options: dict[str, Any] = {}
    if kind == "recordings":
        options["label_target"] = data.label_target
        if data.label_source:
            options["label_source"] = data.label_source
    return load_dataset(kind, root, dataset_config, data.cache_dir or None, workers=data.workers,
                        progress=progress, **options)


def default_threads(threads: int, local_processes: int = 1) -> int:
    """Torch CPU threads per process: ``threads`` when set, else half the CPUs this process may
    use divided among ``local_processes``, at least 1 (torch's own default oversubscribes a
    busy small machine: one fold took 1,740 s with it and 111–177 s with 1 thread on 2 cores)."""
    if threads > 0:
        return threads
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // (2 * max(1, local_processes)))


def subject_holdout(data: WindowedDataset, subjects: int, seed: int,
                    ids: Sequence[int] = ()) -> tuple[WindowedDataset, WindowedDataset | None]:
    """(train, held-out) with the subjects ``ids`` held out, or else ``subjects`` random whole
    subjects (None when 0)."""
    if ids:
        missing = sorted(set(ids) - set(np.unique(data.subject).tolist()))
        if missing:
            raise DataError(f"holdout subjects {missing} are not in the data (it has "
                            f"{sorted(set(data.subject.tolist()))})")
        mask = np.isin(data.subject, list(ids))
        if mask.all():
            raise DataError("evaluation.holdout_ids hold out every subject; leave some to train on")
        return data.subset(~mask), data.subset(mask)
    if subjects == 0:
        return data, None
    found = np.unique(data.subject)
    if subjects >= len(found):
        raise DataError(f"cannot hold out {subjects} of {len(found)} subjects; lower "
                        "evaluation.holdout_subjects or use more subjects")
    held = np.random.default_rng(seed).choice(found, size=subjects, replace=False)
    mask = np.isin(data.subject, held)
    return data.subset(~mask), data.subset(mask)


# --- one split, every method ---------------------------------------------------------------------
def fit_methods(
    train: WindowedDataset,
    target: str,
    config: ExperimentConfig,
    methods: Sequence[str],
    *,
    parallel: Parallel | None = None,
    eval_data: WindowedDataset | None = None,
    state_dir: Path | None = None,
    teacher: EmotionNetTeacher | None = None,
) -> dict[str, TrainResult]:
    """Train the requested methods for one target on ``train``.

    ``teacher`` and ``kd`` share the teacher (trained here unless given); ``kd+feedback`` starts
    from the same teacher and trains on ``train`` minus the quiz trials it holds out.
    ``eval_data`` (if given) is scored after every epoch for the training curves.
    """
    par = parallel or Parallel()
    tensors = TensorSet.from_dataset(train, target, need_eeg=any(m in NEEDS_TEACHER for m in methods))
    evaluation = (TensorSet.from_dataset(eval_data, target, need_eeg=eval_data.eeg is not None)
                  if eval_data is not None else None)

    def options(name: str) -> LoopOptions:
        state = state_dir / f"{target}-{name.replace('+', '-')}.state.pt" if state_dir else None
        return LoopOptions(seed=config.seed, parallel=par, progress=config.progress and par.is_main,
                           state_path=state, eval_data=evaluation)

    results: dict[str, TrainResult] = {}
    if teacher is None and any(m in NEEDS_TEACHER for m in methods):
        results["teacher"] = train_teacher(tensors, config.teacher, config.teacher_optim,
                                           config.distill.l2, options("teacher"))
        teacher = results["teacher"].model  # type: ignore[assignment]
    if "student" in methods:
        results["student"] = train_student(tensors, config.student, config.student_optim,
                                           config.distill.l2, options("student"))
    if "kd" in methods:
        assert teacher is not None
        results["kd"] = train_distilled(tensors, teacher, config.student, config.student_optim,
                                        config.distill, options("kd"))
    if "kd+feedback" in methods:
        assert teacher is not None
        rest_idx, quiz_idx = split_by_trial(train, np.arange(len(train)), config.feedback.quiz_fraction,
                                            seed=config.seed)
        rest, quiz = train.subset(rest_idx), train.subset(quiz_idx)
        results["kd+feedback"] = train_distilled(
            TensorSet.from_dataset(rest, target, need_eeg=True), teacher, config.student,
            config.student_optim, config.distill, options("kd-feedback"), feedback=config.feedback,
            quiz=TensorSet.from_dataset(quiz, target, need_eeg=False), teacher_optim=config.teacher_optim)
    return {m: results[m] for m in methods if m in results}


# --- protocols --------------------------------------------------------------------------------
def protocol_name(protocol: str) -> str:
    """Config name → :mod:`emotionkd.training.evaluation` name (``kfold`` is trial-wise k-fold)."""
    return "trialwise_kfold" if protocol == "kfold" else protocol


def evaluate_protocol(
    data: WindowedDataset,
    config: ExperimentConfig,
    *,
    parallel: Parallel | None = None,
    on_fold: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every method of ``config.evaluation.methods`` on every fold, for each target.

    Returns plain types: ``{"protocol", "reports": {method: EvaluationReport.to_dict()},
    "summary": {target: {method: {metric: {"mean", "std", "folds"}}}},
    "curves": {target: {method: [[per-epoch record] per fold]}}}``.
    """
    ev = config.evaluation
    par = parallel or Parallel()
    protocol = protocol_name(ev.protocol)
    splits = list(folds(data, protocol, k=ev.folds, seed=config.seed))
    if ev.max_folds:
        splits = splits[:ev.max_folds]
    reports = {m: EvaluationReport(protocol=protocol, model=m) for m in ev.methods}
    curves: dict[str, dict[str, list[list[dict[str, float]]]]] = {}
    for fold in splits:
        train, test = data.subset(fold.train), data.subset(fold.test)
        for target in config.targets:
            results = fit_methods(train, target, config, ev.methods, parallel=par, eval_data=test)
            tensors = TensorSet.from_dataset(test, target, need_eeg=test.eeg is not None)
            y_train = train.labels[:, TARGETS.index(target)]
            for method, result in results.items():
                predictions = predict_proba(result.model, tensors, par.device).argmax(1)
                metrics = reports[method].add(target, fold, tensors.labels.numpy(), predictions, y_train)
                curves.setdefault(target, {}).setdefault(method, []).append(result.history)
                if on_fold is not None:
                    on_fold({"fold": fold.name, "target": target, "method": method, **metrics})
    summary = {t: {m: r.summary()[t] for m, r in reports.items() if t in r.folds} for t in config.targets}
    return {"protocol": protocol, "reports": {m: r.to_dict() for m, r in reports.items()},
            "summary": summary, "curves": curves}


def summary_table(summary: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]]) -> str:
    """A Markdown table, mean ± std (%) over folds, one row per target and method."""
    header = "| target | method | " + " | ".join(METRIC_TITLES[m] for m in METRICS) + " | folds |"
    lines = [header, "|" + "---|" * (len(METRICS) + 3)]
    for target, methods in summary.items():
        for method, stats in methods.items():
            cells = " | ".join(format_mean_std(stats[m]) if m in stats else "–" for m in METRICS)
            lines.append(f"| {target} | {method} | {cells} | {int(stats['accuracy']['folds'])} |")
    return "\n".join(lines) + "\n"


def plot_curves(curves: Mapping[str, Mapping[str, Sequence[Sequence[Mapping[str, float]]]]], path: Path) -> Path:
    """Training loss and held-out accuracy per epoch (mean over folds), one row per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(curves)
    fig, axes = plt.subplots(len(targets), 2, figsize=(11, 3.6 * len(targets)), squeeze=False)
    for row, target in enumerate(targets):
        for method, histories in curves[target].items():
            for col, key in enumerate(("loss", "eval_accuracy")):
                series = [[r[key] for r in fold if key in r] for fold in histories]
                series = [s for s in series if s]
                if not series:
                    continue
                length = min(len(s) for s in series)
                mean = np.mean([s[:length] for s in series], axis=0)
                axes[row][col].plot(np.arange(1, length + 1), mean, marker="o", label=method)
        axes[row][0].set_title(f"{target}: training loss (mean over folds)")
        axes[row][1].set_title(f"{target}: held-out accuracy (mean over folds)")
        for ax in axes[row]:
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- contracts ---------------------------------------------------------------------------------
def build_contract(
    data: WindowedDataset,
    config: ExperimentConfig,
    student: EmotionNetStudent,
    *,
    method: str,
    protocol: str,
    metrics: Mapping[str, Mapping[str, float]],
    subjects: int,
    notes: str = "",
) -> ModelContract:
    """The model contract of a student trained on ``data`` (preprocessing read from its meta)."""
    meta = data.meta
    pre = meta.get("preprocessing") or {}
    params = pre.get("params") if isinstance(pre, Mapping) else None
    preprocessing = PreprocessingConfig.from_params(dict(params)) if params else PreprocessingConfig()
    if preprocessing.window_samples != student.config.window_samples:
        raise ConfigError(f"the data's windows have {preprocessing.window_samples} samples but the "
                          f"student expects {student.config.window_samples}")
    label = meta.get("label_rule") or {}
    rule = label.get("rule", config.data.label_rule) if isinstance(label, Mapping) else config.data.label_rule
    kind = meta.get("data_kind", "synthetic")
    return ModelContract(
        sample_rate_hz=preprocessing.rate_hz,
        window_samples=preprocessing.window_samples,
        train_hop_samples=int(meta.get("hop_samples", preprocessing.window_samples)),
        preprocessing=PreprocessingSpec.from_config(preprocessing),
        targets=tuple(config.targets),
        label_threshold=float(label.get("threshold", config.data.label_threshold))
        if isinstance(label, Mapping) else config.data.label_threshold,
        label_rule=">" if rule in ("gt", ">") else ">=",
        provenance=Provenance(data_kind="synthetic" if kind == "synthetic" else "real",
                              dataset=str(meta.get("dataset", config.data.source)),
                              protocol=protocol, subjects=subjects, method=method, notes=notes),
        metrics={t: dict(m) for t, m in metrics.items()},
        model=describe(student),
    )


__all__ = [
    "build_contract",
    "evaluate_protocol",
    "fit_methods",
    "load_windows",
    "plot_curves",
    "protocol_name",
    "subject_holdout",
    "summary_table",
]
