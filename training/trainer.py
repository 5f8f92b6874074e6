"""Training loops: teacher, GSR-only student, KD, and KD + adaptive feedback.

All four share one epoch loop (:class:`_Loop`): per-epoch shuffles seeded by (seed, epoch) so a
resumed run sees the same batches, data-parallel sharding under ``torchrun``, tqdm progress,
a resumable state file written after each epoch, a learning-rate schedule (linear warm-up +
cosine, or constant), class-weighted cross-entropy, and model selection: with a validation set
(carved from the *training* subjects by the caller, never the test subject) the epoch with the
lowest validation cross-entropy is kept and training stops after ``patience`` epochs without
improvement; without one, the last epoch is kept. An optional evaluation set (the test fold) is
scored after each epoch for training curves only, never used to pick a model.

Data parallelism: under ``torchrun`` (``WORLD_SIZE`` > 1) each process takes every
``world``-th window of the epoch's permutation and gradients are averaged with one all-reduce
per step (:class:`Parallel`), BatchNorm statistics averaged after each epoch. This is what
``DistributedDataParallel`` does, written out so that the functional second-order feedback
step works the same on one process or many.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.training.checkpoint import load_training_state, save_training_state
from emotionkd.training.distillation import (
    DistillConfig,
    FeatureMatcher,
    TeacherOutputs,
    cache_teacher_outputs,
    distillation_loss,
)
from emotionkd.training.feedback import FeedbackConfig, feedback_step
from emotionkd.training.models import (
    EmotionNetStudent,
    EmotionNetTeacher,
    StudentConfig,
    TeacherConfig,
    l2_penalty,
)
from emotionkd.training.windowed import TARGETS, WindowedDataset

logger = logging.getLogger(__name__)

#: a training cross-entropy at or above this share of a constant answer's (ln 2 under balanced
#: class weights) means the run is still on the majority plateau (``plateau_restarts``): the
#: experiment's teachers ended at 0.99 of it when stuck and at <= 0.46 when not.
PLATEAU_SHARE: Final = 0.9


# --- data parallel runtime -------------------------------------------------------------------
@dataclass
class Parallel:
    """Process group facts and the two collectives training needs.

    Attributes:
        rank / world_size: this process and how many there are (1 without torchrun).
        device: where tensors live.
    """

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: str = "cpu") -> Parallel:
        """Join the process group ``torchrun`` describes (gloo on CPU, NCCL on CUDA), if any."""
        if device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device 'cuda' requested but no CUDA device is available; use --device cpu")
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        dev = torch.device(f"cuda:{local}" if device == "cuda" else "cpu")
        if device == "cuda":
            torch.cuda.set_device(dev)
        if world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if device == "cuda" else "gloo")
        return cls(rank=rank, world_size=world, device=dev)

    def sync_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Average gradients over processes (one flat all-reduce)."""
        if self.world_size == 1:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def sync_module(self, module: nn.Module, *, average: bool) -> None:
        """Make a module identical everywhere: broadcast from rank 0 (start) or average float
        buffers such as BatchNorm statistics (end of epoch)."""
        if self.world_size == 1:
            return
        with torch.no_grad():
            if not average:
                for tensor in list(module.parameters()) + list(module.buffers()):
                    torch.distributed.broadcast(tensor, 0)
                return
            for buf in module.buffers():
                if buf.is_floating_point():
                    torch.distributed.all_reduce(buf)
                    buf /= self.world_size

    def mean(self, value: float) -> float:
        """``value`` averaged over processes, so every rank takes the same decision from it."""
        if self.world_size == 1:
            return value
        total = torch.tensor([value], dtype=torch.float64)
        torch.distributed.all_reduce(total)
        return float(total.item()) / self.world_size

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()


# --- data ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorSet:
    """One target's windows as tensors: eeg (N, C, W) or None, gsr (N, W), labels (N,)."""

    eeg: Tensor | None
    gsr: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return int(self.gsr.shape[0])

    @classmethod
    def from_dataset(cls, data: WindowedDataset, target: str, *, need_eeg: bool) -> TensorSet:
        if target not in TARGETS:
            raise ConfigError(f"unknown target {target!r}; use one of {TARGETS}")
        if len(data) == 0:
            raise DataError("no windows to train or evaluate on")
        if need_eeg and data.eeg is None:
            raise DataError("this step needs EEG (teacher) but the dataset is GSR-only; "
                            "use a DEAP/MAHNOB/synthetic dataset or train the GSR-only student")
        if not (np.isfinite(data.gsr).all() and (data.eeg is None or np.isfinite(data.eeg).all())):
            raise DataError("windows contain NaN or infinite values; re-prepare the dataset")
        if (data.labels[:, TARGETS.index(target)] < 0).any():
            raise DataError(f"the data has no {target} labels (it labels {data.meta.get('targets')}); "
                            f"train only those, e.g. --set targets={data.meta.get('targets')}")
        eeg = torch.from_numpy(np.ascontiguousarray(data.eeg)) if need_eeg and data.eeg is not None else None
        return cls(eeg=eeg, gsr=torch.from_numpy(np.ascontiguousarray(data.gsr)),
                   labels=torch.from_numpy(data.labels[:, TARGETS.index(target)].astype(np.int64)))


# --- metrics used for training curves ---------------------------------------------------------
@torch.no_grad()
def predict_proba(model: nn.Module, data: TensorSet, device: torch.device | str = "cpu",
                  batch_size: int = 256) -> npt.NDArray[np.float32]:
    """Softmax probabilities (N, 2) in eval mode (teacher: EEG + GSR; student: GSR)."""
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(data), batch_size):
            gsr = data.gsr[start:start + batch_size].to(device)
            if isinstance(model, EmotionNetTeacher):
                assert data.eeg is not None
                logits = model(data.eeg[start:start + batch_size].to(device), gsr)
            else:
                logits = model(gsr)
            out.append(torch.softmax(logits, 1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()


def accuracy(probabilities: npt.NDArray[np.float32], labels: Tensor | npt.NDArray[np.int64]) -> float:
    return float((probabilities.argmax(1) == np.asarray(labels)).mean())


# --- the epoch loop --------------------------------------------------------------------------
@dataclass
class TrainResult:
    """A trained model, its per-epoch history, and (feedback) the teacher as it ended."""

    model: nn.Module
    history: list[dict[str, float]]
    teacher: EmotionNetTeacher | None = None


StepFn = Callable[[Tensor, int], dict[str, float]]


def lr_factor(step: int, total_steps: int, schedule: str, warmup_fraction: float) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based) of ``total_steps``.

    ``cosine``: linear warm-up from 1/warm-up to 1 over the first ``warmup_fraction`` of the
    steps, then half a cosine down to 0 at the last step; ``constant``: 1.
    """
    if schedule == "constant" or total_steps <= 1:
        return 1.0
    warmup = int(warmup_fraction * total_steps)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def class_weights(labels: Tensor, mode: str) -> Tensor | None:
    """``balanced``: (2,) weights n / (2·n_c) of the training labels (absent class: 0); ``none``: None."""
    if mode == "none":
        return None
    counts = torch.bincount(labels, minlength=2).double()
    weights = torch.where(counts > 0, counts.sum() / (2 * counts.clamp(min=1)), torch.zeros_like(counts))
    return weights.float()


@dataclass(frozen=True)
class Selection:
    """Model selection: which module is judged, its validation scores (``val_loss``,
    ``val_balanced_accuracy``), which of them picks the epoch (``select_by``: ``loss``, lower is
    better, ``balanced_accuracy``, higher is better, the latest of equal epochs kept, or
    ``last``: every epoch replaces the one before, the scores are only recorded) and how long to
    wait for an improvement (``patience`` epochs, 0 = never stop early)."""

    module: str
    score: Callable[[], dict[str, float]]
    patience: int = 0
    select_by: str = "loss"

    def criterion(self, scores: Mapping[str, float]) -> float:
        """Lower is better (``last``: the validation balanced accuracy, for the log only)."""
        return scores["val_loss"] if self.select_by == "loss" else -scores["val_balanced_accuracy"]

    def improves(self, criterion: float, best: float) -> bool:
        if self.select_by == "last":
            return True
        # accuracy ties are common on a few hundred windows: keep the later, longer-trained epoch
        return criterion < best if self.select_by == "loss" else criterion <= best


class _Loop:
    """Runs ``epochs`` epochs of ``step(batch_indices, step_number)`` with shuffling, sharding,
    a learning-rate schedule, progress, resumable state, per-epoch evaluation and model
    selection (the best validation epoch's weights are restored at the end)."""

    def __init__(self, *, n: int, epochs: int, batch_size: int, seed: int, parallel: Parallel,
                 modules: Mapping[str, nn.Module], optimizers: Mapping[str, torch.optim.Optimizer],
                 desc: str, progress: bool, state_path: Path | None,
                 evaluate: Callable[[], dict[str, float]] | None, fingerprint: Mapping[str, Any],
                 optim: Any = None, scheduled: tuple[str, ...] = (),
                 selection: Selection | None = None) -> None:
        self.n, self.epochs, self.batch_size, self.seed = n, epochs, batch_size, seed
        self.parallel, self.modules, self.optimizers = parallel, modules, optimizers
        self.desc, self.progress, self.state_path = desc, progress, state_path
        self.evaluate, self.fingerprint = evaluate, dict(fingerprint)
        self.optim, self.scheduled, self.selection = optim, scheduled, selection
        # the base lr of each scheduled optimizer, so the factor is applied afresh each step
        self.base_lr = {k: [g["lr"] for g in optimizers[k].param_groups] for k in scheduled}
        self.best: dict[str, Any] | None = None  # {"epoch", "score", "state"}
        self.history: list[dict[str, float]] = []
        if n < 2 * parallel.world_size:
            raise DataError(f"{n} training windows are too few for batches of >= 2 per process")

    def _batches(self, epoch: int) -> Iterator[Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(self.n, generator=generator)
        per_rank = self.n // self.parallel.world_size  # equal step counts keep collectives paired
        mine = order[self.parallel.rank::self.parallel.world_size][:per_rank]
        for start in range(0, per_rank, self.batch_size):
            batch = mine[start:start + self.batch_size]
            if len(batch) >= 2:  # BatchNorm needs two samples in training mode
                yield batch

    def _resume(self) -> int:
        if self.state_path is None or not self.state_path.is_file():
            return 0
        state = load_training_state(self.state_path)
        if state.get("fingerprint") != self.fingerprint:
            raise ConfigError(
                f"{self.state_path} belongs to a different run configuration; delete it or choose "
                "another output directory to start afresh")
        for name, module in self.modules.items():
            module.load_state_dict(state["modules"][name])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.history = list(state["history"])
        self.best = state.get("best")
        logger.info("resuming %s from epoch %d", self.desc, state["epoch"])
        return int(state["epoch"])

    def _save(self, epoch: int) -> None:
        if self.state_path is None:
            return
        if self.parallel.is_main:
            save_training_state({
                "epoch": epoch, "fingerprint": self.fingerprint, "history": self.history,
                "modules": {k: m.state_dict() for k, m in self.modules.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "best": self.best,
            }, self.state_path)
        self.parallel.barrier()

    def run(self, step: StepFn) -> list[dict[str, float]]:
        from tqdm.auto import tqdm

        first = self._resume()
        per_rank = self.n // self.parallel.world_size
        steps_per_epoch = -(-per_rank // self.batch_size) - (1 if per_rank % self.batch_size == 1 else 0)
        bar = tqdm(total=(self.epochs - first) * steps_per_epoch, desc=self.desc, leave=False,
                   disable=not (self.progress and self.parallel.is_main), dynamic_ncols=True)
        step_number = first * steps_per_epoch
        total_steps = self.epochs * steps_per_epoch
        try:
            for epoch in range(first, self.epochs):
                if self._stopped(epoch):
                    break
                for module in self.modules.values():
                    module.train()
                sums: dict[str, float] = {}
                counts: dict[str, int] = {}  # per key: feedback parts come every `period` steps
                for batch in self._batches(epoch):
                    self._set_lr(step_number, total_steps)
                    parts = step(batch, step_number)
                    step_number += 1
                    for key, value in parts.items():
                        sums[key] = sums.get(key, 0.0) + value
                        counts[key] = counts.get(key, 0) + 1
                    bar.update(1)
                    bar.set_postfix(epoch=epoch + 1, loss=f"{parts.get('loss', float('nan')):.3f}")
                for module in self.modules.values():
                    self.parallel.sync_module(module, average=True)
                record = {"epoch": float(epoch + 1), **{k: v / counts[k] for k, v in sums.items()}}
                if self.evaluate is not None:
                    record.update(self.evaluate())
                self._select(epoch, record)
                self.history.append(record)
                logger.info("%s epoch %d: %s", self.desc, epoch + 1, record)
                self._save(epoch + 1)
        finally:
            bar.close()
        if self.selection is not None and self.best is not None:
            if self.best["state"] is not None:
                self.modules[self.selection.module].load_state_dict(self.best["state"])
            how = "the last" if self.selection.select_by == "last" else f"best by {self.selection.select_by}"
            logger.info("%s: kept epoch %d (%s; validation score %.4f)", self.desc, self.best["epoch"],
                        how, abs(self.best["score"]))
        return self.history

    def _set_lr(self, step_number: int, total_steps: int) -> None:
        if not self.scheduled:
            return
        factor = lr_factor(step_number, total_steps, self.optim.schedule, self.optim.warmup_fraction)
        for key in self.scheduled:
            for group, base in zip(self.optimizers[key].param_groups, self.base_lr[key], strict=True):
                group["lr"] = base * factor

    def _select(self, epoch: int, record: dict[str, float]) -> None:
        if self.selection is None:
            return
        scores = self.selection.score()
        record.update(scores)
        score = self.selection.criterion(scores)
        if self.best is None or self.selection.improves(score, self.best["score"]):
            # `last` keeps the weights the loop ends with: copying them every epoch buys nothing
            kept = None
            if self.selection.select_by != "last":
                state = self.modules[self.selection.module].state_dict()
                kept = {k: v.detach().clone() for k, v in state.items()}
            self.best = {"epoch": epoch + 1, "score": score, "state": kept}
        record["best_epoch"] = float(self.best["epoch"])

    def _stopped(self, epoch: int) -> bool:
        """Early stopping: ``patience`` epochs have passed since the best one."""
        if self.selection is None or self.best is None or self.selection.patience == 0:
            return False
        return epoch - int(self.best["epoch"]) >= self.selection.patience


def _adam(params: Iterable[nn.Parameter], optim: Any, lr: float | None = None) -> torch.optim.Adam:
    return torch.optim.Adam(list(params), lr=optim.lr if lr is None else lr,
                            betas=(optim.beta1, optim.beta2), eps=optim.eps)


def _apply(optimizer: torch.optim.Optimizer, params: list[nn.Parameter], loss: Tensor,
           parallel: Parallel, grad_clip: float) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    parallel.sync_gradients(params)
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()


@torch.no_grad()
def validation_loss(model: nn.Module, data: TensorSet, device: torch.device | str, weighting: str,
                    batch_size: int = 256) -> float:
    """Cross-entropy of ``model`` (eval mode) on a validation set, class-weighted like training
    (``balanced`` weights come from the validation labels, so both classes count equally)."""
    probabilities = torch.from_numpy(predict_proba(model, data, device, batch_size))
    log_p = torch.log(probabilities.clamp(min=1e-7))
    return float(F.nll_loss(log_p, data.labels, weight=class_weights(data.labels, weighting)))


def balanced_accuracy(probabilities: npt.NDArray[np.float32], labels: Tensor | npt.NDArray[np.int64]) -> float:
    """Mean recall over the classes present (0.5 for a constant answer, whatever the class shares)."""
    truth, predicted = np.asarray(labels), probabilities.argmax(1)
    return float(np.mean([(predicted[truth == c] == c).mean() for c in np.unique(truth)]))


@torch.no_grad()
def validation_scores(model: nn.Module, data: TensorSet, device: torch.device | str, weighting: str,
                      batch_size: int = 256) -> dict[str, float]:
    """``val_loss`` (:func:`validation_loss`) and ``val_balanced_accuracy`` of ``model`` (eval
    mode) on a validation set, from one pass."""
    probabilities = predict_proba(model, data, device, batch_size)
    log_p = torch.log(torch.from_numpy(probabilities).clamp(min=1e-7))
    loss = float(F.nll_loss(log_p, data.labels, weight=class_weights(data.labels, weighting)))
    return {"val_loss": loss, "val_balanced_accuracy": balanced_accuracy(probabilities, data.labels)}


def _selection(module: str, model: nn.Module, options: LoopOptions, optim: Any) -> Selection | None:
    if options.val_data is None:
        return None
    val, device = options.val_data, options.parallel.device
    return Selection(module, lambda: validation_scores(model, val, device, optim.class_weighting), optim.patience,
                     optim.select_by)


def _eval_fn(model: nn.Module, data: TensorSet | None, parallel: Parallel,
             prefix: str = "eval") -> Callable[[], dict[str, float]] | None:
    if data is None:
        return None
    return lambda: {f"{prefix}_accuracy": accuracy(predict_proba(model, data, parallel.device), data.labels)}


def _resumable(optim: Any) -> dict[str, Any]:
    """The optimiser settings a resumed run must share (epochs and patience may grow: asking for
    more epochs continues the run, with the cosine schedule stretched to the new total)."""
    return {k: v for k, v in vars(optim).items() if k not in ("epochs", "patience")}


def _to(tensor: Tensor | None, device: torch.device) -> Tensor | None:
    return None if tensor is None else tensor.to(device)


# --- the four trainings ----------------------------------------------------------------------
@dataclass(frozen=True)
class LoopOptions:
    """What every training shares: seed, parallel runtime, progress, resume file, curves
    (``eval_data``, never used for choices) and the validation set that picks the best epoch
    (``val_data``, carved from the training subjects; None = keep the last epoch)."""

    seed: int = 0
    parallel: Parallel = field(default_factory=Parallel)
    progress: bool = False
    state_path: Path | None = None
    eval_data: TensorSet | None = None
    val_data: TensorSet | None = None


def constant_answer_ce(labels: Tensor, weighting: str) -> float:
    """The training cross-entropy (nats) of the best constant answer under ``weighting``: the
    entropy of the class shares as the weighted loss counts them (ln 2 when ``balanced``)."""
    counts = torch.bincount(labels, minlength=2).double()
    weights = class_weights(labels, weighting)
    mass = counts * (weights.double() if weights is not None else 1.0)
    shares = mass[mass > 0] / mass.sum()
    return float(-(shares * shares.log()).sum())


def train_teacher(data: TensorSet, config: TeacherConfig, optim: Any, l2: float,
                  options: LoopOptions = LoopOptions()) -> TrainResult:
    """Teacher on EEG + GSR: ``CE + l2·ΣW²`` (conv kernels), restarted from a fresh seed up to
    ``optim.plateau_restarts`` times while its last epoch's training CE is still on the majority
    plateau (>= ``PLATEAU_SHARE`` of :func:`constant_answer_ce`). Each history entry carries
    ``restart`` (0 = the first run) of the run kept and ``plateau`` (1.0 when every run ended on
    the plateau, which is also logged as a warning)."""
    plateau_ce = PLATEAU_SHARE * constant_answer_ce(data.labels, optim.class_weighting)
    runs: list[tuple[float, TrainResult]] = []  # (final training CE, averaged over ranks; run)
    for restart in range(optim.plateau_restarts + 1):
        state = options.state_path
        if restart and state is not None:  # a restart must not resume the stuck run's state
            state = state.with_name(f"{state.stem}-restart{restart}{state.suffix}")
        result = _train_teacher_once(data, config, optim, l2,
                                     replace(options, seed=options.seed + restart, state_path=state))
        for entry in result.history:
            entry["restart"] = float(restart)
        final_ce = options.parallel.mean(result.history[-1]["ce"]) if result.history else 0.0
        runs.append((final_ce, result))
        if final_ce < plateau_ce:
            break
        logger.info("teacher: training CE %.3f is still on the plateau (>= %.3f) after run %d of %d",
                    final_ce, plateau_ce, restart + 1, optim.plateau_restarts + 1)
    # the run that left the plateau is the last and the lowest; if none did, the lowest
    kept_ce, kept = min(runs, key=lambda run: run[0])
    stuck = kept_ce >= plateau_ce
    for entry in kept.history:
        entry["plateau"] = float(stuck)
    if stuck:  # the report names it: this teacher's row and its students' KD measure no learning
        logger.warning("teacher: all %d run(s) ended on the majority plateau (training CE %.3f >= %.3f), "
                       "so it answers nearly a constant; give it more epochs, a higher teacher_optim.lr "
                       "or more teacher_optim.plateau_restarts", len(runs), kept_ce, plateau_ce)
    return kept


def _train_teacher_once(data: TensorSet, config: TeacherConfig, optim: Any, l2: float,
                        options: LoopOptions) -> TrainResult:
    if data.eeg is None:
        raise DataError("the teacher needs EEG windows")
    if data.eeg.shape[-1] != config.window_samples:
        raise DataError(f"the EEG windows have {data.eeg.shape[-1]} samples but the teacher reads "
                        f"{config.window_samples}: set data.eeg_window_s x data.eeg_rate_hz to "
                        f"teacher.window_samples")
    par = options.parallel
    torch.manual_seed(options.seed)
    teacher = EmotionNetTeacher(config).to(par.device)
    par.sync_module(teacher, average=False)
    params = list(teacher.parameters())
    optimizer = _adam(params, optim)
    eeg, gsr, labels = data.eeg, data.gsr, data.labels
    weight = _to(class_weights(labels, optim.class_weighting), par.device)

    def step(idx: Tensor, _: int) -> dict[str, float]:
        y = labels[idx].to(par.device)
        logits = teacher(eeg[idx].to(par.device), gsr[idx].to(par.device))
        ce = F.cross_entropy(logits, y, weight=weight)
        loss = ce + l2_penalty(teacher, l2)
        _apply(optimizer, params, loss, par, optim.grad_clip)
        return {"loss": loss.item(), "ce": ce.item()}

    history = _Loop(n=len(data), epochs=optim.epochs, batch_size=optim.batch_size, seed=options.seed,
                    parallel=par, modules={"teacher": teacher}, optimizers={"teacher": optimizer},
                    desc="teacher", progress=options.progress, state_path=options.state_path,
                    evaluate=_eval_fn(teacher, options.eval_data, par),
                    fingerprint={"kind": "teacher", "config": config.to_dict(), "n": len(data),
                                 "seed": options.seed, "optim": _resumable(optim)},
                    optim=optim, scheduled=("teacher",),
                    selection=_selection("teacher", teacher, options, optim)).run(step)
    return TrainResult(teacher.eval(), history)


def train_student(data: TensorSet, config: StudentConfig, optim: Any, l2: float,
                  options: LoopOptions = LoopOptions(), *, initial: EmotionNetStudent | None = None,
                  desc: str = "student") -> TrainResult:
    """GSR-only student with ``CE + l2·ΣW²`` (the baseline, and fine-tuning from ``initial``)."""
    par = options.parallel
    torch.manual_seed(options.seed)
    student = EmotionNetStudent(config) if initial is None else copy.deepcopy(initial)
    student = student.to(par.device)
    par.sync_module(student, average=False)
    params = list(student.parameters())
    optimizer = _adam(params, optim)
    weight = _to(class_weights(data.labels, optim.class_weighting), par.device)

    def step(idx: Tensor, _: int) -> dict[str, float]:
        logits = student(data.gsr[idx].to(par.device))
        ce = F.cross_entropy(logits, data.labels[idx].to(par.device), weight=weight)
        loss = ce + l2_penalty(student, l2)
        _apply(optimizer, params, loss, par, optim.grad_clip)
        return {"loss": loss.item(), "ce": ce.item()}

    history = _Loop(n=len(data), epochs=optim.epochs, batch_size=optim.batch_size, seed=options.seed,
                    parallel=par, modules={"student": student}, optimizers={"student": optimizer},
                    desc=desc, progress=options.progress, state_path=options.state_path,
                    evaluate=_eval_fn(student, options.eval_data, par),
                    fingerprint={"kind": desc, "config": config.to_dict(), "n": len(data),
                                 "seed": options.seed, "optim": _resumable(optim)},
                    optim=optim, scheduled=("student",),
                    selection=_selection("student", student, options, optim)).run(step)
    return TrainResult(student.eval(), history)


def train_distilled(
    data: TensorSet,
    teacher: EmotionNetTeacher,
    config: StudentConfig,
    optim: Any,
    distill: DistillConfig,
    options: LoopOptions = LoopOptions(),
    *,
    feedback: FeedbackConfig | None = None,
    quiz: TensorSet | None = None,
    teacher_optim: Any | None = None,
) -> TrainResult:
    """KD student (``feedback`` None: teacher frozen, its outputs cached once per window) or
    KD + adaptive feedback (a copy of the teacher keeps learning from the temporary student's
    quiz result, see :mod:`emotionkd.training.feedback`; needs ``quiz``, held-out trials)."""
    if data.eeg is None:
        raise DataError("distillation needs EEG windows for the teacher")
    par = options.parallel
    torch.manual_seed(options.seed)
    student = EmotionNetStudent(config).to(par.device)
    par.sync_module(student, average=False)
    matcher = FeatureMatcher(distill.matching, teacher.config.tokens, teacher.config.filters).to(par.device)
    par.sync_module(matcher, average=False)
    student_params = list(student.parameters()) + list(matcher.parameters())
    optimizer = _adam(student_params, optim)
    teacher = copy.deepcopy(teacher).to(par.device)
    modules: dict[str, nn.Module] = {"student": student, "matcher": matcher}
    optimizers: dict[str, torch.optim.Optimizer] = {"student": optimizer}
    cache: TeacherOutputs | None = None
    teacher_opt: torch.optim.Optimizer | None = None
    if feedback is None:
        cache = cache_teacher_outputs(teacher, data.eeg, data.gsr, matcher, device=par.device)
    else:
        if quiz is None or len(quiz) < 2:
            raise DataError("KD + feedback needs a quiz set of at least two held-out windows")
        teacher_opt = _adam(teacher.parameters(), teacher_optim or optim, lr=feedback.teacher_lr)
        modules["teacher"] = teacher
        optimizers["teacher"] = teacher_opt
    weight = _to(class_weights(data.labels, optim.class_weighting), par.device)
    quiz_generator = torch.Generator().manual_seed(options.seed + 7)
    assert data.eeg is not None
    eeg = data.eeg

    def step(idx: Tensor, step_number: int) -> dict[str, float]:
        gsr = data.gsr[idx].to(par.device)
        y = data.labels[idx].to(par.device)
        parts: dict[str, float] = {}
        if cache is not None:
            t_logits, t_feature = cache.logits[idx].to(par.device), cache.features[idx].to(par.device)
        else:
            assert quiz is not None and teacher_opt is not None and feedback is not None
            batch = (eeg[idx].to(par.device), gsr, y)
            if step_number % feedback.period == 0:
                q = torch.randint(len(quiz), (min(len(idx), len(quiz)),), generator=quiz_generator)
                parts = feedback_step(teacher, student, matcher, teacher_opt, batch,
                                      (quiz.gsr[q].to(par.device), quiz.labels[q].to(par.device)),
                                      distill, feedback, par.sync_gradients)
            with torch.no_grad():
                teacher.eval()
                t_logits, raw = teacher.forward_with_features(batch[0], gsr)
                t_feature = matcher.reduce_teacher(raw)
                teacher.train()
        student.train()
        s_logits, s_feature = student.forward_with_features(gsr)
        loss, detail = distillation_loss(s_logits, s_feature, y, t_logits, t_feature, matcher, distill,
                                         class_weight=weight)
        loss = loss + l2_penalty(student, distill.l2)
        _apply(optimizer, student_params, loss, par, optim.grad_clip)
        return {"loss": loss.item(), **{k: v.item() for k, v in detail.items()}, **parts}

    evaluate = _eval_fn(student, options.eval_data, par)
    if feedback is not None and options.eval_data is not None and options.eval_data.eeg is not None:
        student_eval, teacher_eval = evaluate, _eval_fn(teacher, options.eval_data, par, "teacher_eval")
        assert student_eval is not None and teacher_eval is not None
        evaluate = lambda: {**student_eval(), **teacher_eval()}  # noqa: E731
    kind = "kd+feedback" if feedback is not None else "kd"
    history = _Loop(n=len(data), epochs=optim.epochs, batch_size=optim.batch_size, seed=options.seed,
                    parallel=par, modules=modules, optimizers=optimizers, desc=kind,
                    progress=options.progress, state_path=options.state_path, evaluate=evaluate,
                    fingerprint={"kind": kind, "config": config.to_dict(), "n": len(data),
                                 "seed": options.seed, "distill": vars(distill),
                                 "feedback": vars(feedback) if feedback else None, "optim": _resumable(optim)},
                    optim=optim, scheduled=("student",),
                    selection=_selection("student", student, options, optim)).run(step)
    return TrainResult(student.eval(), history, teacher.eval() if feedback is not None else None)


__all__ = [
    "LoopOptions",
    "Parallel",
    "TensorSet",
    "TrainResult",
    "accuracy",
    "class_weights",
    "lr_factor",
    "predict_proba",
    "train_distilled",
    "train_student",
    "train_teacher",
    "validation_loss",
    "validation_scores",
]
