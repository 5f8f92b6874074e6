"""Evaluation on real people: grouped k-fold (or leave-one-participant-out) over labelled wrist
recordings, every arm scored at the same decision points.

Arms (arousal = "stress task" on Stress-Predict):

* ``fine-tuned``: a distilled student's arousal head fine-tuned on the training participants;
* ``scratch``: the same architecture trained from random weights on the same windows;
* ``shipped``: the bundled ONNX model as shipped (no training);
* ``logreg-level``: logistic regression on skin-conductance level (pooled over participants);
* ``logreg-features``: logistic regression on level, slope and SCR features of the raw µS;
* ``logreg-input-features``: the same four features read from the fine-tuned arm's own input
  (its contract's preprocessing: under v2, log conductance relative to the causal baseline), so
  the input's contribution and the network's can be told apart;
* ``person-threshold``: level above the held-out person's own quantile at the training
  prevalence (it sees the held-out person's unlabelled levels: a transductive baseline).

Decision points: every ``hop_s`` seconds on each recording's own time axis, wherever the last
``context_s`` seconds lie inside one labelled span (label = that span's label). Each model arm
streams the whole recording through its own contract's preprocessing (as the SDK would) and is
scored on the window that ends at the decision point; the baselines read the raw µS of the same
``context_s`` seconds. A decision point counts only where every arm has a usable window, so all
arms are scored on exactly the same points.

Per participant: AUC (rank-based), accuracy and macro-F1 at probability 0.5 (threshold rule for
the person-threshold arm), with chance beside (AUC 0.5; the majority class's accuracy and
macro-F1). Between arms: Wilcoxon signed-rank tests on per-person AUC (paired by person) and
bootstrap 95 % CIs over persons. Nothing here prints; :func:`evaluate_real` returns plain types.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.sdk.preprocessing import GsrPreprocessor, PreprocessingConfig
from emotionkd.training.datasets.recordings import Recording

ARMS: Final = ("fine-tuned", "scratch", "shipped", "logreg-level", "logreg-features", "logreg-input-features",
                "person-threshold")
MODEL_ARMS: Final = ("fine-tuned", "scratch", "shipped")
LEVEL_S: Final = 4.0  # level = mean µS over the last 4 s before the decision point
SCR_MIN_RISE_US: Final = 0.02  # a rise of at least this much (µS) is counted as a skin conductance response


@dataclass(frozen=True)
class RealEvalConfig:
    """Options of :func:`evaluate_real` (fixed before any result was seen).

    Attributes:
        folds: participants split into this many groups (round-robin over sorted ids); 0 = one
            participant per fold (leave-one-participant-out).
        hop_s: seconds between decision points.
        context_s: signal a decision point needs inside its labelled span (s); also the span
            of the baselines' slope and SCR features.
        epochs: passes over the sampled training windows (fine-tuned and scratch alike).
        train_windows: training windows sampled per fold (the same for both trained arms).
        finetune_lr / scratch_lr: Adam learning rates.
        batch_size: windows per step.
        seed: seed of sampling, initialisation and shuffling (the same for every fold).
        bootstrap: resamples of persons for the confidence intervals.
        threads: torch threads per process.
        workers: processes running folds in parallel.
        rest_s: personal calibration (v2 models): seconds of each recording's first rest span
            that seed the causal baseline of a stream starting after that rest.
        baseline_tau_grid: v2 models: candidate time constants (s) of the causal baseline. Empty:
            the base model's own. Otherwise, in each fold, the candidate whose input level (mean
            of the window's last 4 s) has the best median per-person AUC over that fold's
            *training* participants is the fold's preprocessing (nested: the held-out people
            never choose); the final model takes the one chosen on every participant.
        seed_from_rest: v2 models: every recording's causal baseline (training, selection and
            evaluation alike) starts at :func:`rest_baseline_us` of the last ``rest_s`` seconds
            of its first rest span instead of at its first sample (a rest calibration recorded
            in the session, read before it streams). Decision points inside that first rest
            span are then scored for no arm (the seed would tell them they are rest).
    """

    folds: int = 6
    hop_s: float = 4.0
    context_s: float = 32.0
    epochs: int = 3
    train_windows: int = 3000
    finetune_lr: float = 3e-4
    scratch_lr: float = 1e-3
    batch_size: int = 32
    seed: int = 0
    bootstrap: int = 2000
    threads: int = 1
    workers: int = 1
    rest_s: float = 180.0
    baseline_tau_grid: tuple[float, ...] = ()
    seed_from_rest: bool = False

    def __post_init__(self) -> None:
        if self.folds == 1 or self.folds < 0:
            raise ConfigError(f"folds must be 0 (leave one participant out) or >= 2, got {self.folds}")
        if not (self.hop_s > 0 and self.context_s >= self.hop_s and self.epochs >= 0 and self.train_windows >= 2
                and self.finetune_lr > 0 and self.scratch_lr > 0 and self.batch_size >= 2 and self.threads >= 1
                and self.workers >= 1 and self.bootstrap >= 0):
            raise ConfigError(f"invalid real-data evaluation options {self}")
        if not all(math.isfinite(t) and t > 0 for t in self.baseline_tau_grid):
            raise ConfigError(f"baseline time constants must be positive seconds, got {self.baseline_tau_grid}")


@dataclass
class Decisions:
    """N decision points: subject (N,), label (N,) 0/1, recording index (N,), end_s (N,) on the
    recording's axis, baseline features (N, 4): level µS, slope µS/s, SCRs per minute, mean SCR
    rise µS."""

    subject: npt.NDArray[np.int64]
    label: npt.NDArray[np.int64]
    recording: npt.NDArray[np.int64]
    end_s: npt.NDArray[np.float64]
    features: npt.NDArray[np.float64]

    def subset(self, mask: npt.NDArray[np.bool_]) -> Decisions:
        return Decisions(self.subject[mask], self.label[mask], self.recording[mask], self.end_s[mask],
                         self.features[mask])


# --- decision points and inputs -----------------------------------------------------------------
def fill_gaps(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Missing samples linearly interpolated (for the raw-signal features only)."""
    ok = np.isfinite(x)
    if ok.all() or not ok.any():
        return x
    idx = np.arange(x.size)
    return np.interp(idx, idx[ok], x[ok])


def raw_features(us: npt.NDArray[np.float64], rate_hz: float) -> npt.NDArray[np.float64]:
    """(4,) level (mean µS of the last 4 s), slope (µS/s, least squares over ``us``), SCRs per
    minute and mean SCR rise (µS; 0 without SCRs) of one context of raw µS samples."""
    if np.isfinite(us).mean() < 0.5:
        return np.full(4, np.nan)
    x = fill_gaps(us)
    level = float(np.mean(x[-max(1, int(round(LEVEL_S * rate_hz))):]))
    t = np.arange(x.size) / rate_hz
    slope = float(np.polyfit(t, x, 1)[0]) if x.size > 1 else 0.0
    rises = []
    d = np.diff(x)
    run = 0.0
    for step in d:  # a response: a run of rising samples adding up to SCR_MIN_RISE_US or more
        if step > 0:
            run += step
        else:
            if run >= SCR_MIN_RISE_US:
                rises.append(run)
            run = 0.0
    if run >= SCR_MIN_RISE_US:
        rises.append(run)
    minutes = x.size / rate_hz / 60.0
    return np.array([level, slope, len(rises) / minutes, float(np.mean(rises)) if rises else 0.0])


def decision_points(recordings: Sequence[tuple[int, Recording]], config: RealEvalConfig) -> Decisions:
    """Every ``hop_s`` on each recording's axis whose last ``context_s`` lie in one labelled span."""
    subject, label, index, end, feats = [], [], [], [], []
    for r, (sid, rec) in enumerate(recordings):
        for seg in rec.segments:
            if seg.labels[0] < 0:
                continue
            start_s, stop_s = seg.start / rec.rate_hz, seg.end / rec.rate_hz
            first = math.ceil((start_s + config.context_s) / config.hop_s - 1e-9)
            for k in range(first, int(math.floor(stop_s / config.hop_s + 1e-9)) + 1):
                e = k * config.hop_s
                lo, hi = int(round((e - config.context_s) * rec.rate_hz)), int(round(e * rec.rate_hz))
                subject.append(sid)
                label.append(int(seg.labels[0]))
                index.append(r)
                end.append(e)
                feats.append(raw_features(rec.gsr[lo:hi], rec.rate_hz))
    if not subject:
        raise DataError(f"no decision points: no arousal-labelled span is {config.context_s:g} s long")
    return Decisions(np.array(subject, np.int64), np.array(label, np.int64), np.array(index, np.int64),
                     np.array(end), np.array(feats).reshape(-1, 4))


def model_inputs(recordings: Sequence[tuple[int, Recording]], decisions: Decisions, preprocessing: PreprocessingConfig,
                 hop_s: float, seeds_us: Sequence[float | None] | None = None,
                 ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """(N, W) model input of the window ending at each decision point (whole recordings streamed
    through ``preprocessing``, each one's baseline started at ``seeds_us[r]`` µS where given) and
    (N,) whether that window is usable."""
    hop = hop_s * preprocessing.rate_hz
    window_s = preprocessing.window_s
    if abs(hop - round(hop)) > 1e-6 or abs(window_s / hop_s - round(window_s / hop_s)) > 1e-6:
        raise ConfigError(f"hop_s {hop_s:g} s must be a whole number of samples at {preprocessing.rate_hz:g} Hz "
                          f"and divide the model's {window_s:g} s window")
    x = np.zeros((len(decisions.subject), preprocessing.window_samples), np.float32)
    usable = np.zeros(len(decisions.subject), bool)
    for r, (_, rec) in enumerate(recordings):
        rows = np.flatnonzero(decisions.recording == r)
        if rows.size == 0:
            continue
        seed = seeds_us[r] if seeds_us is not None else None
        windows = GsrPreprocessor(rec.rate_hz, "uS", preprocessing, hop_samples=int(round(hop)),
                                  initial_baseline_us=seed).apply(rec.gsr)
        k = np.round((decisions.end_s[rows] - window_s) / hop_s).astype(np.int64)
        ok = (k >= 0) & (k < len(windows))
        ok[ok] &= np.abs(windows.start_s[k[ok]] - (decisions.end_s[rows][ok] - window_s)) < 1e-3
        ok[ok] &= windows.usable[k[ok]] & np.isfinite(windows.features[k[ok]]).all(axis=1)
        x[rows[ok]] = windows.features[k[ok]]
        usable[rows[ok]] = True
    return x, usable


def rest_seeds_us(recordings: Sequence[tuple[int, Recording]], preprocessing: PreprocessingConfig,
                  rest_s: float) -> list[float | None]:
    """Per recording: :func:`rest_baseline_us` of the last ``rest_s`` seconds of its first rest
    span (None without a rest span holding a valid sample)."""
    from emotionkd.sdk.preprocessing import rest_baseline_us

    out: list[float | None] = []
    for _, rec in recordings:
        rest = next((seg for seg in rec.segments if seg.labels[0] == 0), None)
        tail = rec.gsr[max(rest.start, rest.end - int(round(rest_s * rec.rate_hz))):rest.end] if rest else None
        ok = tail is not None and bool((np.isfinite(tail) & (tail > 0)).any())
        out.append(rest_baseline_us(tail, rec.rate_hz, "uS", preprocessing) if ok and tail is not None else None)
    return out


def inside_first_rest(recordings: Sequence[tuple[int, Recording]], decisions: Decisions) -> npt.NDArray[np.bool_]:
    """(N,) whether each decision point ends inside (or before the end of) its recording's first
    rest span, the span :func:`rest_seeds_us` reads."""
    out = np.zeros(len(decisions.subject), bool)
    for r, (_, rec) in enumerate(recordings):
        rest = next((seg for seg in rec.segments if seg.labels[0] == 0), None)
        if rest is not None:
            out |= (decisions.recording == r) & (decisions.end_s <= rest.end / rec.rate_hz + 1e-9)
    return out


def calibration_inputs(recordings: Sequence[tuple[int, Recording]], decisions: Decisions,
                       preprocessing: PreprocessingConfig, config: RealEvalConfig,
                       ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Personal calibration: each recording streamed from the end of its first rest span, with
    the causal baseline started cold (at the stream's first sample) or seeded from the first
    ``rest_s`` seconds of that rest (:func:`rest_baseline_us`).

    Returns (cold (N, W), seeded (N, W), usable (N,)): inputs at the decision points after the
    stream start (``usable`` False elsewhere and where either window is not usable).
    """
    from emotionkd.sdk.preprocessing import rest_baseline_us

    hop = int(round(config.hop_s * preprocessing.rate_hz))
    window_s = preprocessing.window_s
    n = len(decisions.subject)
    cold = np.zeros((n, preprocessing.window_samples), np.float32)
    seeded = np.zeros_like(cold)
    usable = np.zeros(n, bool)
    for r, (_, rec) in enumerate(recordings):
        rest = next((seg for seg in rec.segments if seg.labels[0] == 0), None)
        rows = np.flatnonzero(decisions.recording == r)
        if rest is None or rows.size == 0:
            continue
        rest_us = rec.gsr[rest.start:min(rest.end, rest.start + int(round(config.rest_s * rec.rate_hz)))]
        if not (np.isfinite(rest_us) & (rest_us > 0)).any():
            continue
        start_s = math.ceil(rest.end / rec.rate_hz / config.hop_s - 1e-9) * config.hop_s  # on the decision grid
        stream = rec.gsr[int(round(start_s * rec.rate_hz)):]
        seed_us = rest_baseline_us(rest_us, rec.rate_hz, "uS", preprocessing)
        both = [GsrPreprocessor(rec.rate_hz, "uS", preprocessing, hop, initial_baseline_us=b).apply(stream)
                for b in (None, seed_us)]
        k = np.round((decisions.end_s[rows] - start_s - window_s) / config.hop_s).astype(np.int64)
        ok = (k >= 0) & (k < min(len(both[0]), len(both[1])))
        for w in both:
            ok[ok] &= w.usable[k[ok]] & np.isfinite(w.features[k[ok]]).all(axis=1)
        cold[rows[ok]], seeded[rows[ok]] = both[0].features[k[ok]], both[1].features[k[ok]]
        usable[rows[ok]] = True
    return cold, seeded, usable


def _model_arm_inputs(recordings: Sequence[tuple[int, Recording]], decisions: Decisions,
                      preprocessing: PreprocessingConfig, config: RealEvalConfig,
                      seeds_us: Sequence[float | None] | None = None) -> dict[str, npt.NDArray[np.float32]]:
    """The trained arms' inputs at every decision point under ``preprocessing`` (the decision
    points are usable ones already), plus the personal-calibration streams for v2 input."""
    x, ok = model_inputs(recordings, decisions, preprocessing, config.hop_s, seeds_us)
    if not ok.all():
        raise DataError(f"{int((~ok).sum())} decision points have no usable window under {preprocessing}")
    inputs = {"fine-tuned": x, "scratch": x}
    if preprocessing.normalisation == "log_baseline":
        cold, seeded, calibration_ok = calibration_inputs(recordings, decisions, preprocessing, config)
        inputs.update(calibration_cold=cold, calibration_seeded=seeded,
                      calibration_usable=calibration_ok.astype(np.float32))
    return inputs


def input_features(x: npt.NDArray[np.float32], preprocessing: PreprocessingConfig) -> npt.NDArray[np.float64]:
    """(N, W) model input → (N, 4) level, slope, SCR count and amplitude of that input
    (:func:`~emotionkd.training.baselines.gsr_features`, SCR onsets at the preprocessing's own
    criterion), in the input's units: the ``logreg-input-features`` arm."""
    from emotionkd.training.baselines import gsr_features, scr_rise_threshold_per_s

    return gsr_features(x, preprocessing.rate_hz, scr_rise_threshold_per_s(preprocessing.to_params()))


def input_level(x: npt.NDArray[np.float32], rate_hz: float) -> npt.NDArray[np.float64]:
    """(N,) mean of the last ``LEVEL_S`` seconds of each (N, W) model input window."""
    return x[:, -max(1, int(round(LEVEL_S * rate_hz))):].astype(np.float64).mean(axis=1)


def choose_baseline_tau(levels: Mapping[float, npt.NDArray[np.float64]], decisions: Decisions,
                        subjects: Sequence[int]) -> tuple[float, dict[float, float]]:
    """The baseline time constant whose input level ranks stress over rest best within these
    participants: (chosen τ in s, {τ: median per-person AUC of the level}). Ties go to the
    shorter τ. Pass training participants only: the choice must not see held-out people."""
    medians: dict[float, float] = {}
    for tau, level in levels.items():
        per = [auc(decisions.label[decisions.subject == s], level[decisions.subject == s]) for s in subjects]
        medians[float(tau)] = float(np.nanmedian(per))
    best = max(medians.values())
    return min(t for t, m in medians.items() if m == best), medians


# --- metrics ----------------------------------------------------------------------------------
def auc(y: npt.NDArray[np.int64], score: npt.NDArray[np.float64]) -> float:
    """Area under the ROC curve (Mann-Whitney with mid-ranks); NaN with one class only."""
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    if pos == 0 or neg == 0:
        return math.nan
    from scipy.stats import rankdata

    ranks = rankdata(score)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def macro_f1(y: npt.NDArray[np.int64], pred: npt.NDArray[np.int64]) -> float:
    scores = []
    for c in (0, 1):
        tp = int(((pred == c) & (y == c)).sum())
        fp = int(((pred == c) & (y != c)).sum())
        fn = int(((pred != c) & (y == c)).sum())
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores))


def person_metrics(y: npt.NDArray[np.int64], score: npt.NDArray[np.float64],
                   pred: npt.NDArray[np.int64]) -> dict[str, float]:
    majority = int(y.mean() >= 0.5)
    return {"auc": auc(y, score), "accuracy": float((pred == y).mean()), "macro_f1": macro_f1(y, pred),
            "chance_accuracy": float((y == majority).mean()),
            "chance_macro_f1": macro_f1(y, np.full_like(y, majority)), "windows": int(y.size),
            "high_rate": float(y.mean())}


# --- baselines --------------------------------------------------------------------------------
def fit_logistic(x: npt.NDArray[np.float64], y: npt.NDArray[np.int64], l2: float = 1e-3,
                 ) -> Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]:
    """L2-regularised logistic regression on standardised features (Newton's method);
    returns ``x → P(high)``."""
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    z = np.column_stack([np.ones(len(x)), (x - mean) / std])
    w = np.zeros(z.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
        grad = z.T @ (p - y) + l2 * np.r_[0.0, w[1:]]
        hess = (z * (p * (1 - p))[:, None]).T @ z + l2 * np.diag(np.r_[0.0, np.ones(len(w) - 1)])
        step = np.linalg.solve(hess + 1e-9 * np.eye(len(w)), grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break

    def predict(x_new: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        zn = np.column_stack([np.ones(len(x_new)), (x_new - mean) / std])
        return 1.0 / (1.0 + np.exp(-np.clip(zn @ w, -30, 30)))

    return predict


# --- one fold ---------------------------------------------------------------------------------
def fit_arousal(x: npt.NDArray[np.float32], y: npt.NDArray[np.int64], base: Any, lr: float, from_base: bool,
                config: RealEvalConfig, seed: int) -> Any:
    """The arousal student trained on (x (N, W), y (N,)): fine-tuned from ``base``'s arousal
    head, or from random weights of its architecture (``from_base`` False)."""
    import torch

    from emotionkd.training.config import OptimConfig
    from emotionkd.training.trainer import LoopOptions, TensorSet, train_student

    torch.set_num_threads(config.threads)
    data = TensorSet(eeg=None, gsr=torch.from_numpy(np.ascontiguousarray(x)), labels=torch.from_numpy(y))
    optim = OptimConfig(lr=lr, epochs=config.epochs, batch_size=config.batch_size)
    initial = base.build("arousal").train() if from_base else None
    return train_student(data, base.student_config, optim, 0.0, LoopOptions(seed=seed), initial=initial,
                         desc="finetune" if from_base else "scratch").model


def _train_arm(x: npt.NDArray[np.float32], y: npt.NDArray[np.int64], held: Sequence[npt.NDArray[np.float32]],
               base: Any, lr: float, from_base: bool, config: RealEvalConfig, seed: int,
               ) -> list[npt.NDArray[np.float64]]:
    """Train the arousal student on (x, y); P(high) for each array of held-out inputs."""
    import torch

    from emotionkd.training.trainer import TensorSet, predict_proba

    model = fit_arousal(x, y, base, lr, from_base, config, seed)
    out = []
    for held_x in held:
        tensors = TensorSet(eeg=None, gsr=torch.from_numpy(np.ascontiguousarray(held_x)),
                            labels=torch.zeros(len(held_x), dtype=torch.int64))
        out.append(predict_proba(model, tensors)[:, 1].astype(np.float64) if len(held_x) else np.zeros(0))
    return out


def run_fold(fold: int, held: list[int], decisions: Decisions, inputs: Mapping[str, npt.NDArray[np.float32]],
             base_path: str, config: RealEvalConfig) -> dict[str, Any]:
    """Scores of the trained and baseline arms on the held-out participants of one fold.

    Returns ``{"held": [...], "scores": {arm: (n_held,) P(high)}, "preds": {arm: (n_held,)},
    "cpu_s": float}`` in the order of the held-out decision points.
    """
    from emotionkd.training.checkpoint import load_student_checkpoint

    started = time.process_time()
    test = np.isin(decisions.subject, held)
    train_idx = np.flatnonzero(~test)
    rng = np.random.default_rng(config.seed)
    sample = np.sort(rng.choice(train_idx, size=min(config.train_windows, train_idx.size), replace=False))
    y_train = decisions.label[sample]
    base = load_student_checkpoint(base_path)
    scores: dict[str, npt.NDArray[np.float64]] = {}
    calibrated = test & inputs["calibration_usable"].astype(bool) if "calibration_usable" in inputs else test & False
    held_sets = [inputs["fine-tuned"][test], inputs["calibration_cold"][calibrated],
                 inputs["calibration_seeded"][calibrated]] if calibrated.any() else [inputs["fine-tuned"][test]]
    tuned = _train_arm(inputs["fine-tuned"][sample], y_train, held_sets, base, config.finetune_lr, True, config,
                       config.seed)
    scores["fine-tuned"] = tuned[0]
    calibration = ({"rows": np.flatnonzero(calibrated).tolist(), "cold": tuned[1].tolist(),
                    "seeded": tuned[2].tolist()} if calibrated.any() else None)
    scores["scratch"] = _train_arm(inputs["scratch"][sample], y_train, [inputs["scratch"][test]], base,
                                   config.scratch_lr, False, config, config.seed)[0]
    feats = decisions.features
    scores["logreg-level"] = fit_logistic(feats[train_idx][:, :1], decisions.label[train_idx])(feats[test][:, :1])
    scores["logreg-features"] = fit_logistic(feats[train_idx], decisions.label[train_idx])(feats[test])
    own = input_features(inputs["fine-tuned"], base.contract.preprocessing_config())
    scores["logreg-input-features"] = fit_logistic(own[train_idx], decisions.label[train_idx])(own[test])
    preds = {arm: (s >= 0.5).astype(np.int64) for arm, s in scores.items()}
    prevalence = float(decisions.label[train_idx].mean())
    level = feats[test][:, 0]
    threshold_pred = np.zeros(level.size, np.int64)
    for sid in held:  # each held-out person's own level quantile at the training prevalence
        mine = decisions.subject[test] == sid
        cut = np.quantile(level[mine], 1.0 - prevalence)
        threshold_pred[mine] = (level[mine] > cut).astype(np.int64)
    scores["person-threshold"] = level
    preds["person-threshold"] = threshold_pred
    return {"fold": fold, "held": list(held), "scores": {k: v.tolist() for k, v in scores.items()},
            "preds": {k: v.tolist() for k, v in preds.items()}, "calibration": calibration,
            "cpu_s": time.process_time() - started}


# --- summary ----------------------------------------------------------------------------------
def _bootstrap_ci(values: npt.NDArray[np.float64], rng: np.random.Generator, n: int,
                  stat: Callable[[npt.NDArray[np.float64]], float] = np.median) -> list[float]:
    if n == 0 or values.size < 2:
        return [math.nan, math.nan]
    draws = [stat(values[rng.integers(0, values.size, values.size)]) for _ in range(n)]
    return [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))]


def paired_difference(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], rng: np.random.Generator,
                      resamples: int) -> dict[str, Any]:
    """``a − b`` over the persons where both are finite ((P,) each, same person order): median and
    mean difference, bootstrap 95 % CI of the median (``resamples`` draws from ``rng``), wins,
    losses, persons and the Wilcoxon signed-rank p (NaN under 2 pairs or when every pair ties)."""
    from scipy.stats import wilcoxon

    ok = np.isfinite(a) & np.isfinite(b)
    diff = a[ok] - b[ok]
    p_value = float(wilcoxon(diff).pvalue) if ok.sum() >= 2 and np.any(diff != 0) else math.nan
    return {"median_difference": float(np.median(diff)), "mean_difference": float(np.mean(diff)),
            "median_difference_ci95": _bootstrap_ci(diff, rng, resamples),
            "wins": int((diff > 0).sum()), "losses": int((diff < 0).sum()), "persons": int(ok.sum()),
            "wilcoxon_p": p_value}


def summarise(per_person: Mapping[str, Mapping[int, Mapping[str, float]]], config: RealEvalConfig,
              ) -> dict[str, Any]:
    """Medians and means with bootstrap CIs per arm; paired Wilcoxon tests on per-person AUC."""
    rng = np.random.default_rng(config.seed)
    persons = sorted(next(iter(per_person.values())))
    arms: dict[str, Any] = {}
    for arm, table in per_person.items():
        row: dict[str, Any] = {}
        for metric in ("auc", "accuracy", "macro_f1", "chance_accuracy", "chance_macro_f1"):
            v = np.array([table[p][metric] for p in persons], float)
            v = v[np.isfinite(v)]
            row[metric] = {"median": float(np.median(v)), "mean": float(np.mean(v)),
                           "median_ci95": _bootstrap_ci(v, rng, config.bootstrap),
                           "min": float(v.min()), "max": float(v.max()), "persons": int(v.size)}
        arms[arm] = row
    tests: dict[str, Any] = {}
    for reference in ("fine-tuned",):
        ref = np.array([per_person[reference][p]["auc"] for p in persons])
        for other in per_person:
            if other == reference:
                continue
            o = np.array([per_person[other][p]["auc"] for p in persons])
            tests[f"{reference} vs {other}"] = paired_difference(ref, o, rng, config.bootstrap)
    return {"arms": arms, "paired_auc": tests}


def plot(per_person: Mapping[str, Mapping[int, Mapping[str, float]]], path: Path, title: str) -> Path:
    """Per-person AUC of every arm (dots, paired by person with faint lines), medians, chance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(per_person)
    persons = sorted(next(iter(per_person.values())))
    values = np.array([[per_person[a][p]["auc"] for a in arms] for p in persons])
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    xs = np.arange(len(arms))
    for row in values:
        ax.plot(xs, row, color="0.85", lw=0.6, zorder=1)
    for i in range(len(arms)):
        ax.scatter(np.full(len(persons), xs[i]), values[:, i], s=10, color="C0", zorder=2)
        med = np.nanmedian(values[:, i])
        ax.plot([xs[i] - 0.3, xs[i] + 0.3], [med, med], color="C3", lw=2, zorder=3)
    ax.axhline(0.5, color="k", ls="--", lw=0.8, label="chance (AUC 0.5)")
    ax.set_xticks(xs, arms, rotation=15, fontsize=8)
    ax.set_ylabel("per-person AUC")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# --- the whole evaluation -------------------------------------------------------------------------
def fold_groups(subjects: Sequence[int], folds: int) -> list[list[int]]:
    """Sorted ids dealt round-robin into ``folds`` groups (0: one per participant)."""
    ids = sorted(set(int(s) for s in subjects))
    if folds == 0:
        return [[s] for s in ids]
    if folds > len(ids):
        raise ConfigError(f"{folds} folds need at least {folds} participants; the data has {len(ids)}")
    return [ids[i::folds] for i in range(folds)]


def evaluate_real(root: Path, base_path: Path, shipped_path: Path | None, config: RealEvalConfig,
                  *, dataset_options: Mapping[str, Any] | None = None,
                  on_fold: Callable[[dict[str, Any]], None] | None = None,
                  final: Path | None = None) -> dict[str, Any]:
    """Run every arm over the folds; returns plain types (see the module docstring).

    Args:
        root: labelled recordings (see :mod:`emotionkd.training.datasets.recordings`).
        base_path: the distilled ``student.pt`` the fine-tuned arm starts from (and whose
            architecture and preprocessing the scratch arm shares).
        shipped_path: the ONNX model scored as shipped (None: no such arm).
        config: the options.
        dataset_options: ``label_target``, ``label_source``, ``gsr_unit`` for the loader.
        on_fold: called with each fold's result as it finishes.
        final: also fine-tune the arousal head on every participant with the same recipe
            (sampling, epochs, learning rate, seed) and write the student checkpoint here; its
            contract records the arousal head's provenance and the evaluation's per-person
            metrics, the other heads are kept with theirs.
    """
    from emotionkd.training.checkpoint import load_student_checkpoint
    from emotionkd.training.datasets.recordings import read_labelled_recordings
    from emotionkd.training.datasets.synth_files import run_jobs

    started_wall, started_cpu = time.perf_counter(), time.process_time()
    by_subject, meta = read_labelled_recordings(root, **dict(dataset_options or {}))
    recordings = [(sid, rec) for sid, recs in sorted(by_subject.items()) for rec in recs]
    decisions = decision_points(recordings, config)
    base = load_student_checkpoint(base_path)
    if "arousal" not in base.contract.targets:
        raise DataError(f"{base_path} has no arousal head to fine-tune")
    base_pre = base.contract.preprocessing_config()
    grid = tuple(config.baseline_tau_grid) or (base_pre.baseline_tau_s,)
    if (config.baseline_tau_grid or config.seed_from_rest) and base_pre.normalisation != "log_baseline":
        raise ConfigError(f"{base_path} reads {base_pre.normalisation} input: it has no causal baseline whose "
                          "time constant could be chosen (ekd-gsr v2 models only)")
    usable: npt.NDArray[np.bool_] = np.asarray(np.isfinite(decisions.features).all(axis=1))
    levels: dict[float, npt.NDArray[np.float64]] = {}
    seeds = rest_seeds_us(recordings, base_pre, config.rest_s) if config.seed_from_rest else None
    if seeds is not None:  # the seeding rest tells its own points they are rest: none of its points is scored
        usable &= ~inside_first_rest(recordings, decisions)
    for tau in grid:  # one streaming pass per candidate; only the input level is kept
        x, ok = model_inputs(recordings, decisions, replace(base_pre, baseline_tau_s=tau), config.hop_s, seeds)
        levels[tau] = input_level(x, base_pre.rate_hz)
        usable &= ok
    del x
    shipped_scores = None
    shipped_contract: dict[str, Any] | None = None
    if shipped_path is not None:
        from emotionkd.sdk.model import OnnxEmotionModel

        model = OnnxEmotionModel(shipped_path, threads=config.threads)
        shipped_contract = model.contract.to_dict()
        xs, oks = model_inputs(recordings, decisions, model.contract.preprocessing_config(), config.hop_s)
        usable &= oks
        shipped_scores = np.zeros(len(xs))
        rows = np.flatnonzero(oks)
        for i in range(0, rows.size, 256):  # batches: memory stays bounded (attention per window)
            shipped_scores[rows[i:i + 256]] = model.run(xs[rows[i:i + 256]])["arousal"][:, 1]
    decisions = decisions.subset(usable)
    levels = {tau: level[usable] for tau, level in levels.items()}
    if shipped_scores is not None:
        shipped_scores = shipped_scores[usable]
    groups = fold_groups(decisions.subject.tolist(), config.folds)
    subjects = sorted(set(decisions.subject.tolist()))
    choices = [choose_baseline_tau(levels, decisions, [s for s in subjects if s not in g]) for g in groups]
    final_choice = choose_baseline_tau(levels, decisions, subjects)
    by_tau: dict[float, dict[str, npt.NDArray[np.float32]]] = {}
    for tau, _ in [*choices, final_choice]:
        if tau not in by_tau:
            by_tau[tau] = _model_arm_inputs(recordings, decisions, replace(base_pre, baseline_tau_s=tau), config,
                                            seeds)
    jobs = [(run_fold, (i, g, decisions, by_tau[choices[i][0]], str(base_path), config))
            for i, g in enumerate(groups)]
    done = [0]

    def progress(count: int) -> None:
        done[0] += count
        if on_fold is not None:
            on_fold({"done": done[0], "folds": len(jobs)})

    results = run_jobs(jobs, config.workers, progress)
    per_person: dict[str, dict[int, dict[str, float]]] = {}
    for result in results:
        test_rows = np.flatnonzero(np.isin(decisions.subject, result["held"]))
        subj, y = decisions.subject[test_rows], decisions.label[test_rows]
        scores = {k: np.array(v) for k, v in result["scores"].items()}
        preds = {k: np.array(v, np.int64) for k, v in result["preds"].items()}
        if shipped_scores is not None:
            scores["shipped"] = shipped_scores[test_rows]
            preds["shipped"] = (scores["shipped"] >= 0.5).astype(np.int64)
        for arm in [a for a in ARMS if a in scores]:
            for sid in result["held"]:
                mine = subj == sid
                per_person.setdefault(arm, {})[int(sid)] = person_metrics(y[mine], scores[arm][mine], preds[arm][mine])
    per_person = {a: per_person[a] for a in ARMS if a in per_person}
    calibration = _calibration_summary(decisions, results, config)
    summary = summarise(per_person, config)
    # the contract says how the training streams began their baseline, so the SDK can ask for a rest
    final_pre = replace(base_pre, baseline_tau_s=final_choice[0],
                        baseline_seed="rest" if config.seed_from_rest else base_pre.baseline_seed)
    if final is not None:
        _write_final(final, base, base_path, meta, decisions, by_tau[final_choice[0]]["fine-tuned"], summary, groups,
                     config, final_pre, calibration)
    children_cpu = _children_cpu_s()
    return {
        "config": asdict(config),
        "data": {"root": str(root), "participants": len(set(decisions.subject.tolist())),
                 "decision_points": int(len(decisions.subject)), "high_rate": float(decisions.label.mean()),
                 "dropped_decision_points": int((~usable).sum()), "label_provenance": meta.get("label_provenance"),
                 "licence": meta.get("licence"), "skipped": meta.get("skipped")},
        "base": {"path": str(base_path), "method": base.contract.provenance.method,
                 "preprocessing": base_pre.to_params(), "parameters": base.contract.model.get("parameters")},
        "baseline_tau": {"grid": list(grid), "nested": bool(config.baseline_tau_grid),
                         "folds": [{"tau_s": tau, "training_median_level_auc": {str(k): v for k, v in t.items()}}
                                   for tau, t in choices],
                         "final": {"tau_s": final_choice[0],
                                   "median_level_auc": {str(k): v for k, v in final_choice[1].items()}},
                         "model_preprocessing": final_pre.to_params()},
        "shipped": None if shipped_path is None else {"path": str(shipped_path), "contract": shipped_contract},
        "folds": [sorted(g) for g in groups],
        "per_person": {a: {str(p): m for p, m in t.items()} for a, t in per_person.items()},
        "summary": summary,
        "final": None if final is None else str(final),
        "pooled_auc": _pooled_auc(decisions, results, shipped_scores),
        "calibration": calibration,
        "time": {"wall_s": time.perf_counter() - started_wall,
                 "cpu_s": time.process_time() - started_cpu + children_cpu,
                 "fold_cpu_s": [r["cpu_s"] for r in results]},
    }


def _write_final(path: Path, base: Any, base_path: Path, meta: Mapping[str, Any], decisions: Decisions,
                 x: npt.NDArray[np.float32], summary: Mapping[str, Any], groups: list[list[int]],
                 config: RealEvalConfig, preprocessing: PreprocessingConfig,
                 calibration: Mapping[str, Any] | None) -> None:
    from emotionkd.training.checkpoint import save_student_checkpoint
    from emotionkd.training.finetune import finetuned_checkpoint

    rng = np.random.default_rng(config.seed)
    sample = np.sort(rng.choice(len(x), size=min(config.train_windows, len(x)), replace=False))
    model = fit_arousal(x[sample], decisions.label[sample], base, config.finetune_lr, True, config, config.seed)
    row = summary["arms"]["fine-tuned"]
    metrics = {"auc_median_per_person": row["auc"]["median"], "auc_ci95_low": row["auc"]["median_ci95"][0],
               "auc_ci95_high": row["auc"]["median_ci95"][1], "accuracy_median": row["accuracy"]["median"],
               "macro_f1_median": row["macro_f1"]["median"], "chance_accuracy_median": row["chance_accuracy"]["median"],
               "participants": float(row["auc"]["persons"])}
    if calibration:  # personal calibration, measured on the streams after each first rest
        metrics |= {"auc_median_post_rest_cold": calibration["auc"]["cold_median"],
                    "auc_median_post_rest_seeded": calibration["auc"]["seeded_median"]}
    protocol = (f"{'leave-one-participant-out' if config.folds == 0 else f'{len(groups)}-fold grouped by participant'}"
                f" (emotionkd-train evaluate-real, seed {config.seed})")
    checkpoint = finetuned_checkpoint(
        base, {**meta, "data_kind": "recorded"}, {"arousal": model}, {"arousal": metrics}, protocol=protocol,
        subjects=len(set(decisions.subject.tolist())),
        notes=f"arousal head fine-tuned from {base_path.name} on every participant of {meta.get('dataset_name')}",
        train_config={"real_eval": asdict(config)}, preprocessing=preprocessing)
    save_student_checkpoint(checkpoint, path)


def _pooled_auc(decisions: Decisions, results: list[dict[str, Any]],
                shipped: npt.NDArray[np.float64] | None) -> dict[str, float]:
    """AUC over all held-out points pooled across persons (between-person level differences count)."""
    order = np.concatenate([np.flatnonzero(np.isin(decisions.subject, r["held"])) for r in results])
    out = {}
    for arm in results[0]["scores"]:
        if arm == "person-threshold":
            continue
        score = np.concatenate([np.array(r["scores"][arm]) for r in results])
        out[arm] = auc(decisions.label[order], score)
    if shipped is not None:
        out["shipped"] = auc(decisions.label[order], shipped[order])
    return out


def _calibration_summary(decisions: Decisions, results: list[dict[str, Any]],
                         config: RealEvalConfig) -> dict[str, Any] | None:
    """Per-person AUC and accuracy of the fine-tuned arm on streams that start after the first
    rest, baseline cold vs seeded from the rest; Wilcoxon on the paired AUC difference."""
    per: dict[str, dict[str, dict[str, float]]] = {"cold": {}, "seeded": {}}
    for result in results:
        cal = result.get("calibration")
        if not cal:
            continue
        rows = np.array(cal["rows"], np.int64)
        for name in ("cold", "seeded"):
            score = np.array(cal[name])
            for sid in result["held"]:
                mine = decisions.subject[rows] == sid
                if mine.any():
                    y = decisions.label[rows][mine]
                    per[name][str(sid)] = person_metrics(y, score[mine], (score[mine] >= 0.5).astype(np.int64))
    if not per["cold"]:
        return None
    persons = sorted(per["cold"], key=int)
    out: dict[str, Any] = {"rest_s": config.rest_s, "per_person": per}
    rng = np.random.default_rng(config.seed)
    for metric in ("auc", "accuracy", "macro_f1"):
        cold = np.array([per["cold"][p][metric] for p in persons])
        seeded = np.array([per["seeded"][p][metric] for p in persons])
        ok = np.isfinite(cold) & np.isfinite(seeded)
        out[metric] = {"cold_median": float(np.median(cold[ok])), "seeded_median": float(np.median(seeded[ok])),
                       **paired_difference(seeded, cold, rng, config.bootstrap)}
    return out


def _children_cpu_s() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return float(usage.ru_utime + usage.ru_stime)


def results_markdown(results: Mapping[str, Any]) -> str:
    """The per-arm table, the paired tests and the pooled AUCs as Markdown."""
    s = results["summary"]
    lines = ["| arm | median per-person AUC [95 % CI] | mean AUC | range | accuracy (chance) | "
             "macro-F1 (chance) | pooled AUC |", "|---|---|---|---|---|---|---|"]
    for arm, row in s["arms"].items():
        a = row["auc"]
        lines.append(
            f"| {arm} | {a['median']:.3f} [{a['median_ci95'][0]:.3f}, {a['median_ci95'][1]:.3f}] | {a['mean']:.3f} "
            f"| {a['min']:.2f}–{a['max']:.2f} | {row['accuracy']['median']:.3f} ({row['chance_accuracy']['median']:.3f}) "
            f"| {row['macro_f1']['median']:.3f} ({row['chance_macro_f1']['median']:.3f}) "
            f"| {results['pooled_auc'].get(arm, math.nan):.3f} |")
    lines += ["", "Chance: AUC 0.5; accuracy and macro-F1 of always answering the person's majority class.", "",
              "| paired (per-person AUC) | median difference [95 % CI] | mean difference | wins/losses | "
              "Wilcoxon p |", "|---|---|---|---|---|"]
    for name, t in s["paired_auc"].items():
        lines.append(f"| {name} | {t['median_difference']:+.3f} [{t['median_difference_ci95'][0]:+.3f}, "
                     f"{t['median_difference_ci95'][1]:+.3f}] | {t['mean_difference']:+.3f} | "
                     f"{t['wins']}/{t['losses']} | {t['wilcoxon_p']:.3g} |")
    cal = results.get("calibration")
    if cal:
        lines += ["", f"Personal calibration (fine-tuned arm; streams start after the first rest span; "
                      f"baseline seeded from its first {cal['rest_s']:g} s vs started cold):", "",
                  "| metric | cold (median) | seeded (median) | seeded − cold: median [95 % CI] | wins/losses | "
                  "Wilcoxon p |", "|---|---|---|---|---|---|"]
        for metric in ("auc", "accuracy", "macro_f1"):
            c = cal[metric]
            lines.append(f"| {metric} | {c['cold_median']:.3f} | {c['seeded_median']:.3f} | "
                         f"{c['median_difference']:+.3f} [{c['median_difference_ci95'][0]:+.3f}, "
                         f"{c['median_difference_ci95'][1]:+.3f}] | {c['wins']}/{c['losses']} | {c['wilcoxon_p']:.3g} |")
    return "\n".join(lines)


__all__ = ["ARMS", "Decisions", "RealEvalConfig", "auc", "calibration_inputs", "choose_baseline_tau", "decision_points",
           "evaluate_real", "fill_gaps", "fit_logistic", "fold_groups", "input_features", "input_level", "inside_first_rest", "macro_f1", "model_inputs",
           "paired_difference", "person_metrics", "plot", "raw_features", "rest_seeds_us", "results_markdown", "run_fold", "summarise"]
