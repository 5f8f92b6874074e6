"""One typed configuration per experiment: a tree of frozen dataclasses.

Read from TOML or JSON (``[teacher_optim] lr = 1e-4``), refined by presets and command-line
overrides (``--set teacher_optim.lr=1e-4``), validated on construction, and written next to
every result as ``config.json`` so a run can be repeated exactly.

Presets (``preset = "..."`` in the file or ``--preset``) are partial trees applied before the
file's own values:

* ``tuned`` (default): settings that train on our data in minutes on a CPU (warm-up + cosine
  lr, class-balanced CE, best validation epoch kept, KD matching ``projection``, KL 0.1, T = 1:
  chosen by ``emotionkd-train kd-sweep``, docs/results.md "KD choice");
* ``paper``: the authors' optimiser settings (teacher lr 5e-5, student lr 1e-6, 100 epochs,
  constant lr, unweighted CE, last epoch kept, KD matching ``gsr_half``) and their input
  (``data.preprocessing = "paper"``: 4 s of GSR at 128 Hz, per-window z-score);
* ``pipeline``: a small synthetic set and few epochs, for ``make pipeline`` (~3 minutes);
* ``experiment``: the LOSO experiment of docs/results.md (``make results``), sized for <= 60 min
  on a 2-core machine (8 subjects x 40 trials, 2 fold processes x 1 thread);
* ``compact``: ``tuned`` with the compact student for the edge
  (:data:`~emotionkd.training.models.COMPACT_STUDENT_OPTIONS`: 2 heads × 32, one block; see
  docs/performance.md); with another preset's sizes: ``--set student.heads=2`` etc.
"""

from __future__ import annotations

import json
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Final

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.sdk.contract import LABEL_RULE_WORDS, TARGETS
from emotionkd.sdk.plain import to_plain
from emotionkd.sdk.preprocessing import DEFAULT_PREPROCESSING, PAPER_PREPROCESSING
from emotionkd.training.datasets.config import EEG_NORMALISATIONS, EEG_RATE_HZ, DatasetConfig
from emotionkd.training.datasets.synthetic import SynthConfig
from emotionkd.training.distillation import DistillConfig
from emotionkd.training.feedback import FeedbackConfig
from emotionkd.training.models import COMPACT_STUDENT_OPTIONS, StudentConfig, TeacherConfig

PROTOCOLS: Final = ("loso", "kfold")
DEVICES: Final = ("cpu", "cuda")
METHODS: Final = ("teacher", "student", "kd", "kd+feedback")
DATA_SOURCES: Final = ("synthetic", "deap", "mahnob", "recordings", "prepared")
#: ``data.preprocessing`` names → the GSR preprocessing of the student's input
DATA_PREPROCESSING: Final = {"v2": DEFAULT_PREPROCESSING, "paper": PAPER_PREPROCESSING}
SCHEDULES: Final = ("cosine", "constant")
CLASS_WEIGHTINGS: Final = ("balanced", "none")
SELECTIONS: Final = ("loss", "balanced_accuracy", "last")


@dataclass(frozen=True)
class DataConfig:
    """Where the windows come from (prepared by :func:`emotionkd.training.datasets.load_dataset`).

    Attributes:
        source: ``synthetic`` (DEAP-format files generated into ``path`` when absent, then read
            like DEAP), ``deap``, ``mahnob``, ``recordings`` (labelled GSR only) or ``prepared``
            (an ``.npz`` written by ``emotionkd-train prepare --out``).
        path: dataset folder, prepared file, or where synthetic files are written.
        subjects / trials / trial_s / seed: synthetic set size (trial seconds after the 3 s
            baseline) and generator seed.
        gsr_drive_noise: synthetic: the generator's trial-to-trial GSR drive noise
            (:attr:`~emotionkd.training.datasets.SynthConfig.gsr_drive_noise`), which sets how
            much arousal any GSR-only model can recover
            (:func:`~emotionkd.training.datasets.synthetic.gsr_arousal_ceiling`).
        label_threshold / label_rule: ratings → labels (``gt``: rating > threshold is high).
        preprocessing: the student's GSR input: ``v2`` (``ekd-gsr`` v2, 32 s at 16 Hz, causal
            log-conductance baseline) or ``paper`` (v1, 4 s at 128 Hz, per-window z-score).
        hop_s: seconds between training windows (4 s).
        hop_samples: samples between training windows at the model rate (0 = use ``hop_s``).
        eeg_window_s: the teacher's EEG window, aligned to the end of the GSR window (s).
        eeg_rate_hz: the teacher's EEG rate (Hz; 128 or 128 / k, decimated before windowing:
            :attr:`~emotionkd.training.datasets.DatasetConfig.eeg_rate_hz`). The teacher's
            ``window_samples`` must equal ``eeg_window_s × eeg_rate_hz``.
        eeg_normalisation: the teacher's EEG scaling
            (:attr:`~emotionkd.training.datasets.DatasetConfig.eeg_normalisation`).
        cache_dir: prepared-dataset cache ("" = none).
        workers: processes preparing subjects.
        only_subjects: recordings/deap/mahnob: load only these subject ids (empty = all).
        label_target: recordings: the target a plain ``label`` column labels.
        label_source: recordings: where the labels come from, in words (goes into the model
            card), e.g. "binary stress label: stress task = high arousal".
    """

    source: str = "synthetic"
    path: str = "data/synthetic-v2"
    subjects: int = 8
    trials: int = 40
    trial_s: float = 60.0
    seed: int = 0
    gsr_drive_noise: float = SynthConfig.gsr_drive_noise
    label_threshold: float = 5.0
    label_rule: str = "gt"
    preprocessing: str = "v2"
    hop_s: float = 4.0
    hop_samples: int = 0
    eeg_window_s: float = 4.0
    eeg_rate_hz: float = EEG_RATE_HZ
    eeg_normalisation: str = "window_zscore"
    cache_dir: str = ".cache/datasets"
    workers: int = 2
    only_subjects: tuple[int, ...] = ()
    label_target: str = "arousal"
    label_source: str = ""

    def __post_init__(self) -> None:
        if self.label_target not in TARGETS:
            raise ConfigError(f"data.label_target must be one of {TARGETS}, got {self.label_target!r}")
        if self.source not in DATA_SOURCES:
            raise ConfigError(f"data.source must be one of {DATA_SOURCES}, got {self.source!r}")
        if self.label_rule not in LABEL_RULE_WORDS:
            raise ConfigError(f"data.label_rule must be one of {list(LABEL_RULE_WORDS)}, got {self.label_rule!r}")
        if self.subjects < 1 or self.trials < 1 or not self.trial_s > 0 or self.hop_samples < 0 or self.workers < 1:
            raise ConfigError("data.subjects, trials and workers must be >= 1, trial_s positive, hop_samples >= 0")
        if self.eeg_normalisation not in EEG_NORMALISATIONS:
            raise ConfigError(f"data.eeg_normalisation must be one of {EEG_NORMALISATIONS}, got {self.eeg_normalisation!r}")
        if self.preprocessing not in DATA_PREPROCESSING:
            raise ConfigError(f"data.preprocessing must be one of {tuple(DATA_PREPROCESSING)}, got {self.preprocessing!r}")
        if not (math.isfinite(self.gsr_drive_noise) and self.gsr_drive_noise >= 0):
            raise ConfigError(f"data.gsr_drive_noise must be >= 0, got {self.gsr_drive_noise!r}")
        if not (math.isfinite(self.hop_s) and self.hop_s > 0 and math.isfinite(self.eeg_window_s) and self.eeg_window_s > 0):
            raise ConfigError("data.hop_s and data.eeg_window_s must be positive seconds")

    def dataset_config(self) -> DatasetConfig:
        """The dataset options these settings mean (what :func:`load_dataset` is given)."""
        return DatasetConfig(
            preprocessing=DATA_PREPROCESSING[self.preprocessing],
            hop_s=self.hop_s,
            hop_samples=self.hop_samples or None,
            eeg_window_s=self.eeg_window_s,
            eeg_rate_hz=self.eeg_rate_hz,
            eeg_normalisation=self.eeg_normalisation,
            label_threshold=self.label_threshold,
            label_rule=self.label_rule,
        )


@dataclass(frozen=True)
class OptimConfig:
    """Adam settings and epochs of one model (authors: β 0.9/0.999, eps 1e-7).

    Attributes:
        lr: learning rate.
        epochs: passes over the training windows.
        batch_size: windows per step (per process under torchrun).
        beta1 / beta2 / eps: Adam.
        grad_clip: clip the global gradient norm to this (0 = off).
        schedule: ``cosine`` (linear warm-up over ``warmup_fraction`` of all steps, then cosine
            decay to 0) or ``constant`` (the authors' fixed lr).
        warmup_fraction: share of the steps spent warming up (cosine only).
        class_weighting: ``balanced`` (cross-entropy weighted n / (2·n_class) from the training
            labels, so a constant answer no longer minimises the loss) or ``none``.
        patience: stop after this many epochs without a better validation score (0 = run all
            epochs). Without a validation split (``evaluation.validation_fraction`` 0) the last
            epoch is kept; with one, the best epoch's weights are.
        select_by: what "best" means: ``loss`` (class-weighted validation cross-entropy) or
            ``balanced_accuracy`` (the latest of equally accurate epochs). Cross-entropy on one
            unseen validation subject can prefer the constant plateau model (CE ln 2) to a
            trained but over-confident one, which then answers one class on the test subject
            (docs/results.md, "Recipe choice"). ``last`` keeps the last epoch (validation
            scores are still computed and recorded): under a cosine schedule that decays to 0
            the last epochs no longer oscillate, while an epoch picked by a few hundred
            validation windows can be a mid-training swing (docs/recipe-choice.md, part 9).
        plateau_restarts: the teacher only: train again from a fresh initialisation (seed + k
            for the k-th restart), at most this many times, while the last epoch's training
            cross-entropy is still at least
            :data:`~emotionkd.training.trainer.PLATEAU_SHARE` of a constant answer's, i.e.
            the run never left the majority plateau. Decided on the training split alone;
            the first run that left it is kept (if none did, the one with the lowest training
            cross-entropy). 0 = off.
    """

    lr: float = 1e-3
    epochs: int = 10
    batch_size: int = 32
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-7
    grad_clip: float = 0.0
    schedule: str = "cosine"
    warmup_fraction: float = 0.1
    class_weighting: str = "balanced"
    patience: int = 0
    select_by: str = "loss"
    plateau_restarts: int = 0

    def __post_init__(self) -> None:
        if self.plateau_restarts < 0:
            raise ConfigError(f"plateau_restarts must be >= 0, got {self.plateau_restarts!r}")
        if self.select_by not in SELECTIONS:
            raise ConfigError(f"select_by must be one of {SELECTIONS}, got {self.select_by!r}")
        if self.select_by == "last" and self.patience:
            raise ConfigError(f"select_by 'last' keeps the last epoch, so patience must be 0, got {self.patience!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"learning rate must be positive, got {self.lr!r}")
        if self.epochs < 0 or self.batch_size < 2:
            raise ConfigError(f"epochs must be >= 0 and batch_size >= 2, got {self.epochs}, {self.batch_size}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.eps > 0 and self.grad_clip >= 0):
            raise ConfigError("Adam betas must be in [0, 1), eps positive, grad_clip >= 0")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ConfigError(f"class_weighting must be one of {CLASS_WEIGHTINGS}, got {self.class_weighting!r}")
        if not 0.0 <= self.warmup_fraction < 1.0 or self.patience < 0:
            raise ConfigError("warmup_fraction must be in [0, 1) and patience >= 0")


@dataclass(frozen=True)
class EvaluationConfig:
    """How metrics are obtained.

    Attributes:
        protocol: ``loso`` (leave one subject out) or ``kfold`` (trial-wise, per subject).
        folds: k of k-fold.
        max_folds: run only the first n folds (0 = all), for quick looks.
        methods: which of teacher, student, kd, kd+feedback ``evaluate`` compares.
        holdout_subjects: subjects ``distill``/``student`` keep out of training to measure the
            model they write (0 = train on all, no metrics).
        holdout_ids: these subject ids are held out instead of ``holdout_subjects`` random ones.
        validation_fraction: share of the *training* split held out to choose the best epoch
            (and stop early): whole subjects when the training split has >= 3 subjects, else
            whole trials of its one or two subjects. The test subject is never used. 0 = off.
        fold_workers: LOSO/k-fold folds run in this many processes at once (each with
            ``threads`` torch threads); 1 = one after another.
    """

    protocol: str = "loso"
    folds: int = 10
    max_folds: int = 0
    methods: tuple[str, ...] = METHODS
    holdout_subjects: int = 1
    holdout_ids: tuple[int, ...] = ()
    validation_fraction: float = 0.15
    fold_workers: int = 1

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"evaluation.protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ConfigError(f"evaluation.methods must be a non-empty subset of {METHODS}, got {self.methods!r}")
        if self.folds < 2 or self.max_folds < 0 or self.holdout_subjects < 0:
            raise ConfigError("evaluation.folds must be >= 2, max_folds and holdout_subjects >= 0")
        if not 0.0 <= self.validation_fraction < 1.0 or self.fold_workers < 1:
            raise ConfigError("evaluation.validation_fraction must be in [0, 1), fold_workers >= 1")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one run of ``emotionkd-train`` needs.

    Attributes:
        name: experiment name (output sub-folder).
        seed: seed of model initialisation, shuffling and splits.
        device: ``cpu`` or ``cuda``.
        targets: which tasks to train (``arousal``, ``valence``).
        output_dir: where checkpoints, results and plots go.
        progress: show tqdm progress bars.
        threads: torch CPU threads per process (0 = automatic: half the CPUs this process may
            use, divided among torchrun's local processes, at least 1 — on a busy 2-core machine
            torch's own default made one fold 10x slower than 1 thread).
    """

    name: str = "emotionkd"
    seed: int = 0
    device: str = "cpu"
    targets: tuple[str, ...] = TARGETS
    output_dir: str = "runs"
    progress: bool = True
    threads: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=lambda: TeacherConfig(batch_norm_momentum=0.1))
    student: StudentConfig = field(default_factory=lambda: StudentConfig(batch_norm_momentum=0.1))
    teacher_optim: OptimConfig = field(default_factory=OptimConfig)
    student_optim: OptimConfig = field(default_factory=OptimConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.threads < 0:
            raise ConfigError(f"threads must be >= 0, got {self.threads}")
        bad = [t for t in self.targets if t not in TARGETS]
        if bad or not self.targets:
            raise ConfigError(f"targets must be a non-empty subset of {TARGETS}, got {self.targets!r}")
        if self.student_optim.plateau_restarts:
            raise ConfigError("student_optim.plateau_restarts is not used: only the teacher restarts "
                              "on a plateau; set teacher_optim.plateau_restarts instead")
        shared = ("window_samples", "kernel_samples", "stride_samples", "filters")
        mismatch = [n for n in shared if getattr(self.teacher, n) != getattr(self.student, n)]
        if mismatch:
            raise ConfigError(f"teacher and student must agree on {mismatch} for distillation")

    def to_dict(self) -> dict[str, Any]:
        return to_plain(asdict(self), what="configuration values", error=ConfigError)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        return _build(cls, data, "")

    def with_overrides(self, overrides: Mapping[str, Any]) -> ExperimentConfig:
        """A copy with dotted-key overrides applied (``{"teacher_optim.lr": 1e-4}``)."""
        tree = self.to_dict()
        for key, value in overrides.items():
            _set_dotted(tree, key, value)
        return ExperimentConfig.from_dict(tree)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name


# --- presets -----------------------------------------------------------------------------------
#: the KD settings chosen by the sweep (docs/results.md "KD choice"); also DistillConfig's defaults
CHOSEN_DISTILL: Final = {"matching": "projection", "kl_weight": 0.1, "temperature": 1.0}

PRESETS: Final[dict[str, dict[str, Any]]] = {
    "tuned": {"distill": CHOSEN_DISTILL},
    "paper": {
        "data": {"preprocessing": "paper"},
        "teacher_optim": {"lr": 5e-5, "epochs": 100, "batch_size": 128, "schedule": "constant",
                          "class_weighting": "none"},
        "student_optim": {"lr": 1e-6, "epochs": 100, "batch_size": 128, "schedule": "constant",
                          "class_weighting": "none"},
        "distill": {"matching": "gsr_half", "kl_weight": 0.1, "temperature": 1.0},
        "evaluation": {"validation_fraction": 0.0},
        "feedback": {"teacher_lr": 5e-5},
        "teacher": {"batch_norm_momentum": 0.01},
        "student": {"batch_norm_momentum": 0.01},
    },
    "pipeline": {
        "name": "pipeline",
        "data": {"subjects": 4, "trials": 12, "trial_s": 36.0, "path": "data/synthetic-pipeline-v2"},
        "teacher_optim": {"epochs": 4},
        "student_optim": {"epochs": 4},
        "feedback": {"period": 2},
    },
    # Sized for <= 60 min on 2 cores, by CPU time measured on the shared machine: 2 fold processes x
    # 1 torch thread (the teacher trained at 64.9 windows/s with 1 thread, 6.5 with torch's default
    # 2: OpenMP threads spin against other jobs). docs/results.md "Recipe choice" has the numbers
    # behind each setting:
    # * data: 60 s trials (DEAP's length), windows ending at 32, 46 and 60 s (hop 14 s): 3 per
    #   trial, 960 in all, later in the trial than 40 s trials gave (the GSR drive has built up);
    #   GSR drive noise 0.15: at the generator's default 0.3 no GSR-only model can exceed 68.6 %
    #   on arousal (gsr_arousal_ceiling) and the GSR logistic regression already reached it, so
    #   "student vs baseline" could not tell anything apart; at 0.15 the ceiling is 79.8 %.
    # * teacher: ~500 Adam steps to leave the majority plateau (batch 16: at epoch 10-11 of 16) ->
    #   batch 8 x 10 epochs (~900 steps) for 10/16 of the CPU time of batch 16 x 16 epochs.
    # * teacher lr 2e-3 (was 1e-3): the quick look of docs/recipe-choice.md part 4 (teacher alone,
    #   arousal, all 8 LOSO folds), chosen by the rule fixed before looking, the highest mean
    #   validation balanced accuracy of the kept epoch: 82.3 % against 81.4 (1e-3) and 80.8 (5e-4);
    #   within the fold spread (paired +0.9), held-out 80.9 against 80.7 and 82.8 (not chosen by).
    # * (until part 9) model selection by validation *balanced accuracy*: validation cross-entropy on the one
    #   held-out training subject rose while held-out accuracy held (over-confidence) and kept
    #   epochs 1-3 of 20; on 2 of 8 folds per target it kept a constant teacher.
    # * teacher EEG: ``subject_channel`` (per-channel scale from the subject's whole recording)
    #   instead of a per-window, per-channel z-score, which erases left/right power differences
    #   (the generator's valence cue): first 2 folds, teacher alone, valence 88.3 % held-out /
    #   96.7 % training against 76.7 / 89.1 % (arousal 79.2 / 84.5 against 78.8 / 79.9).
    # * student: the compact student (6x cheaper per window: 20 epochs cost 24 s CPU per fold
    #   and target against 138 s for the faithful one), 12 epochs instead of 6.
    # * validation on 2 of the 7 training subjects (validation_fraction 0.3; was 0.15 = 1
    #   subject): decided before the run that uses it, on part 4's evidence that one validation
    #   subject ranked the teacher variants unlike the test subjects (docs/recipe-choice.md
    #   part 5); the cost is one training subject fewer for every model.
    # * teacher 12 epochs (was 10): with 5 fit subjects an epoch is 75 steps, not 90, and the
    #   part 5 run's valence teacher stayed at training CE ln 2 through all 750 steps on 2 folds
    #   (seen on the training split); 12 x 75 = 900 restores the step budget sized above.
    # * teacher plateau restarts (up to 2): with 12 epochs the valence teacher still ended at
    #   training CE ln 2 on 2 folds (other ones than at 10 epochs): leaving the plateau is
    #   luck of the initialisation, so a stuck run is retrained from the next seed (part 7).
    # * every model keeps its last epoch (select_by "last"; the validation split is still scored
    #   and recorded): on a development draw (generator seed 1, never the evaluation subjects),
    #   the epoch picked by 2 validation subjects was often a mid-training swing, and the last
    #   epoch of the cosine schedule scored higher on held-out subjects: teacher 87.0 against
    #   84.8 %, student 73.0 against 72.3 % (arousal, 8 folds; docs/recipe-choice.md part 9).
    # * every model reads its fused feature through the pooled readout (readout "pool": per filter
    #   the mean and maximum over each modality's tokens, not the authors' position-by-position
    #   flatten), chosen on the development draw: student 74.8 +- 0.4 against 72.6 +- 0.5 % over
    #   5 seeds, teacher arousal 89.2 against 86.9 %, valence 86.7 against 85.8 %
    #   (docs/recipe-choice.md part 10).
    # Feedback every 16th step: a feedback step costs ~12x a cached KD step (train_speed.py).
    # With 16 teacher epochs, 20 student epochs and feedback every 8th step the full run used
    # 12.7 CPU-min in 14 min without finishing its first fold on the shared machine (~100
    # CPU-min projected): these sizes are ~55.
    "experiment": {
        "name": "loso-synthetic",
        "threads": 1,
        "data": {"subjects": 8, "trials": 40, "trial_s": 60.0, "hop_s": 14.0, "gsr_drive_noise": 0.15,
                 "path": "data/synthetic-experiment-60s-drive015", "eeg_normalisation": "subject_channel"},
        "teacher": {"readout": "pool"},
        "student": {**COMPACT_STUDENT_OPTIONS, "readout": "pool"},
        "teacher_optim": {"lr": 2e-3, "epochs": 12, "batch_size": 8, "schedule": "cosine", "warmup_fraction": 0.1,
                          "class_weighting": "balanced", "patience": 0, "select_by": "last",
                          "plateau_restarts": 2},
        "student_optim": {"epochs": 12, "batch_size": 32, "schedule": "cosine", "warmup_fraction": 0.1,
                          "class_weighting": "balanced", "patience": 0, "select_by": "last"},
        "distill": CHOSEN_DISTILL,
        "feedback": {"period": 16},
        "evaluation": {"protocol": "loso", "validation_fraction": 0.3, "fold_workers": 2},
    },
    "compact": {"name": "compact", "student": dict(COMPACT_STUDENT_OPTIONS)},
}


def load_config(
    path: str | Path | None = None,
    *,
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ExperimentConfig:
    """Preset (from the argument, else the file's ``preset`` key, else ``tuned``), then the
    file's values, then ``overrides`` (dotted keys); validated."""
    tree: dict[str, Any] = {}
    if path is not None:
        tree = read_config_file(Path(path))
    name = preset or tree.pop("preset", None) or "tuned"
    tree.pop("preset", None)
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    merged = _merge(ExperimentConfig().to_dict(), PRESETS[name])
    merged = _merge(merged, tree)
    config = ExperimentConfig.from_dict(merged)
    return config.with_overrides(overrides or {})


def read_config_file(path: Path) -> dict[str, Any]:
    """A TOML (``.toml``) or JSON (``.json``) experiment file as a nested dict."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        if path.suffix == ".toml":
            return tomllib.loads(path.read_text(encoding="utf-8"))
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: the top level must be an object")
            return data
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot parse config file {path}: {exc}") from exc
    raise ConfigError(f"config file {path} must end in .toml or .json")


def parse_override(text: str) -> tuple[str, Any]:
    """``"teacher_optim.lr=1e-4"`` → ``("teacher_optim.lr", 1e-4)``; values parse as TOML,
    falling back to a bare string (``device=cuda``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like section.key=value")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip(), value


def save_config(config: ExperimentConfig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


# --- helpers -----------------------------------------------------------------------------------
def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    node = tree
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a config section")
        node = node[part]
    if parts[-1] not in node:
        raise ConfigError(f"override {key!r}: unknown option {parts[-1]!r}; known: {sorted(node)}")
    node[parts[-1]] = value


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"config section {where or 'top level'} must be a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown} in {where or 'the top level'}; known: {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value, hint = data[f.name], hints[f.name]
        name = f"{where}.{f.name}" if where else f.name
        if is_dataclass(hint):
            kwargs[f.name] = _build(hint, value, name)  # type: ignore[arg-type]
        else:
            kwargs[f.name] = _coerce(value, hint, name)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where or 'config'}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {where or 'config'}: {exc}") from exc


def _coerce(value: Any, hint: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin in (types.UnionType, typing.Union):
        return value
    wrong_type = hint in (int, float, str, bool) and not isinstance(value, hint)
    if wrong_type or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{name} must be {hint.__name__}, got {value!r}")
    return value


__all__ = [
    "METHODS",
    "PRESETS",
    "PROTOCOLS",
    "DataConfig",
    "EvaluationConfig",
    "ExperimentConfig",
    "OptimConfig",
    "load_config",
    "parse_override",
    "read_config_file",
    "save_config",
]
