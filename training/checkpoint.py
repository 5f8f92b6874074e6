"""``student.pt`` (what export reads) and resumable training states.

A student checkpoint is one file holding both students (arousal and valence) and everything
needed to rebuild and trust them, as plain types and tensors only::

    {"format": "emotionkd-student", "format_version": 1,
     "contract": ModelContract.to_dict(), "student_config": StudentConfig.to_dict(),
     "state_dicts": {"arousal": {...}, "valence": {...}},
     "metrics": {...}, "train_config": {...}}

Files are always read with ``torch.load(weights_only=True)``: a pickle that tries to build
arbitrary objects (and so to run code) is refused before anything of it runs.
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

import torch
from torch import Tensor

from emotionkd.firmware_bridge.errors import ConfigError, ContractError
from emotionkd.sdk.contract import ModelContract
from emotionkd.sdk.plain import to_plain
from emotionkd.training.atomic_io import atomic_path
from emotionkd.training.errors import CheckpointError
from emotionkd.training.models import (
    EmotionNetStudent,
    EmotionNetTeacher,
    StudentConfig,
    TeacherConfig,
)

logger = logging.getLogger(__name__)

STUDENT_FORMAT: Final = "emotionkd-student"
STUDENT_FORMAT_VERSION: Final = 1
TRAINING_STATE_FORMAT: Final = "emotionkd-training-state"
TRAINING_STATE_VERSION: Final = 1
#: checkpoint metadata in plain types (tensors and numpy values become numbers and lists)
_plain = partial(to_plain, what="checkpoint metadata", error=CheckpointError)


@dataclass(frozen=True)
class StudentCheckpoint:
    """The content of a ``student.pt``.

    Attributes:
        contract: what the students expect (preprocessing, labels) and where they came from.
        student_config: the architecture of both students.
        state_dicts: ``{target: state_dict}`` for each contract target.
        metrics: plain evaluation numbers (also copied into the contract).
        train_config: the experiment configuration that produced it (plain types).
    """

    contract: ModelContract
    student_config: StudentConfig
    state_dicts: Mapping[str, Mapping[str, Tensor]]
    metrics: Mapping[str, Any] = field(default_factory=dict)
    train_config: Mapping[str, Any] = field(default_factory=dict)

    def build(self, target: str) -> EmotionNetStudent:
        """The student for ``target`` with its weights loaded, in eval mode."""
        if target not in self.state_dicts:
            raise CheckpointError(
                f"checkpoint has no {target!r} student; it holds {sorted(self.state_dicts)}")
        model = EmotionNetStudent(self.student_config)
        try:
            model.load_state_dict(dict(self.state_dicts[target]))
        except RuntimeError as exc:
            raise CheckpointError(
                f"the {target} weights do not fit the recorded student_config: {exc}") from exc
        return model.eval()

    def build_all(self) -> dict[str, EmotionNetStudent]:
        """``{target: student}`` in the contract's target order."""
        return {target: self.build(target) for target in self.contract.targets}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": STUDENT_FORMAT,
            "format_version": STUDENT_FORMAT_VERSION,
            "contract": self.contract.to_dict(),
            "student_config": self.student_config.to_dict(),
            "state_dicts": {t: {k: v.detach().cpu().clone() for k, v in sd.items()}
                            for t, sd in self.state_dicts.items()},
            "metrics": _plain(self.metrics),
            "train_config": _plain(self.train_config),
        }


def save_student_checkpoint(checkpoint: StudentCheckpoint, path: str | os.PathLike[str]) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (a temporary file renamed into place)."""
    missing = [t for t in checkpoint.contract.targets if t not in checkpoint.state_dicts]
    if missing:
        raise CheckpointError(f"no weights for contract targets {missing}")
    return _atomic_save(checkpoint.to_dict(), Path(path))


def load_student_checkpoint(path: str | os.PathLike[str]) -> StudentCheckpoint:
    """Read a ``student.pt``; raises :class:`CheckpointError` naming the problem and the fix."""
    data = _safe_load(Path(path), STUDENT_FORMAT, STUDENT_FORMAT_VERSION)
    try:
        contract = ModelContract.from_dict(data["contract"])
        config = StudentConfig.from_dict(data["student_config"])
        state_dicts = data["state_dicts"]
        if not isinstance(state_dicts, Mapping) or not all(
                isinstance(sd, Mapping) and all(isinstance(v, Tensor) for v in sd.values())
                for sd in state_dicts.values()):
            raise CheckpointError(f"{path}: state_dicts must map targets to tensors")
        checkpoint = StudentCheckpoint(
            contract=contract, student_config=config, state_dicts=dict(state_dicts),
            metrics=dict(data.get("metrics", {})), train_config=dict(data.get("train_config", {})))
    except KeyError as exc:
        raise CheckpointError(f"{path}: student checkpoint lacks the entry {exc}; re-create it "
                              "with `emotionkd-train distill`") from exc
    except (ContractError, ConfigError) as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    missing = [t for t in contract.targets if t not in checkpoint.state_dicts]
    if missing:
        raise CheckpointError(f"{path}: no weights for the contract targets {missing}")
    return checkpoint


# --- teacher checkpoint (teacher.pt: the input of `distill --teacher`) ----------------------------
TEACHER_FORMAT: Final = "emotionkd-teacher"
TEACHER_FORMAT_VERSION: Final = 1


def save_teacher_checkpoint(config: TeacherConfig, state_dicts: Mapping[str, Mapping[str, Tensor]],
                            path: str | os.PathLike[str], *, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``{target: teacher state_dict}`` with the teacher config (same safety as student.pt)."""
    return _atomic_save({
        "format": TEACHER_FORMAT, "format_version": TEACHER_FORMAT_VERSION,
        "teacher_config": config.to_dict(),
        "state_dicts": {t: {k: v.detach().cpu().clone() for k, v in sd.items()} for t, sd in state_dicts.items()},
        "metadata": _plain(metadata or {}),
    }, Path(path))


def load_teacher_checkpoint(path: str | os.PathLike[str]) -> tuple[TeacherConfig, dict[str, EmotionNetTeacher], dict[str, Any]]:
    """(config, {target: teacher in eval mode}, metadata) from a ``teacher.pt``."""
    data = _safe_load(Path(path), TEACHER_FORMAT, TEACHER_FORMAT_VERSION)
    try:
        config = TeacherConfig.from_dict(data["teacher_config"])
        teachers = {}
        for target, state in data["state_dicts"].items():
            model = EmotionNetTeacher(config)
            model.load_state_dict(state)
            teachers[target] = model.eval()
    except KeyError as exc:
        raise CheckpointError(f"{path}: teacher checkpoint lacks the entry {exc}") from exc
    except (ConfigError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: teacher weights do not fit the recorded config: {exc}") from exc
    return config, teachers, dict(data.get("metadata", {}))


# --- resumable training state --------------------------------------------------------------
def save_training_state(state: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a resumable training state (model/optimizer state dicts, epoch, history: plain
    types and tensors) atomically."""
    payload = {"format": TRAINING_STATE_FORMAT, "format_version": TRAINING_STATE_VERSION, **state}
    return _atomic_save(payload, Path(path))


def load_training_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read what :func:`save_training_state` wrote (weights-only, version-checked)."""
    data = _safe_load(Path(path), TRAINING_STATE_FORMAT, TRAINING_STATE_VERSION)
    return {k: v for k, v in data.items() if k not in ("format", "format_version")}


# --- helpers ---------------------------------------------------------------------------------
def _atomic_save(payload: Mapping[str, Any], path: Path) -> Path:
    try:
        with atomic_path(path) as tmp:
            torch.save(dict(payload), tmp)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc}") from exc
    logger.debug("wrote %s", path)
    return path


def _safe_load(path: Path, fmt: str, version: int) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `emotionkd-train`")
    try:
        with warnings.catch_warnings():
            # torch warns (to its own developers) about the pickle protocol of a foreign file; the
            # file is judged below and refused with one line, so the warning is noise to a user
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses any global that is not a tensor or plain type, before running it.
        # torch's message goes on to suggest an unsafe load; never pass that advice on.
        raise CheckpointError(
            f"{path} is not a safe emotionkd checkpoint (it asks to build objects a weights-only "
            "load refuses, or is not a checkpoint at all); it was not loaded") from exc
    except Exception as exc:  # noqa: BLE001 - any parse failure of an untrusted file means "not ours"
        # torch's own words ("pop from empty list", a byte value) describe its parser, not the
        # file; the cause stays chained for a debugger.
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (torch.load cannot read it); "
                              "pass a student.pt written by emotionkd-train") from exc
    if not isinstance(data, dict) or data.get("format") != fmt:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path} is not an {fmt} checkpoint (found {found!r})")
    found_version = data.get("format_version")
    if not isinstance(found_version, int) or found_version < 1:
        raise CheckpointError(f"{path} has an invalid format_version {found_version!r}")
    if found_version > version:
        raise CheckpointError(
            f"{path} has format_version {found_version}, newer than this emotionkd reads "
            f"({version}); upgrade emotionkd (pip install -U emotionkd)")
    return data


__all__ = [
    "STUDENT_FORMAT",
    "STUDENT_FORMAT_VERSION",
    "StudentCheckpoint",
    "load_student_checkpoint",
    "load_teacher_checkpoint",
    "save_teacher_checkpoint",
    "load_training_state",
    "save_student_checkpoint",
    "save_training_state",
]
