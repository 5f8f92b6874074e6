"""The model contract: one versioned description of what a model expects and where it came from.

Every checkpoint and every ONNX file carries it (JSON under the ONNX ``metadata_props`` key
:data:`ONNX_METADATA_KEY`), and the SDK configures itself from it, so a model cannot be served
with preprocessing other than the one it was trained with.

It round-trips exactly through JSON, through a checkpoint dict of plain types and through ONNX
metadata. A contract from a newer major version is refused with a clear error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import partial
from typing import Any, Final

from emotionkd.firmware_bridge.bounds import (
    MAX_HOP_S,
    MAX_WINDOW_S,
    MAX_WINDOW_SAMPLES,
    rate_problem,
)
from emotionkd.firmware_bridge.errors import ContractError
from emotionkd.firmware_bridge.units import normalise_unit
from emotionkd.sdk.plain import to_plain
from emotionkd.sdk.preprocessing import (
    PREPROCESSING_NAME,
    PREPROCESSING_VERSION,
    PreprocessingConfig,
)

#: Version of the contract's schema. Bump on any change a reader must understand. Version 2 adds
#: ``target_provenance``; a contract without it is still written as version 1, so older readers
#: keep reading models that do not need it.
CONTRACT_VERSION: Final = 2
#: The ``metadata_props`` key holding the contract JSON in an ONNX file.
ONNX_METADATA_KEY: Final = "emotionkd.contract"
#: the heads a model may have, in the column order of training labels (one owner: training
#: imports it from here)
TARGETS: Final[tuple[str, ...]] = ("arousal", "valence")
#: what a head learned from; training's dataset meta uses the same words
DATA_KINDS: Final[tuple[str, ...]] = ("synthetic", "real")
#: how ratings become labels: ``rating > threshold`` (or ``>=``) is the high class
LABEL_RULES: Final[tuple[str, ...]] = (">", ">=")
#: the same rules as configurations and command lines spell them (words need no shell quoting)
LABEL_RULE_WORDS: Final[Mapping[str, str]] = {"gt": ">", "ge": ">="}
#: contract values in JSON's types; strict JSON has no NaN, so a contract refuses it
_plain = partial(to_plain, what="contract values", error=ContractError, finite=True)


@dataclass(frozen=True)
class PreprocessingSpec:
    """Which preprocessing, which version, which parameters."""

    name: str = PREPROCESSING_NAME
    version: int = 1
    params: Mapping[str, Any] = field(default_factory=lambda: PreprocessingConfig().to_params())

    def to_config(self) -> PreprocessingConfig:
        """The runnable configuration; refuses preprocessing this emotionkd does not implement."""
        if self.name != PREPROCESSING_NAME:
            raise ContractError(
                f"model needs preprocessing {self.name!r}, this emotionkd implements "
                f"{PREPROCESSING_NAME!r}", field="preprocessing.name")
        if self.version > PREPROCESSING_VERSION:
            raise ContractError(
                f"model needs {self.name} version {self.version}, this emotionkd has version "
                f"{PREPROCESSING_VERSION}; upgrade emotionkd", field="preprocessing.version")
        return PreprocessingConfig.from_params(dict(self.params), self.version)

    @classmethod
    def from_config(cls, config: PreprocessingConfig) -> PreprocessingSpec:
        """The spec of ``config``, written as the oldest version that runs it (v1 stays v1)."""
        return cls(PREPROCESSING_NAME, config.version, config.to_params())


@dataclass(frozen=True)
class Provenance:
    """What a model was trained on.

    Attributes:
        data_kind: ``synthetic`` or ``real``.
        dataset: e.g. ``deap``, ``mahnob-hci``, ``synthetic-deap``, ``csv``.
        protocol: evaluation protocol of the reported metrics (``loso``, ``kfold``, ``none``).
        subjects: number of subjects trained on.
        method: ``teacher``, ``student``, ``kd``, ``kd+feedback`` …
        notes: free text.
    """

    data_kind: str = "synthetic"
    dataset: str = "synthetic-deap"
    protocol: str = "none"
    subjects: int = 0
    method: str = "kd+feedback"
    notes: str = ""


@dataclass(frozen=True)
class TargetProvenance:
    """Where one output head's weights last learned from (heads of one model can differ: an
    arousal head fine-tuned on real wrist EDA beside a valence head distilled on synthetic data).

    Attributes:
        data_kind: ``synthetic`` or ``real``.
        dataset: what it was trained on, e.g. ``stress-predict (recordings)``.
        labels: what the labels mean, e.g. "binary stress label: stress task = high arousal".
        licence: the data's licence and attribution ("" when none is known).
        protocol: how ``metrics`` were measured, e.g. ``holdout-subjects``.
        subjects: subjects trained on.
        method: ``kd+feedback``, ``kd+feedback+finetune`` …
        metrics: ``{metric: value}`` of this head under ``protocol``.
    """

    data_kind: str = "synthetic"
    dataset: str = ""
    labels: str = ""
    licence: str = ""
    protocol: str = "none"
    subjects: int = 0
    method: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(TargetProvenance)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetProvenance:
        if not isinstance(data, Mapping):
            raise ContractError(f"target provenance must be a mapping, got {type(data).__name__}",
                                field="target_provenance")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ContractError(f"unknown target provenance fields {unknown}", field="target_provenance")
        return cls(**{k: (_plain(v) if k == "metrics" else v) for k, v in data.items()})


@dataclass(frozen=True)
class ModelContract:
    """What a model expects and what it is.

    Attributes:
        sample_rate_hz: model input rate (Hz).
        window_samples: samples per input window.
        train_hop_samples: hop used when the training windows were cut.
        input_unit: unit the preprocessing expects after conversion (always ``uS``).
        preprocessing: name, version and parameters of the preprocessing.
        targets: output heads, in order (``arousal``, ``valence``).
        class_names: class names per target, index 1 = the "high" class.
        label_threshold: self-report rating threshold (1–9 scale).
        label_rule: ``>`` (rating > threshold is high) or ``>=``.
        provenance: what it was trained on.
        metrics: ``{target: {metric: value}}`` from the evaluation protocol.
        model: architecture description (name, options, parameter count).
        export: filled by the exporter (exporter version, opset, int8, parity numbers).
        target_provenance: ``{target: TargetProvenance}`` where the heads' data differ (empty:
            every head has ``provenance``).
        contract_version: schema version.
    """

    sample_rate_hz: float = 128.0
    window_samples: int = 512
    train_hop_samples: int = 512
    input_unit: str = "uS"
    preprocessing: PreprocessingSpec = field(default_factory=PreprocessingSpec)
    targets: tuple[str, ...] = TARGETS
    class_names: tuple[str, ...] = ("low", "high")
    label_threshold: float = 5.0
    label_rule: str = ">"
    provenance: Provenance = field(default_factory=Provenance)
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    model: Mapping[str, Any] = field(default_factory=dict)
    export: Mapping[str, Any] = field(default_factory=dict)
    target_provenance: Mapping[str, TargetProvenance] = field(default_factory=dict)
    contract_version: int = CONTRACT_VERSION

    def __post_init__(self) -> None:
        check_plausible_shape(self.sample_rate_hz, self.window_samples, self.train_hop_samples)
        if normalise_unit(self.input_unit) != "uS":
            raise ContractError(f"input_unit must be uS, got {self.input_unit!r}", field="input_unit")
        if self.label_rule not in LABEL_RULES:
            raise ContractError(f"label_rule must be one of {LABEL_RULES}, got {self.label_rule!r}", field="label_rule")
        if self.provenance.data_kind not in DATA_KINDS:
            raise ContractError(
                f"provenance.data_kind must be one of {DATA_KINDS}, got {self.provenance.data_kind!r}",
                field="provenance.data_kind")
        if not self.targets or len(self.class_names) != 2:
            raise ContractError("a contract needs at least one target and exactly two class names", field="targets")
        # the schema version this contract needs (1 unless it records per-target provenance), so
        # that it round-trips and older readers keep reading models that do not need version 2
        object.__setattr__(self, "contract_version", CONTRACT_VERSION if self.target_provenance else 1)
        for target, origin in self.target_provenance.items():
            if target not in self.targets:
                raise ContractError(f"target_provenance names {target!r}, not a target of {self.targets}",
                                    field="target_provenance")
            if origin.data_kind not in DATA_KINDS:
                raise ContractError(f"target_provenance.{target}.data_kind must be one of {DATA_KINDS}, "
                                    f"got {origin.data_kind!r}", field="target_provenance")
        config = self.preprocessing_config()
        if config.rate_hz != self.sample_rate_hz or config.window_samples != self.window_samples:
            raise ContractError(
                "preprocessing parameters disagree with the contract's sample_rate_hz/window_samples",
                field="preprocessing.params")

    # -- use -------------------------------------------------------------------------------
    def preprocessing_config(self) -> PreprocessingConfig:
        """The runnable preprocessing configuration this model needs."""
        return self.preprocessing.to_config()

    @property
    def window_s(self) -> float:
        return self.window_samples / self.sample_rate_hz

    @property
    def is_synthetic(self) -> bool:
        """True when every head learned from synthetic data only."""
        return not self.real_targets()

    def origin(self, target: str) -> TargetProvenance:
        """Where ``target``'s head learned from (its own record, else the model's provenance)."""
        if target in self.target_provenance:
            return self.target_provenance[target]
        p = self.provenance
        return TargetProvenance(data_kind=p.data_kind, dataset=p.dataset, protocol=p.protocol,
                                subjects=p.subjects, method=p.method, metrics=dict(self.metrics.get(target, {})))

    def real_targets(self) -> tuple[str, ...]:
        """The heads that met real skin conductance."""
        return tuple(t for t in self.targets if self.origin(t).data_kind == "real")

    def provenance_note(self) -> str | None:
        """One line saying which heads learned from real and which from synthetic data (None
        when every head met real data)."""
        real = self.real_targets()
        if len(real) == len(self.targets):
            return None
        if not real:
            return "trained on synthetic data only; its outputs demonstrate the pipeline and measure nothing"
        synthetic = [t for t in self.targets if t not in real]
        met = "; ".join(f"{t} head met real skin ({self.origin(t).dataset}: {self.origin(t).labels or 'labels'})"
                        for t in real)
        return f"{met}; {', '.join(synthetic)} {'head' if len(synthetic) == 1 else 'heads'} trained on " \
               "synthetic data only (measures nothing)"

    def with_updates(self, **changes: Any) -> ModelContract:
        """A copy with some fields replaced (contracts are frozen)."""
        return replace(self, **changes)

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain types only (dict, list, str, int, float, bool, None): safe in a checkpoint."""
        return {
            "contract_version": self.contract_version,
            "sample_rate_hz": self.sample_rate_hz,
            "window_samples": self.window_samples,
            "train_hop_samples": self.train_hop_samples,
            "input_unit": self.input_unit,
            "preprocessing": {
                "name": self.preprocessing.name,
                "version": self.preprocessing.version,
                "params": _plain(self.preprocessing.params),
            },
            "targets": list(self.targets),
            "class_names": list(self.class_names),
            "label_threshold": self.label_threshold,
            "label_rule": self.label_rule,
            "provenance": {f.name: getattr(self.provenance, f.name) for f in fields(Provenance)},
            "metrics": _plain(self.metrics),
            "model": _plain(self.model),
            "export": _plain(self.export),
            **({"target_provenance": {t: o.to_dict() for t, o in self.target_provenance.items()}}
               if self.target_provenance else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelContract:
        """Inverse of :meth:`to_dict`; refuses newer versions and unknown or malformed fields."""
        if not isinstance(data, Mapping):
            raise ContractError(f"a contract must be a mapping, got {type(data).__name__}")
        version = data.get("contract_version")
        if not isinstance(version, int):
            raise ContractError("contract has no integer contract_version", field="contract_version")
        if version > CONTRACT_VERSION:
            raise ContractError(
                f"model contract version {version} is newer than this emotionkd understands "
                f"(up to {CONTRACT_VERSION}); upgrade emotionkd (pip install -U emotionkd)",
                field="contract_version")
        if version < 1:
            raise ContractError(f"invalid contract_version {version}", field="contract_version")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ContractError(f"unknown contract fields {unknown}", field=unknown[0])
        try:
            kwargs: dict[str, Any] = dict(data)
            pre = data.get("preprocessing", {})
            kwargs["preprocessing"] = PreprocessingSpec(
                name=pre["name"], version=int(pre["version"]), params=dict(pre["params"]))
            if "provenance" in data:
                kwargs["provenance"] = Provenance(**data["provenance"])
            for name in ("targets", "class_names"):
                if name in data:
                    kwargs[name] = tuple(data[name])
            for name in ("metrics", "model", "export"):
                if name in data:
                    kwargs[name] = _plain(data[name])
            if "target_provenance" in data:
                if not isinstance(data["target_provenance"], Mapping):
                    raise ContractError("target_provenance must map targets to records", field="target_provenance")
                kwargs["target_provenance"] = {str(t): TargetProvenance.from_dict(o)
                                               for t, o in data["target_provenance"].items()}
            return cls(**kwargs)
        except ContractError:
            raise
        except (AttributeError, KeyError, OverflowError, TypeError, ValueError) as exc:  # e.g. a unit of null
            raise ContractError(f"malformed model contract: {exc}") from exc

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), stable across runs."""
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelContract:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ContractError(f"model contract is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def to_onnx_metadata(self) -> dict[str, str]:
        """Entries for an ONNX model's ``metadata_props``."""
        return {ONNX_METADATA_KEY: self.to_json()}

    @classmethod
    def from_onnx_metadata(cls, metadata: Mapping[str, str]) -> ModelContract:
        """Read the contract from ONNX metadata (``onnx`` ``metadata_props`` as a dict, or
        onnxruntime's ``custom_metadata_map``)."""
        if ONNX_METADATA_KEY not in metadata:
            raise ContractError(
                f"this ONNX file carries no emotionkd contract (metadata key {ONNX_METADATA_KEY!r}); "
                "export it with emotionkd-export", field=ONNX_METADATA_KEY)
        return cls.from_json(metadata[ONNX_METADATA_KEY])


def check_plausible_shape(sample_rate_hz: float, window_samples: int, train_hop_samples: int) -> None:
    """Refuse a contract whose rate, window or hop no model can have (bounds in
    :mod:`emotionkd.firmware_bridge.bounds`), before anything is sized from them.

    Raises:
        ContractError: naming the field and the allowed range.
    """
    if isinstance(sample_rate_hz, bool) or not isinstance(sample_rate_hz, (int, float)):
        raise ContractError(f"sample_rate_hz must be a number, got {sample_rate_hz!r}", field="sample_rate_hz")
    problem = rate_problem(sample_rate_hz)
    if problem is not None:
        raise ContractError(f"sample_rate_hz must be positive and plausible: {problem}", field="sample_rate_hz")
    for name, value, low in (("window_samples", window_samples, 2), ("train_hop_samples", train_hop_samples, 1)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ContractError(f"{name} must be an integer, got {value!r}", field=name)
        if not low <= value <= MAX_WINDOW_SAMPLES:
            raise ContractError(f"{name} must be >= {low} and at most {MAX_WINDOW_SAMPLES}, got {value}", field=name)
    if window_samples / sample_rate_hz > MAX_WINDOW_S:
        raise ContractError(f"a window of {window_samples / sample_rate_hz:g} s is longer than {MAX_WINDOW_S:g} s: "
                            "not an emotion window", field="window_samples")
    if train_hop_samples / sample_rate_hz > MAX_HOP_S:
        raise ContractError(f"a hop of {train_hop_samples / sample_rate_hz:g} s is longer than {MAX_HOP_S:g} s",
                            field="train_hop_samples")


def label_rule_operator(rule: str) -> str:
    """The contract's operator (``>`` or ``>=``) of a label rule given either way
    (``gt``/``ge`` as configurations spell it, or the operator itself).

    Raises:
        ContractError: any other rule.
    """
    operator = LABEL_RULE_WORDS.get(rule, rule)
    if operator not in LABEL_RULES:
        raise ContractError(f"label_rule must be one of {list(LABEL_RULE_WORDS)} or {list(LABEL_RULES)}, "
                            f"got {rule!r}", field="label_rule")
    return operator


__all__ = [
    "CONTRACT_VERSION",
    "DATA_KINDS",
    "LABEL_RULES",
    "LABEL_RULE_WORDS",
    "ONNX_METADATA_KEY",
    "ModelContract",
    "PreprocessingSpec",
    "Provenance",
    "TARGETS",
    "TargetProvenance",
    "check_plausible_shape",
    "label_rule_operator",
]
