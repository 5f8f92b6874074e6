"""How much the synthetic generator puts into GSR and EEG: linear baselines, leave-one-subject-out.

Prints, per target, the LOSO window accuracy of a logistic regression on

* GSR window features of the v2 input (32 s at 16 Hz, causal log-baseline; ``gsr-v2``),
* the same features of the paper input (4 s at 128 Hz, per-window z-score; ``gsr-paper``),
* EEG log band powers (theta, alpha, beta, gamma × 28 channels of the teacher's 4 s window),

beside the majority-class rate of the test subject (chance). The generator's target: GSR
clearly above chance on arousal but imperfect, EEG better on both targets.

    .venv/bin/python tests/benchmarks/synthetic_baselines.py --subjects 8 --trials 40 --trial-s 48

The subjects are generated in memory with the DEAP writer's own arrays
(:func:`deap_subject_arrays`) and windowed by the loaders' :func:`window_trial`, exactly as
``load_dataset("deap", ...)`` would after writing the files. Needs scikit-learn.
"""

from __future__ import annotations

import argparse

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneGroupOut
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from emotionkd.sdk.preprocessing import DEFAULT_PREPROCESSING, PAPER_PREPROCESSING
from emotionkd.training.datasets import DatasetConfig, SynthConfig
from emotionkd.training.datasets.channels import GENEVA_TO_28
from emotionkd.training.datasets.config import ratings_to_labels
from emotionkd.training.datasets.deap import DEAP_GSR_INDEX, DEAP_GSR_UNIT, DEAP_RATE_HZ
from emotionkd.training.datasets.synth_files import deap_subject_arrays
from emotionkd.training.datasets.trials import window_trial

BANDS_HZ = ((4, 8), (8, 13), (13, 30), (30, 45))


def gsr_features(x: npt.NDArray[np.float32], rate_hz: float) -> npt.NDArray[np.float64]:
    """(N, 8) hand-made features of GSR windows (N, W): level, slope, spread, SCR count/size."""
    x = x.astype(np.float64)
    n = x.shape[1]
    t = np.arange(n) / rate_hz
    slope = ((t - t.mean()) * (x - x.mean(1, keepdims=True))).sum(1) / ((t - t.mean()) ** 2).sum()
    d = np.diff(x, axis=1) * rate_hz
    rising = d > 0
    onsets = (rising[:, 1:] & ~rising[:, :-1]).sum(1)  # starts of rises: SCR count proxy
    tail = max(1, int(4 * rate_hz))
    return np.c_[x.mean(1), x[:, -tail:].mean(1), slope, x.std(1), np.ptp(x, axis=1),
                 onsets, np.clip(d, 0, None).sum(1) / rate_hz, d.max(1)]


def eeg_features(eeg: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """(N, 4·C) log band powers of EEG windows (N, C, E) at 128 Hz."""
    spectrum = np.abs(np.fft.rfft(eeg, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(eeg.shape[-1], 1 / 128)
    return np.concatenate([np.log(spectrum[..., (freqs >= lo) & (freqs < hi)].mean(-1) + 1e-12)
                           for lo, hi in BANDS_HZ], axis=1)


def build(args: argparse.Namespace, dataset: DatasetConfig) -> dict[str, npt.NDArray]:
    overrides = {k: float(v) for k, v in (item.split("=", 1) for item in args.set)}
    synth = SynthConfig(trial_s=args.trial_s, **overrides)  # type: ignore[arg-type]
    gsr, eeg, labels, subject = [], [], [], []
    baseline = int(round(dataset.deap_baseline_s * DEAP_RATE_HZ))
    for s in range(1, args.subjects + 1):
        data, deap_labels, _ = deap_subject_arrays(args.seed, s, args.trials, synth)
        ratings = deap_labels[:, [1, 0]]
        y = ratings_to_labels(ratings, dataset)
        for trial in range(args.trials):
            w = window_trial(data[trial, DEAP_GSR_INDEX, baseline:], DEAP_RATE_HZ, DEAP_GSR_UNIT,
                             data[trial, GENEVA_TO_28, baseline:], dataset)
            k = len(w.start_s)
            gsr.append(w.gsr)
            eeg.append(w.eeg)
            labels.append(np.repeat(y[trial][None], k, axis=0))
            subject.append(np.full(k, s))
    return {"gsr": np.concatenate(gsr), "eeg": np.concatenate(eeg), "labels": np.concatenate(labels),
            "subject": np.concatenate(subject)}


def loso_accuracy(x: npt.NDArray, y: npt.NDArray, groups: npt.NDArray) -> tuple[float, float]:
    """(mean over subjects of the window accuracy, mean majority-class rate of the test subject)."""
    acc, chance = [], []
    for train, test in LeaveOneGroupOut().split(x, y, groups):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        model.fit(x[train], y[train])
        acc.append(float((model.predict(x[test]) == y[test]).mean()))
        majority = int(y[train].mean() >= 0.5)
        chance.append(float((y[test] == majority).mean()))
    return float(np.mean(acc)), float(np.mean(chance))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--trial-s", type=float, default=48.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                        help="override a scalar SynthConfig knob, e.g. --set gsr_drive_noise=0.3")
    args = parser.parse_args()
    v2 = build(args, DatasetConfig(preprocessing=DEFAULT_PREPROCESSING))
    paper = build(args, DatasetConfig(preprocessing=PAPER_PREPROCESSING))
    rows = {
        "gsr-v2 (32 s, log baseline)": (gsr_features(v2["gsr"], DEFAULT_PREPROCESSING.rate_hz), v2),
        "gsr-paper (4 s, z-score)": (gsr_features(paper["gsr"], PAPER_PREPROCESSING.rate_hz), paper),
        "eeg band powers (4 s)": (eeg_features(v2["eeg"]), v2),
        "eeg + gsr-v2": (np.c_[eeg_features(v2["eeg"]), gsr_features(v2["gsr"], DEFAULT_PREPROCESSING.rate_hz)], v2),
    }
    print(f"LOSO logistic regression, {args.subjects} subjects x {args.trials} trials x {args.trial_s:g} s, "
          f"seed {args.seed}; v2 windows: {len(v2['gsr'])}, paper windows: {len(paper['gsr'])}")
    print(f"{'features':32s} {'arousal':>9s} {'chance':>7s} {'valence':>9s} {'chance':>7s}")
    for name, (x, d) in rows.items():
        cells = []
        for k in range(2):
            acc, chance = loso_accuracy(x, d["labels"][:, k], d["subject"])
            cells += [f"{100 * acc:8.1f}%", f"{100 * chance:6.1f}%"]
        print(f"{name:32s} {' '.join(cells)}")


if __name__ == "__main__":
    main()
