"""Fine-tuning a distilled student on labelled GSR: which checkpoint, which heads, whose provenance.

* The start can be named: ``bundled`` is the student behind the SDK's bundled model, shipped
  with the ``train`` extra as weights only (:func:`bundled_checkpoint_path`, float16, a few MB).
* Only the heads the data labels are trained (stress labels are arousal labels: the valence
  head is kept as it was, and so is its provenance).
* The result records, per head, what it learned from (data kind, dataset, label meaning,
  licence, protocol, metrics): :class:`emotionkd.sdk.contract.TargetProvenance`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from emotionkd.firmware_bridge.errors import DataError
from emotionkd.sdk.contract import ModelContract, PreprocessingSpec, Provenance, TargetProvenance
from emotionkd.sdk.preprocessing import PreprocessingConfig
from emotionkd.training.checkpoint import (
    StudentCheckpoint,
    load_student_checkpoint,
    save_student_checkpoint,
)
from emotionkd.training.errors import CheckpointError
from emotionkd.training.models import EmotionNetStudent
from emotionkd.training.windowed import WindowedDataset

BUNDLED: Final = "bundled"
BUNDLED_CHECKPOINT: Final = "bundled-student.pt"


def bundled_checkpoint_path() -> Path:
    """Where the bundled model's student checkpoint is installed (``emotionkd.training.pretrained``)."""
    return Path(__file__).parent / "pretrained" / BUNDLED_CHECKPOINT


def resolve_checkpoint(name: str | Path) -> Path:
    """``bundled`` → the installed bundled student checkpoint; anything else is a path.

    Raises:
        CheckpointError: ``bundled`` was asked for and this install has none.
    """
    if str(name) != BUNDLED:
        return Path(name)
    path = bundled_checkpoint_path()
    if not path.is_file():
        raise CheckpointError(f"this install has no bundled student checkpoint ({path}); `make bundled-model` "
                              "writes it in a source checkout, or pass --checkpoint student.pt")
    return path


def load_start(name: str | Path) -> StudentCheckpoint:
    """The student checkpoint to fine-tune from (``bundled`` or a path)."""
    return load_student_checkpoint(resolve_checkpoint(name))


def save_weights_only(checkpoint: StudentCheckpoint, path: str | Path) -> Path:
    """Write ``checkpoint`` for shipping: contract, architecture and weights (floating tensors
    as float16, which halves the size; loading casts them back), no training configuration."""
    half = {t: {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu() for k, v in sd.items()}
            for t, sd in checkpoint.state_dicts.items()}
    slim = StudentCheckpoint(contract=checkpoint.contract, student_config=checkpoint.student_config,
                             state_dicts=half, metrics=checkpoint.metrics,
                             train_config={"weights": "float16 copy of the trained float32 weights"})
    return save_student_checkpoint(slim, path)


def finetune_targets(requested: Sequence[str], data: WindowedDataset, base: StudentCheckpoint) -> tuple[str, ...]:
    """The heads to fine-tune: requested, labelled by the data and present in the base model.

    Raises:
        DataError: none is left (names what the data labels).
    """
    labelled = data.meta.get("targets", ["arousal", "valence"])
    targets = tuple(t for t in requested if t in labelled and t in base.contract.targets)
    if not targets:
        raise DataError(f"nothing to fine-tune: the data labels {list(labelled)}, the model has "
                        f"{list(base.contract.targets)}, and targets={list(requested)}")
    return targets


def target_origin(meta: Mapping[str, Any], target: str, *, method: str, protocol: str, subjects: int,
                  metrics: Mapping[str, float]) -> TargetProvenance:
    """What a head trained on data with this ``meta`` learned from (label meaning, licence)."""
    kind = "synthetic" if meta.get("data_kind", "synthetic") == "synthetic" else "real"
    name = meta.get("dataset_name")
    dataset = f"{name} ({meta.get('dataset')})" if name else str(meta.get("dataset", "unknown"))
    labels = (meta.get("label_provenance") or {}).get(target)
    if not labels:
        rule = meta.get("label_rule") or {}
        labels = str(rule.get("description", "")) if isinstance(rule, Mapping) else ""
    return TargetProvenance(data_kind=kind, dataset=dataset, labels=str(labels or ""),
                            licence=str(meta.get("licence") or ""), protocol=protocol, subjects=subjects,
                            method=method, metrics={k: float(v) for k, v in metrics.items()})


def finetuned_checkpoint(base: StudentCheckpoint, meta: Mapping[str, Any], tuned: Mapping[str, EmotionNetStudent],
                         metrics: Mapping[str, Mapping[str, float]], *, protocol: str, subjects: int,
                         notes: str, train_config: Mapping[str, Any],
                         preprocessing: PreprocessingConfig | None = None) -> StudentCheckpoint:
    """``base`` with the heads in ``tuned`` replaced (trained on data with this ``meta``);
    per-head provenance says which is which. ``preprocessing``: the input the tuned heads were
    trained on when it differs from the base's (e.g. another baseline time constant); the
    contract then records it, and every head is served with it."""
    method = f"{base.contract.provenance.method}+finetune"
    origins = {t: (target_origin(meta, t, method=method, protocol=protocol, subjects=subjects,
                                 metrics=metrics.get(t, {}))
                   if t in tuned else base.contract.origin(t)) for t in base.contract.targets}
    kinds = {o.data_kind for o in origins.values()}
    first = origins[next(iter(tuned))]
    contract: ModelContract = base.contract.with_updates(
        provenance=Provenance(data_kind="real" if "real" in kinds else "synthetic", dataset=first.dataset,
                              protocol=protocol, subjects=subjects, method=method, notes=notes),
        metrics={t: dict(o.metrics) for t, o in origins.items() if o.metrics},
        target_provenance=origins,
        **({"preprocessing": PreprocessingSpec.from_config(preprocessing)} if preprocessing is not None else {}))
    state_dicts = {t: (tuned[t].state_dict() if t in tuned else
                       {k: v.float() if v.is_floating_point() else v for k, v in base.state_dicts[t].items()})
                   for t in base.contract.targets}
    return StudentCheckpoint(contract=contract, student_config=base.student_config, state_dicts=state_dicts,
                             metrics=dict(metrics), train_config=dict(train_config))


def check_compatible(base: StudentCheckpoint, data: WindowedDataset) -> None:
    """The data's windows must be the ones the model reads (same preprocessing and width)."""
    params = (data.meta.get("preprocessing") or {}).get("params")
    wanted = base.contract.preprocessing_config().to_params()
    if params is not None and PreprocessingConfig.from_params(dict(params)).to_params() != wanted:
        raise DataError(f"the data were prepared with preprocessing {dict(params)}, the model reads "
                        f"{dict(wanted)}; prepare them with the model's preprocessing")
    if data.window_samples != base.student_config.window_samples:
        raise DataError(f"the data's windows have {data.window_samples} samples, the model reads "
                        f"{base.student_config.window_samples}")


__all__ = ["BUNDLED", "bundled_checkpoint_path", "check_compatible", "finetune_targets", "finetuned_checkpoint",
           "load_start", "resolve_checkpoint", "save_weights_only", "target_origin"]
