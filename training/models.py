"""EmotionNet-Teacher (EEG+GSR) and EmotionNet-Student (GSR only), as in METHOD.md.

Shapes for one 4 s window at 128 Hz (W = 512 samples):

* modality filter: Conv(1×32, stride 8, 64 filters) → BN → ReLU → "spatial" Conv over the
  channels (28×1 EEG, 1×1 GSR) → Dropout 0.3  ⇒  61 tokens × 64 features;
* learned positional embedding (64 positions × 64; the first 61 are used);
* 3 post-LayerNorm transformer encoder blocks per modality, attention with 8 heads of
  **64 dims each** (Q, K, V: 64 → 512, out 512 → 64, scale 1/8): not ``nn.MultiheadAttention(64, 8)``,
  which splits 64 dims into 8 heads of 8;
* fusion: teacher IMF over the concatenated EEG+GSR tokens (122 × 64 → 7808 features), student
  multi-depth fusion over its three encoder outputs (61 × 64 → 3904 features);
* classifier: Dropout 0.5 → Linear 128 → Linear 128 → Linear 128 → Linear 2.

With the faithful configuration the teacher has 2,047,490 and the student 993,986 "parameters"
in the sense of the authors' Keras summary, which counts BatchNorm moving mean and variance:
:func:`count_parameters` reproduces that count (trainable parameters + BN running mean/var,
never ``num_batches_tracked``).

Every forward is free of data-dependent Python control flow (all choices are made in
``__init__`` from the frozen config), so the student exports to ONNX as one static graph.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

import torch
from torch import Tensor, nn

from emotionkd.firmware_bridge.errors import ConfigError

EEG_CHANNELS: Final = 28
FUSIONS: Final = ("fixed", "literal")
ACTIVATIONS: Final = ("none", "relu", "gelu")
#: how the classifier reads the fused feature: ``flatten`` (the authors': every token's features,
#: position by position) or ``pool`` (each feature's mean and maximum over the tokens)
READOUTS: Final = ("flatten", "pool")


def _check_common(cfg: Any) -> None:
    """Validate the fields teacher and student configs share (names the field and the fix)."""
    if cfg.window_samples < cfg.kernel_samples:
        raise ConfigError(
            f"window_samples ({cfg.window_samples}) must be >= kernel_samples ({cfg.kernel_samples})")
    for name in ("kernel_samples", "stride_samples", "filters", "heads", "head_dim", "ff_dim",
                 "blocks", "hidden", "classes", "max_positions"):
        value = getattr(cfg, name)
        if not (isinstance(value, int) and value >= 1):
            raise ConfigError(f"model option {name} must be a positive integer, got {value!r}")
    if cfg.tokens > cfg.max_positions:
        raise ConfigError(
            f"{cfg.tokens} tokens per window exceed max_positions={cfg.max_positions}; "
            "raise max_positions or shorten the window")
    for name in ("filter_dropout", "attention_dropout", "classifier_dropout"):
        value = getattr(cfg, name)
        if not (0.0 <= value < 1.0):
            raise ConfigError(f"model option {name} must be in [0, 1), got {value!r}")
    if cfg.classifier_activation not in ACTIVATIONS:
        raise ConfigError(
            f"classifier_activation must be one of {ACTIVATIONS}, got {cfg.classifier_activation!r}")
    if not 0.0 < cfg.batch_norm_momentum <= 1.0:
        raise ConfigError(f"batch_norm_momentum must be in (0, 1], got {cfg.batch_norm_momentum!r}")
    if cfg.readout not in READOUTS:
        raise ConfigError(f"readout must be one of {READOUTS}, got {cfg.readout!r}")
    if not cfg.layer_norm_eps > 0:
        raise ConfigError(f"layer_norm_eps must be positive, got {cfg.layer_norm_eps!r}")


@dataclass(frozen=True)
class _EncoderConfig:
    """The options teacher and student share (one GSR/EEG filter + encoder + classifier), with
    ``to_dict``/``from_dict`` (plain types only). Defaults are the faithful model.

    Attributes:
        window_samples: input samples per window (512 = 4 s at 128 Hz).
        kernel_samples / stride_samples: temporal convolution kernel and stride (samples).
        filters: convolution filters = token width (64).
        heads / head_dim: attention heads and per-head width (8 × 64).
        ff_dim: feed-forward hidden width (64).
        blocks: encoder blocks (3; multi-depth fusion uses each block's output).
        hidden: classifier hidden width (128).
        classes: output classes (2: low, high).
        max_positions: rows of the learned positional embedding (64).
        filter_dropout / attention_dropout / classifier_dropout: 0.3 / 0.1 / 0.5.
        classifier_activation: between the classifier's Linear layers; ``none`` is the authors'.
        layer_norm_eps: 1e-6 as in the authors' Keras code.
        batch_norm_momentum: PyTorch momentum of the BatchNorm running statistics; 0.01 is
            Keras' default 0.99 (short trainings may prefer 0.1).
        readout: what the classifier reads: ``flatten`` (the authors': the whole fused feature,
            tokens × filters, so every position has its own weights) or ``pool`` (per filter the
            mean and the maximum over the tokens, 2 × filters per modality — the teacher pools
            its EEG and its GSR tokens apart: the same answer wherever in the window a
            skin-conductance response falls). Distillation matches the fused feature before the
            readout, so it is the same for both.
    """

    window_samples: int = 512
    kernel_samples: int = 32
    stride_samples: int = 8
    filters: int = 64
    heads: int = 8
    head_dim: int = 64
    ff_dim: int = 64
    blocks: int = 3
    hidden: int = 128
    classes: int = 2
    max_positions: int = 64
    filter_dropout: float = 0.3
    attention_dropout: float = 0.1
    classifier_dropout: float = 0.5
    classifier_activation: str = "none"
    layer_norm_eps: float = 1e-6
    batch_norm_momentum: float = 0.01
    readout: str = "flatten"

    def __post_init__(self) -> None:
        _check_common(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.__name__} must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} fields {unknown}; known: {sorted(known)}")
        try:
            return cls(**dict(data))
        except TypeError as exc:
            raise ConfigError(f"invalid {cls.__name__}: {exc}") from exc

    @property
    def tokens(self) -> int:
        """Tokens per window after the strided convolution (61 for 512/32/8)."""
        return (self.window_samples - self.kernel_samples) // self.stride_samples + 1

    @property
    def feature_tokens(self) -> int:
        raise NotImplementedError

    @property
    def fused_features(self) -> int:
        """Length of the flattened fused feature (teacher 7808, student 3904)."""
        return self.feature_tokens * self.filters

    @property
    def readout_features(self) -> int:
        """Length of what the classifier reads: :attr:`fused_features` (``flatten``) or
        2 × filters per modality (``pool``: mean and maximum over each modality's tokens;
        student 128, teacher 256 at 64 filters)."""
        modalities = self.feature_tokens // self.tokens
        return self.fused_features if self.readout == "flatten" else 2 * self.filters * modalities


@dataclass(frozen=True)
class StudentConfig(_EncoderConfig):
    """EmotionNet-Student options (the shared encoder options of :class:`_EncoderConfig`); the
    defaults are the faithful model (993,986 parameters)."""

    @property
    def feature_tokens(self) -> int:
        return self.tokens


@dataclass(frozen=True)
class TeacherConfig(_EncoderConfig):
    """EmotionNet-Teacher options; the defaults are the faithful model (2,047,490 parameters).

    The shared encoder options are those of :class:`StudentConfig`; in addition:

    Attributes:
        eeg_channels: EEG channels (28, METHOD.md order).
        fusion: ``fixed`` (IMF(E1,G1,E2,G2) + IMF(E2,G2,E3,G3)) or ``literal``, the authors'
            code, whose second IMF branch pairs E_a with G_b so the third EEG encoder never learns.
    """

    eeg_channels: int = EEG_CHANNELS
    fusion: str = "fixed"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fusion not in FUSIONS:
            raise ConfigError(f"teacher fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.blocks != 3:
            # IMF is defined on exactly three encoder outputs per modality.
            raise ConfigError(f"the teacher's IMF fusion needs blocks=3, got {self.blocks}")
        if not (isinstance(self.eeg_channels, int) and self.eeg_channels >= 1):
            raise ConfigError(f"eeg_channels must be a positive integer, got {self.eeg_channels!r}")

    @property
    def feature_tokens(self) -> int:
        return 2 * self.tokens

    def student_config(self) -> StudentConfig:
        """The student whose shapes match this teacher's GSR branch."""
        shared = {f.name: getattr(self, f.name) for f in fields(StudentConfig)}
        return StudentConfig(**shared)


#: The compact student for the edge (``emotionkd-train ... --preset compact``, or these options
#: under ``[student]``): the faithful student with 2 heads of 32 dims (Q/K/V 64 → 64 instead of
#: 64 → 512) and one encoder block (multi-depth fusion over that block). Chosen by measurement
#: (docs/performance.md): 6.8 MFLOP per target instead of 78.6, and ~6× less onnxruntime INT8
#: time per window pair at batch 1; two blocks were only 3.5-4× faster (per-op overhead, not
#: FLOPs, is what remains at this size). Same input, tokens, feature size (3904, so the same
#: distillation matches it) and contract.
COMPACT_STUDENT_OPTIONS: Final[Mapping[str, int]] = types.MappingProxyType({"heads": 2, "head_dim": 32, "blocks": 1})


def compact_student_config(**overrides: Any) -> StudentConfig:
    """:data:`COMPACT_STUDENT_OPTIONS` on the faithful defaults (``overrides`` on top)."""
    return StudentConfig(**{**COMPACT_STUDENT_OPTIONS, **overrides})


# --- building blocks ------------------------------------------------------------------------
class ModalityFilter(nn.Module):
    """Conv(1×k, stride s) → BN → ReLU → spatial Conv(C×1) → Dropout: (B, C, W) → (B, T, F)."""

    def __init__(self, channels: int, cfg: StudentConfig | TeacherConfig) -> None:
        super().__init__()
        self.temporal = nn.Conv2d(1, cfg.filters, (1, cfg.kernel_samples), stride=(1, cfg.stride_samples))
        # Keras BatchNormalization defaults: momentum 0.99 (torch: 0.01), eps 1e-3.
        self.norm = nn.BatchNorm2d(cfg.filters, eps=1e-3, momentum=cfg.batch_norm_momentum)
        self.spatial = nn.Conv2d(cfg.filters, cfg.filters, (channels, 1))
        self.dropout = nn.Dropout(cfg.filter_dropout)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, W) → tokens (B, T, F)."""
        h = torch.relu(self.norm(self.temporal(x.unsqueeze(1))))  # (B, F, C, T)
        h = self.spatial(h).squeeze(2)  # (B, F, T)
        return self.dropout(h.transpose(1, 2))


class WideHeadAttention(nn.Module):
    """Self-attention with ``heads`` heads of ``head_dim`` each: Q, K, V project F → heads·head_dim."""

    def __init__(self, cfg: StudentConfig | TeacherConfig) -> None:
        super().__init__()
        inner = cfg.heads * cfg.head_dim
        self.heads = cfg.heads
        self.head_dim = cfg.head_dim
        self.scale = cfg.head_dim ** -0.5  # 1/8 for 64-dim heads
        self.query = nn.Linear(cfg.filters, inner)
        self.key = nn.Linear(cfg.filters, inner)
        self.value = nn.Linear(cfg.filters, inner)
        self.out = nn.Linear(inner, cfg.filters)

    def _split(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return x.reshape(b, t, self.heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, F) → (B, T, F)."""
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        weights = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        context = torch.matmul(weights, v).transpose(1, 2)  # (B, T, H, D)
        return self.out(context.flatten(2))


class EncoderBlock(nn.Module):
    """Post-LN transformer block: x = LN(x + drop(attn(x))); x = LN(x + drop(ff(x)))."""

    def __init__(self, cfg: StudentConfig | TeacherConfig) -> None:
        super().__init__()
        self.attention = WideHeadAttention(cfg)
        self.attention_dropout = nn.Dropout(cfg.attention_dropout)
        self.attention_norm = nn.LayerNorm(cfg.filters, eps=cfg.layer_norm_eps)
        self.ff = nn.Sequential(
            nn.Linear(cfg.filters, cfg.ff_dim), nn.ReLU(), nn.Linear(cfg.ff_dim, cfg.filters))
        self.ff_dropout = nn.Dropout(cfg.attention_dropout)
        self.ff_norm = nn.LayerNorm(cfg.filters, eps=cfg.layer_norm_eps)

    def forward(self, x: Tensor) -> Tensor:
        x = self.attention_norm(x + self.attention_dropout(self.attention(x)))
        return self.ff_norm(x + self.ff_dropout(self.ff(x)))


class ScoreBlock(nn.Module):
    """Per-token gate S(x) = Softsign(BN(Linear(ReLU(BN(Linear(x)))))): (B, T, F) → (B, T, F).

    BatchNorm normalises each feature over batch and tokens, as Keras does on the last axis.
    """

    def __init__(self, features: int, momentum: float) -> None:
        super().__init__()
        self.first = nn.Linear(features, features)
        self.first_norm = nn.BatchNorm1d(features, eps=1e-3, momentum=momentum)
        self.second = nn.Linear(features, features)
        self.second_norm = nn.BatchNorm1d(features, eps=1e-3, momentum=momentum)

    def forward(self, x: Tensor) -> Tensor:
        h = self.first_norm(self.first(x).transpose(1, 2)).transpose(1, 2)
        h = self.second_norm(self.second(torch.relu(h)).transpose(1, 2)).transpose(1, 2)
        return nn.functional.softsign(h)


class Classifier(nn.Module):
    """Dropout → Linear hidden → Linear hidden → Linear hidden → Linear classes."""

    def __init__(self, in_features: int, cfg: StudentConfig | TeacherConfig) -> None:
        super().__init__()
        act: type[nn.Module] = {"none": nn.Identity, "relu": nn.ReLU, "gelu": nn.GELU}[cfg.classifier_activation]
        self.layers = nn.Sequential(
            nn.Dropout(cfg.classifier_dropout),
            nn.Linear(in_features, cfg.hidden), act(),
            nn.Linear(cfg.hidden, cfg.hidden), act(),
            nn.Linear(cfg.hidden, cfg.hidden), act(),
            nn.Linear(cfg.hidden, cfg.classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class ModalityEncoder(nn.Module):
    """Filter → positional embedding → encoder blocks; returns every block's output."""

    def __init__(self, channels: int, cfg: StudentConfig | TeacherConfig) -> None:
        super().__init__()
        self.filter = ModalityFilter(channels, cfg)
        self.position = nn.Parameter(torch.empty(cfg.max_positions, cfg.filters))
        nn.init.normal_(self.position, std=0.02)
        self.tokens = cfg.tokens
        self.blocks = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.blocks))

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: (B, C, W) → [H1, H2, H3], each (B, T, F)."""
        h = self.filter(x) + self.position[: self.tokens]
        outputs = []
        for block in self.blocks:
            h = block(h)
            outputs.append(h)
        return outputs


def read_out(feature: Tensor, cfg: StudentConfig | TeacherConfig) -> Tensor:
    """The classifier's input from a flattened fused feature (B, M·T·F), M modalities of T
    tokens (student 1, teacher 2: EEG tokens first): itself (``flatten``) or per modality and
    filter the mean and the maximum over its T tokens, (B, M·2F) (``pool``)."""
    if cfg.readout == "flatten":
        return feature
    tokens = feature.reshape(feature.shape[0], cfg.feature_tokens // cfg.tokens, cfg.tokens, cfg.filters)
    return torch.cat([tokens.mean(2), tokens.amax(2)], dim=2).flatten(1)


# --- the two networks -----------------------------------------------------------------------
class EmotionNetStudent(nn.Module):
    """GSR-only student: ``forward(gsr (B, W)) → logits (B, 2)``."""

    def __init__(self, config: StudentConfig | None = None) -> None:
        super().__init__()
        self.config = config or StudentConfig()
        self.encoder = ModalityEncoder(1, self.config)
        self.scores = nn.ModuleList(ScoreBlock(self.config.filters, self.config.batch_norm_momentum) for _ in range(self.config.blocks))
        self.classifier = Classifier(self.config.readout_features, self.config)

    def features(self, gsr: Tensor) -> Tensor:
        """Multi-depth fused feature ``Σ_i S_i(H_i) ⊙ H_i``, flattened: (B, W) → (B, 3904)."""
        hidden = self.encoder(gsr.unsqueeze(1))
        fused = sum(score(h) * h for score, h in zip(self.scores, hidden, strict=True))
        return fused.flatten(1)

    def forward_with_features(self, gsr: Tensor) -> tuple[Tensor, Tensor]:
        """(logits (B, 2), fused feature (B, 3904))."""
        feature = self.features(gsr)
        return self.classifier(read_out(feature, self.config)), feature

    def forward(self, gsr: Tensor) -> Tensor:
        """gsr: (B, W) float32 preprocessed windows → logits (B, 2)."""
        return self.forward_with_features(gsr)[0]


class EmotionNetTeacher(nn.Module):
    """EEG+GSR teacher: ``forward(eeg (B, 28, W), gsr (B, W)) → logits (B, 2)``.

    The fused feature lays the EEG tokens first (0–60) and the GSR tokens second (61–121),
    each token's 64 features contiguous, so the GSR half is ``feature[:, 3904:]``.
    """

    def __init__(self, config: TeacherConfig | None = None) -> None:
        super().__init__()
        self.config = config or TeacherConfig()
        self.eeg_encoder = ModalityEncoder(self.config.eeg_channels, self.config)
        self.gsr_encoder = ModalityEncoder(1, self.config)
        # IMF(a, b) twice, each with a score block for X_a and one for X_b.
        self.scores = nn.ModuleList(ScoreBlock(self.config.filters, self.config.batch_norm_momentum) for _ in range(4))
        self.classifier = Classifier(self.config.readout_features, self.config)
        self._literal = self.config.fusion == "literal"

    def _imf(self, index: int, ea: Tensor, ga: Tensor, eb: Tensor, gb: Tensor) -> Tensor:
        xa = torch.cat([ea, ga], dim=1)  # (B, 2T, F)
        # The authors' code builds X_b from E_a (their bug); the fixed form uses E_b.
        xb = torch.cat([ea if self._literal else eb, gb], dim=1)
        return self.scores[2 * index](xa) * xa + self.scores[2 * index + 1](xb) * xb

    def features(self, eeg: Tensor, gsr: Tensor) -> Tensor:
        """IMF(E1,G1,E2,G2) + IMF(E2,G2,E3,G3), flattened: → (B, 7808)."""
        e1, e2, e3 = self.eeg_encoder(eeg)
        g1, g2, g3 = self.gsr_encoder(gsr.unsqueeze(1))
        fused = self._imf(0, e1, g1, e2, g2) + self._imf(1, e2, g2, e3, g3)
        return fused.flatten(1)

    def forward_with_features(self, eeg: Tensor, gsr: Tensor) -> tuple[Tensor, Tensor]:
        """(logits (B, 2), fused feature (B, 7808))."""
        feature = self.features(eeg, gsr)
        return self.classifier(read_out(feature, self.config)), feature

    def forward(self, eeg: Tensor, gsr: Tensor) -> Tensor:
        return self.forward_with_features(eeg, gsr)[0]


def count_parameters(model: nn.Module) -> int:
    """Parameters as the authors' Keras summary counts them: every parameter plus the BatchNorm
    running mean and variance (``num_batches_tracked`` is a PyTorch counter, not a statistic)."""
    total = sum(p.numel() for p in model.parameters())
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            assert module.running_mean is not None and module.running_var is not None
            total += module.running_mean.numel() + module.running_var.numel()
    return total


def conv_kernels(model: nn.Module) -> list[Tensor]:
    """The convolution kernels (weights, not biases) that carry the L2 penalty."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]


def l2_penalty(model: nn.Module, coefficient: float) -> Tensor:
    """``coefficient · Σ W²`` over the convolution kernels (Keras kernel_regularizer=l2)."""
    kernels = conv_kernels(model)
    return coefficient * sum((w * w).sum() for w in kernels)  # type: ignore[return-value]


def describe(model: EmotionNetStudent | EmotionNetTeacher) -> dict[str, Any]:
    """Architecture description for a model contract (name, options, parameter count)."""
    return {
        "name": "EmotionNet-Student" if isinstance(model, EmotionNetStudent) else "EmotionNet-Teacher",
        "config": model.config.to_dict(),
        "parameters": count_parameters(model),
        "fused_features": model.config.fused_features,
    }


__all__ = [
    "ACTIVATIONS",
    "READOUTS",
    "COMPACT_STUDENT_OPTIONS",
    "FUSIONS",
    "EmotionNetStudent",
    "EmotionNetTeacher",
    "StudentConfig",
    "TeacherConfig",
    "compact_student_config",
    "conv_kernels",
    "count_parameters",
    "describe",
    "l2_penalty",
    "read_out",
]
