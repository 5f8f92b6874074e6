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
from emotionkd.sdk.contract import ModelContract, PreprocessingSpec, Provenance, label_rule_operator
from emotionkd.sdk.preprocessing import PreprocessingConfig
from emotionkd.training.config import ExperimentConfig
from emotionkd.training.datasets.synthetic import SynthConfig
from emotionkd.training.evaluation import (
    METRIC_TITLES,
    METRICS,
    EvaluationReport,
    Fold,
    compare_arms,
    comparison_table,
    folds,
    format_mean_std,
    split_by_trial,
    validation_split,
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
    from emotionkd.training.datasets import generate, load_dataset

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
        synth = SynthConfig(trial_s=data.trial_s, gsr_drive_noise=data.gsr_drive_noise)
        if not any(root.glob("data_preprocessed_python/s*.dat")):
            generate("deap", root, subjects=data.subjects, trials=data.trials, seed=data.seed,
                     config=synth, workers=data.workers)
        else:
            check_synthetic_files(root, data.subjects, data.trials, data.seed, synth)
    options: dict[str, Any] = {}
    if kind == "recordings":
        options["label_target"] = data.label_target
        if data.label_source:
            options["label_source"] = data.label_source
    return load_dataset(kind, root, dataset_config, data.cache_dir or None, workers=data.workers,
                        progress=progress, **options)


def check_synthetic_files(root: Path, subjects: int, trials: int, seed: int, synth: SynthConfig) -> None:
    """Refuse synthetic files in ``root`` that another generator version or other settings wrote
    (their manifest), so a changed ``data`` section never silently reuses stale files.

    Raises:
        DataError: the manifest is missing, unreadable or records different settings.
    """
    import json

    from emotionkd.training.datasets.synth_files import MANIFEST
    from emotionkd.training.datasets.synthetic import SYNTH_MODEL_VERSION

    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read the synthetic manifest ({exc}); delete {root} to "
                        "generate it again") from exc
    wanted = {"model_version": SYNTH_MODEL_VERSION, "subjects": subjects, "trials": trials, "seed": seed,
              "config": synth.to_dict()}
    recorded = {key: manifest.get(key) for key in wanted}
    recorded["config"] = {**synth.to_dict(), **(manifest.get("config") or {})}
    wanted["config"] = json.loads(json.dumps(wanted["config"]))  # tuples as JSON lists, like the file
    recorded["config"] = json.loads(json.dumps(recorded["config"]))
    differ = sorted(key for key in wanted if recorded[key] != wanted[key])
    if differ:
        raise DataError(f"{root} holds synthetic files made with other settings ({', '.join(differ)}); "
                        "delete the folder to generate it again, or set data.path to a new folder")


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
    ``eval_data`` (if given) is scored after every epoch for the training curves only.
    With ``evaluation.validation_fraction`` > 0 a validation set is first carved out of
    ``train`` (:func:`~emotionkd.training.evaluation.validation_split`: by subject, or by trial
    with fewer than 3 subjects) and each model keeps its best validation epoch.
    """
    par = parallel or Parallel()
    need_eeg = any(m in NEEDS_TEACHER for m in methods)
    validation: TensorSet | None = None
    if config.evaluation.validation_fraction > 0:
        # carved from the training split only: the test subject never picks an epoch
        fit_idx, val_idx = validation_split(train, config.evaluation.validation_fraction, seed=config.seed)
        validation = TensorSet.from_dataset(train.subset(val_idx), target, need_eeg=need_eeg)
        train = train.subset(fit_idx)
    tensors = TensorSet.from_dataset(train, target, need_eeg=need_eeg)
    evaluation = (TensorSet.from_dataset(eval_data, target, need_eeg=eval_data.eeg is not None)
                  if eval_data is not None else None)

    def options(name: str) -> LoopOptions:
        state = state_dir / f"{target}-{name.replace('+', '-')}.state.pt" if state_dir else None
        return LoopOptions(seed=config.seed, parallel=par, progress=config.progress and par.is_main,
                           state_path=state, eval_data=evaluation, val_data=validation)

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


ARM_PAIRS: tuple[tuple[str, str], ...] = (
    ("kd", "student"), ("kd+feedback", "student"), ("kd+feedback", "kd"), ("teacher", "student"),
    ("student", "logreg-gsr"), ("teacher", "logreg-eeg-bands"), ("teacher", "logreg-eeg+gsr"))


def baseline_features(data: WindowedDataset, train: WindowedDataset, test: WindowedDataset,
                      ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(train, test) features of each logistic-regression baseline: GSR features of exactly the
    student's input windows (at the model rate, SCR criterion of its preprocessing), EEG log
    band powers at the teacher's EEG rate (:func:`~emotionkd.training.datasets.config.recorded_eeg_rate_hz`),
    and both side by side (``logreg-eeg+gsr``, (N, B·C + 4): what a fused linear
    read-out of the teacher's two inputs reaches)."""
    from emotionkd.training.baselines import eeg_band_powers, gsr_features, scr_rise_threshold_per_s
    from emotionkd.training.datasets.config import recorded_eeg_rate_hz

    params = (data.meta.get("preprocessing") or {}).get("params", {})
    gsr_rate_hz = float(params.get("rate_hz", data.meta.get("rate_hz", 128.0)))
    threshold = scr_rise_threshold_per_s(params)
    features = {"logreg-gsr": (gsr_features(train.gsr, gsr_rate_hz, threshold),
                               gsr_features(test.gsr, gsr_rate_hz, threshold))}
    if train.eeg is not None and test.eeg is not None:
        eeg_rate_hz = recorded_eeg_rate_hz(data.meta)
        features["logreg-eeg-bands"] = (eeg_band_powers(train.eeg, eeg_rate_hz),
                                        eeg_band_powers(test.eeg, eeg_rate_hz))
        (eeg_train, eeg_test), (gsr_train, gsr_test) = features["logreg-eeg-bands"], features["logreg-gsr"]
        features["logreg-eeg+gsr"] = (np.hstack([eeg_train, gsr_train]), np.hstack([eeg_test, gsr_test]))
    return features


def _fold_records(data: WindowedDataset, fold: Fold, config: ExperimentConfig,
                  par: Parallel) -> list[dict[str, Any]]:
    """Train and score every method and baseline of one fold: one record per (target, method)
    with the test labels, predictions, training labels and training accuracy."""
    ev = config.evaluation
    train, test = data.subset(fold.train), data.subset(fold.test)
    features = baseline_features(data, train, test)
    records: list[dict[str, Any]] = []
    for target in config.targets:
        column = TARGETS.index(target)
        y_train, y_test = train.labels[:, column], test.labels[:, column]
        results = fit_methods(train, target, config, ev.methods, parallel=par, eval_data=test)
        tensors = TensorSet.from_dataset(test, target, need_eeg=test.eeg is not None)
        train_tensors = TensorSet.from_dataset(train, target, need_eeg=train.eeg is not None)
        for method, result in results.items():
            predictions = predict_proba(result.model, tensors, par.device).argmax(1)
            train_accuracy = float((predict_proba(result.model, train_tensors, par.device).argmax(1)
                                    == y_train).mean())
            records.append({"target": target, "method": method, "y_test": y_test, "pred": predictions,
                            "y_train": y_train, "train_accuracy": train_accuracy, "history": result.history})
        from emotionkd.training.baselines import logistic_baseline

        for name, (x_train, x_test) in features.items():
            predictions = logistic_baseline(x_train, y_train, x_test, seed=config.seed)
            train_accuracy = float((logistic_baseline(x_train, y_train, x_train, seed=config.seed)
                                    == y_train).mean())
            records.append({"target": target, "method": name, "y_test": y_test, "pred": predictions,
                            "y_train": y_train, "train_accuracy": train_accuracy, "history": []})
    return records


_SHARED: dict[str, Any] = {}  # what forked fold workers read instead of unpickling the dataset


def _fold_worker(index: int) -> list[dict[str, Any]]:
    import torch

    config: ExperimentConfig = _SHARED["config"]
    if config.threads:
        torch.set_num_threads(config.threads)
    return _fold_records(_SHARED["data"], _SHARED["splits"][index], config, Parallel())


def evaluate_protocol(
    data: WindowedDataset,
    config: ExperimentConfig,
    *,
    parallel: Parallel | None = None,
    on_fold: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every method of ``config.evaluation.methods`` and the logistic-regression baselines on
    every fold, for each target; paired comparisons between arms.

    Folds run ``evaluation.fold_workers`` at a time in forked processes (each with
    ``threads`` torch threads; not under torchrun, where the processes already share each fold).

    Returns plain types: ``{"protocol", "reports": {method: EvaluationReport.to_dict()},
    "summary": {target: {method: {metric: {"mean", "std", "folds"}}}},
    "comparisons": {target: [paired comparison]}, "curves": {target: {method: [[record] per fold]}}}``.
    """
    ev = config.evaluation
    par = parallel or Parallel()
    protocol = protocol_name(ev.protocol)
    splits = list(folds(data, protocol, k=ev.folds, seed=config.seed))
    if ev.max_folds:
        splits = splits[:ev.max_folds]
    reports: dict[str, EvaluationReport] = {}
    curves: dict[str, dict[str, list[list[dict[str, float]]]]] = {}

    def collect(fold: Fold, records: list[dict[str, Any]]) -> None:
        for r in records:
            report = reports.setdefault(r["method"], EvaluationReport(protocol=protocol, model=r["method"]))
            metrics = report.add(r["target"], fold, r["y_test"], r["pred"], r["y_train"],
                                 {"train_accuracy": r["train_accuracy"]})
            if r["history"]:
                curves.setdefault(r["target"], {}).setdefault(r["method"], []).append(r["history"])
            if on_fold is not None:
                on_fold({"fold": fold.name, "target": r["target"], "method": r["method"], **metrics})

    workers = min(ev.fold_workers, len(splits)) if par.world_size == 1 else 1
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        _SHARED.update(data=data, splits=splits, config=config)
        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                for fold, records in zip(splits, pool.map(_fold_worker, range(len(splits))), strict=True):
                    collect(fold, records)
        finally:
            _SHARED.clear()
    else:
        for fold in splits:
            collect(fold, _fold_records(data, fold, config, par))
    summary = {t: {m: r.summary()[t] for m, r in reports.items() if t in r.folds} for t in config.targets}
    return {"protocol": protocol, "reports": {m: r.to_dict() for m, r in reports.items()},
            "summary": summary, "comparisons": compare_arms(reports, ARM_PAIRS), "curves": curves}


def sweep_distillation(
    data: WindowedDataset,
    config: ExperimentConfig,
    grid: Sequence[Mapping[str, Any]],
    *,
    parallel: Parallel | None = None,
) -> dict[str, Any]:
    """KD settings compared against the GSR-only student, fold by fold.

    ``grid``: dicts of ``distill`` overrides (``{"matching": "relational", "kl_weight": 0.5,
    "temperature": 2.0}``). Per fold and target, the teacher and the student are trained once
    and every grid point trains one KD student from that teacher, so the differences are paired
    on the same teacher. Returns ``{"grid", "folds": {target: {label: [accuracy per fold]}},
    "comparisons": {target: [KD setting − student]}}`` (:func:`compare_arms`).
    """
    import dataclasses

    par = parallel or Parallel()
    ev = config.evaluation
    splits = list(folds(data, protocol_name(ev.protocol), k=ev.folds, seed=config.seed))
    if ev.max_folds:
        splits = splits[:ev.max_folds]
    settings = {", ".join(f"{k}={v}" for k, v in point.items()): dataclasses.replace(config.distill, **point)
                for point in grid}
    reports: dict[str, EvaluationReport] = {}
    protocol = protocol_name(ev.protocol)
    for fold in splits:
        train, test = data.subset(fold.train), data.subset(fold.test)
        for target in config.targets:
            y_train = train.labels[:, TARGETS.index(target)]
            tensors = TensorSet.from_dataset(test, target, need_eeg=test.eeg is not None)
            base = fit_methods(train, target, config, ("teacher", "student"), parallel=par)
            fitted = {"student": base["student"].model}
            for label, distill in settings.items():
                point = dataclasses.replace(config, distill=distill)
                fitted[label] = fit_methods(train, target, point, ("kd",), parallel=par,
                                            teacher=base["teacher"].model)["kd"].model  # type: ignore[arg-type]
            for label, model in fitted.items():
                predictions = predict_proba(model, tensors, par.device).argmax(1)
                report = reports.setdefault(label, EvaluationReport(protocol=protocol, model=label))
                report.add(target, fold, tensors.labels.numpy(), predictions, y_train)
    return {"grid": [dict(p) for p in grid],
            "folds": {t: {m: [row["accuracy"] for row in r.folds[t]] for m, r in reports.items()}
                      for t in config.targets},
            "comparisons": compare_arms(reports, [(label, "student") for label in settings])}


def summary_table(summary: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]]) -> str:
    """A Markdown table, mean ± std (%) over folds, one row per target and method."""
    header = "| target | method | " + " | ".join(METRIC_TITLES[m] for m in METRICS) + " | folds |"
    lines = [header, "|" + "---|" * (len(METRICS) + 3)]
    for target, methods in summary.items():
        for method, stats in methods.items():
            cells = " | ".join(format_mean_std(stats[m]) if m in stats else "–" for m in METRICS)
            lines.append(f"| {target} | {method} | {cells} | {int(stats['accuracy']['folds'])} |")
    return "\n".join(lines) + "\n"


def describe_options(model: Any) -> str:
    """``heads × head_dim, blocks`` of an encoder config, and its readout when it is not the
    authors' flatten, in words for the results table."""
    words = f"{model.heads} heads × {model.head_dim}, {model.blocks} block{'s' if model.blocks != 1 else ''}"
    return words + (", pooled readout" if model.readout == "pool" else "")


def teacher_restarts(results: Mapping[str, Any], allowed: int) -> str:
    """The report's words on plateau restarts: how many teacher trainings (target × fold) kept a
    restarted run (``restart`` in their curves; said only when restarts are on) and which ones
    ended on the plateau after every run (the trainer's ``plateau`` flag; said whenever one did)."""
    runs: list[tuple[str, Mapping[str, float]]] = []
    for target, methods in results.get("curves", {}).items():
        histories = [history for history in methods.get("teacher", []) if history]
        names = [fold.get("fold", "?") for fold in
                 results.get("reports", {}).get("teacher", {}).get("folds", {}).get(target, [])]
        if len(names) != len(histories):  # curves and reports are collected together, fold by fold
            names = [f"fold {k + 1}" for k in range(len(histories))]
        runs += [(f"{target} {name}", history[-1]) for name, history in zip(names, histories, strict=True)]
    words = ""
    if allowed:
        restarted = sum(1 for _, last in runs if last.get("restart", 0) > 0)
        words = f", up to {allowed} restarts on a plateau (kept a restart: {restarted} of {len(runs)} teachers)"
    stuck = [where for where, last in runs if last.get("plateau", 0.0) > 0]
    if stuck:
        words += (f"; **{len(stuck)} of {len(runs)} teachers ended on the plateau** (a near-constant "
                  f"answer: {', '.join(stuck)})")
    return words


def kept_epoch_words(select_by: str) -> str:
    """Which epoch a model keeps, in words, for the report (``select_by`` of its optimiser)."""
    if select_by == "last":
        return "its last epoch (validation scores recorded, not used)"
    return f"its best epoch by validation {select_by.replace('_', ' ')}"


def results_markdown(results: Mapping[str, Any], config: ExperimentConfig, *, command: str, wall_s: float,
                     curves_image: str | None = None, cpu_s: float | None = None,
                     appendices: Sequence[str] = ()) -> str:
    """The complete results document of one ``evaluate`` run (what ``make results`` writes to
    docs/results.md): command, data, settings, wall time, the summary table (chance and training
    accuracy beside every figure), paired comparisons, and per-fold accuracies.

    ``cpu_s``: CPU seconds of the run (all processes), reported beside the wall time.
    ``appendices``: Markdown sections appended as they are (e.g. the KD sweep that chose the
    distillation settings, ``docs/kd-choice.md``), so the one command regenerates them too."""
    from emotionkd.training.baselines import BAND_SYMBOLS, eeg_bands_below
    from emotionkd.training.datasets.config import recorded_eeg_rate_hz

    data = results.get("data", {})
    t_opt, s_opt, ev = config.teacher_optim, config.student_optim, config.evaluation
    # the teacher's EEG scaling as the windows record it (a prepared file carries its own)
    scaling = data.get("eeg_normalisation") or (config.data.eeg_normalisation if config.data.source != "prepared" else None)
    eeg_rate_hz = recorded_eeg_rate_hz(data)
    eeg_samples = data.get("eeg_window_samples")
    eeg_context = f", EEG {eeg_samples / eeg_rate_hz:g} s at {eeg_rate_hz:g} Hz" if eeg_samples else ""
    eeg_scaling = f"{eeg_context}, EEG scaled `{scaling}`" if scaling else eeg_context
    bands = " ".join(BAND_SYMBOLS[name] for name in eeg_bands_below(eeg_rate_hz))
    lines = [
        f"# Results: {config.name} ({results['protocol']})", "",
        "Generated by the command below; do not edit by hand. Synthetic data says nothing about real",
        "EEG/GSR; it shows what the method does under an honest protocol on a generator whose effects",
        "are known.", "",
        "## The exact command", "", "```bash", command, "```", "",
        "## What ran", "",
        "| item | value |", "|---|---|",
        f"| data | {data.get('dataset')} ({data.get('data_kind')}), {data.get('subjects')} subjects, "
        f"{data.get('windows')} windows, source `{config.data.source}`"
        + (f"; generator: {config.data.trial_s:g} s trials, GSR drive noise {config.data.gsr_drive_noise:g}, "
           f"a window every {config.data.hop_s:g} s" if config.data.source == "synthetic" else "") + " |",
        f"| models | teacher {describe_options(config.teacher)}{eeg_scaling}; student {describe_options(config.student)} |",
        f"| protocol | {results['protocol']}; validation: {ev.validation_fraction:.0%} of the training split "
        "(whole subjects, or whole trials under 3 subjects); the teacher keeps "
        f"{kept_epoch_words(t_opt.select_by)}, the students {kept_epoch_words(s_opt.select_by)} |",
        f"| teacher optimiser | Adam lr {t_opt.lr:g}, batch {t_opt.batch_size}, {t_opt.epochs} epochs, "
        f"schedule {t_opt.schedule} (warm-up {t_opt.warmup_fraction:.0%}), class weighting "
        f"{t_opt.class_weighting}, patience {t_opt.patience or 'off'}{teacher_restarts(results, t_opt.plateau_restarts)} |",
        f"| student optimiser | Adam lr {s_opt.lr:g}, batch {s_opt.batch_size}, {s_opt.epochs} epochs, "
        f"schedule {s_opt.schedule}, class weighting {s_opt.class_weighting}, patience {s_opt.patience or 'off'} |",
        f"| KD | matching `{config.distill.matching}`, KL weight {config.distill.kl_weight:g}, "
        f"T = {config.distill.temperature:g}, feature weight {config.distill.feature_weight:g} |",
        f"| KD + feedback | period {config.feedback.period}, teacher lr {config.feedback.teacher_lr:g}, "
        f"quiz {config.feedback.quiz_fraction:.0%} of the training trials |",
        "| baselines | logistic regression (scikit-learn, class-balanced) on EEG log band powers "
        f"({bands} per channel), on GSR level, slope, SCR count and amplitude of the model's window, "
        "and on both side by side (`logreg-eeg+gsr`: the teacher's two inputs, read linearly) |",
        f"| run | {wall_s / 60:.1f} min wall"
        + (f", {cpu_s / 60:.1f} min CPU (all processes)" if cpu_s is not None else "")
        + f", {ev.fold_workers} fold process(es) × {config.threads or 'default'} "
        f"torch thread(s), seed {config.seed} |",
        "",
        "## Accuracy (mean ± std over folds, %)", "",
        "Chance = the test fold's majority share; training accuracy on the fold's training subjects.", "",
        summary_table(results["summary"]),
        "## Paired differences between arms (per fold = per subject under LOSO)", "",
        "Bootstrap: 10,000 resamples of the folds, percentile 95 % CI, fixed seed "
        "(`emotionkd.training.evaluation.BOOTSTRAP_SEED`); two-sided Wilcoxon signed-rank test.", "",
        comparison_table(results["comparisons"]),
        "## Accuracy per fold (%)", "",
    ]
    for target, methods in results["summary"].items():
        names = list(methods)
        lines += [f"**{target}**", "", "| fold | chance | " + " | ".join(names) + " |",
                  "|---|---|" + "---|" * len(names)]
        rows = {m: {r["fold"]: r for r in results["reports"][m]["folds"][target]} for m in names}
        for fold in rows[names[0]]:
            chance = rows[names[0]][fold]["chance"]
            cells = " | ".join(f"{100 * rows[m][fold]['accuracy']:.1f}" if fold in rows[m] else "–" for m in names)
            lines.append(f"| {fold} | {100 * chance:.1f} | {cells} |")
        lines.append("")
    if curves_image:
        lines += ["## Training curves", "", f"![training loss and held-out accuracy per epoch]({curves_image})", ""]
    lines += [appendix.rstrip("\n") + "\n" for appendix in appendices]
    return "\n".join(lines)


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
    label = meta.get("label_rule")
    label = label if isinstance(label, Mapping) else {}
    return ModelContract(
        sample_rate_hz=preprocessing.rate_hz,
        window_samples=preprocessing.window_samples,
        train_hop_samples=int(meta.get("hop_samples", preprocessing.window_samples)),
        preprocessing=PreprocessingSpec.from_config(preprocessing),
        targets=tuple(config.targets),
        label_threshold=float(label.get("threshold", config.data.label_threshold)),
        label_rule=label_rule_operator(str(label.get("rule", config.data.label_rule))),
        provenance=Provenance(data_kind=str(meta.get("data_kind", "synthetic")),
                              dataset=str(meta.get("dataset", config.data.source)),
                              protocol=protocol, subjects=subjects, method=method, notes=notes),
        metrics={t: dict(m) for t, m in metrics.items()},
        model=describe(student),
    )


__all__ = [
    "build_contract",
    "evaluate_protocol",
    "check_synthetic_files",
    "fit_methods",
    "load_windows",
    "plot_curves",
    "protocol_name",
    "results_markdown",
    "subject_holdout",
    "summary_table",
    "sweep_distillation",
]
