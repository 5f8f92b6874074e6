"""An inference-only twin of a trained :class:`EmotionNetStudent`, rewritten for a faster ONNX graph.

The twin computes the same function as the eval-mode student (same input, same logits, up to
float32 rounding) from the same weights; only the arithmetic is arranged so that the exported
graph has fewer and cheaper operators on a CPU:

* **BatchNorm folded** into the layer before it (eval mode uses the running statistics, an
  affine map per feature): the temporal convolution's BN into the convolution, each score
  block's two BNs into their Linear layers;
* **Q, K, V in one GEMM**: the three 64 → 512 projections as one 64 → 1536 Linear, the 1/√D
  scale folded into the Q rows, then one head split; tokens stay 2-D ``(B·T, F)`` between blocks
  so that every Linear exports as a Gemm with its bias inside (no separate Add);
* **attention folded** for heads at least as wide as the tokens (the faithful 8 × 64 heads on
  64 features): keys are the tokens themselves, queries and values one GEMM each, and all
  heads' scores and weighted values two large products (:class:`_FoldedBlock`);
* **the classifier collapsed** to one Linear when its activation is ``none`` (the authors'
  model: four Linear layers with nothing between them are one affine map, composed in float64).

Measured alternatives that were slower and are not used (docs/performance.md): per-head
broadcast products without any head Transpose, and Q/K/V computed transposed (Wᵀ·xᵀ).

Only the export uses the twin; training, checkpoints and parameter counts are untouched. The
exporter's parity check still compares the ONNX graph with the *original* student.
"""

from __future__ import annotations

import copy
from typing import cast

import torch
from torch import Tensor, nn

from emotionkd.exporters.errors import ExportError
from emotionkd.training.models import (
    EmotionNetStudent,
    EncoderBlock,
    ModalityFilter,
    ScoreBlock,
)


def _bn_affine(norm: nn.modules.batchnorm._BatchNorm) -> tuple[Tensor, Tensor]:
    """Eval-mode BatchNorm as ``y = x * scale + shift`` per feature (float64)."""
    if norm.running_mean is None or norm.running_var is None:
        raise ExportError("cannot fold a BatchNorm without running statistics (track_running_stats=False)")
    weight = norm.weight.double() if norm.weight is not None else torch.ones_like(norm.running_mean, dtype=torch.float64)
    bias = norm.bias.double() if norm.bias is not None else torch.zeros_like(norm.running_mean, dtype=torch.float64)
    scale = weight / torch.sqrt(norm.running_var.double() + norm.eps)
    return scale, bias - norm.running_mean.double() * scale


def _folded_linear(linear: nn.Linear, norm: nn.modules.batchnorm._BatchNorm) -> nn.Linear:
    """Linear followed by eval-mode BN over its output features, as one Linear."""
    scale, shift = _bn_affine(norm)
    bias = linear.bias.double() if linear.bias is not None else torch.zeros(linear.out_features, dtype=torch.float64)
    fused = nn.Linear(linear.in_features, linear.out_features)
    fused.weight.data = (linear.weight.double() * scale[:, None]).float()
    fused.bias.data = (bias * scale + shift).float()
    return fused


class _TwinFilter(nn.Module):
    """Conv(+BN folded) → ReLU → spatial Conv: (B, W) → tokens (B, T, F) (one GSR channel)."""

    def __init__(self, source: ModalityFilter) -> None:
        super().__init__()
        conv = source.temporal
        scale, shift = _bn_affine(source.norm)
        kernel, stride = conv.kernel_size, conv.stride
        self.temporal = nn.Conv2d(conv.in_channels, conv.out_channels, (kernel[0], kernel[1]),
                                  stride=(stride[0], stride[1]))
        self.temporal.weight.data = (conv.weight.double() * scale[:, None, None, None]).float()
        conv_bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
        self.temporal.bias.data = (conv_bias * scale + shift).float()  # type: ignore[union-attr]  # bias=True above
        self.spatial = source.spatial

    def forward(self, gsr: Tensor) -> Tensor:
        h = torch.relu(self.temporal(gsr[:, None, None, :]))  # (B, F, 1, T)
        return self.spatial(h).squeeze(2).transpose(1, 2)


class _TwinBlock(nn.Module):
    """Post-LN encoder block on 2-D tokens ``(B·T, F)``: Q, K, V of all heads from one GEMM."""

    def __init__(self, source: EncoderBlock, tokens: int) -> None:
        super().__init__()
        att = source.attention
        self.heads, self.head_dim, self.tokens = att.heads, att.head_dim, tokens
        scale = torch.full((att.query.out_features,), att.scale, dtype=torch.float64)
        ones = torch.ones(att.key.out_features + att.value.out_features, dtype=torch.float64)
        factor = torch.cat([scale, ones])
        weight = torch.cat([att.query.weight, att.key.weight, att.value.weight]).double() * factor[:, None]
        bias = torch.cat([att.query.bias, att.key.bias, att.value.bias]).double() * factor
        self.qkv = nn.Linear(att.query.in_features, weight.shape[0])
        self.qkv.weight.data, self.qkv.bias.data = weight.float(), bias.float()
        self.out = att.out
        self.attention_norm = source.attention_norm
        self.ff = source.ff
        self.ff_norm = source.ff_norm

    def forward(self, x: Tensor) -> Tensor:
        """x: (B·T, F) → (B·T, F)."""
        h, d, t = self.heads, self.head_dim, self.tokens
        # one Transpose for all three: (B·T, 3·H·D) → (B, 3·H, T, D), then split along heads
        q, k, v = self.qkv(x).reshape(-1, t, 3 * h, d).transpose(1, 2).split(h, dim=1)
        weights = torch.softmax(torch.matmul(q, k.transpose(-1, -2)), dim=-1)  # scale folded in q
        context = torch.matmul(weights, v).transpose(1, 2).reshape(-1, h * d)  # (B·T, H·D)
        x = self.attention_norm(x + self.out(context))
        return self.ff_norm(x + self.ff(x))


def _per_head(weight: Tensor, heads: int) -> Tensor:
    """(H·D, F) → (H, D, F), float64."""
    return weight.double().reshape(heads, -1, weight.shape[-1])


class _FoldedBlock(nn.Module):
    """The encoder block with each head's attention folded into two F × F maps, for heads at
    least as wide as the tokens (``head_dim >= F``: the faithful student's 8 × 64 on 64 features).

    Per head, softmax(q·kᵀ) only needs ``x·(s·Wqᵀ·Wk)·xᵀ + x·(s·Wkᵀ·bq)`` (the terms of
    ``(x·Wqᵀ+bq)·(x·Wkᵀ+bk)ᵀ`` that are constant along a row cancel in the softmax), and the
    output projection of ``P·(x·Wvᵀ+bv)`` is ``P·x·(Wvᵀ·Woᵀ)`` plus a constant (P's rows sum to 1)
    that joins the output bias. So keys are the tokens themselves, shared by all heads; queries
    and values are one F → H·F GEMM each; all heads' scores are **one** (T·H, F)·(F, T) product
    and their weighted values **one** (T, H·T)·(H·T, F) product. Per block and window that is
    ~7.8 instead of ~11.8 million multiply-adds for 8 × 64 heads on 61 × 64 tokens, and two
    large products instead of 16 small ones (the maps are composed in float64).
    """

    def __init__(self, source: EncoderBlock, tokens: int) -> None:
        super().__init__()
        att = source.attention
        h, self.heads, self.tokens = att.heads, att.heads, tokens
        wq, wk, wv = (_per_head(m.weight, h) for m in (att.query, att.key, att.value))  # (H, D, F)
        bq, bv = att.query.bias.double().reshape(h, -1), att.value.bias.double().reshape(h, -1)  # (H, D)
        wo = att.out.weight.double().reshape(-1, h, att.head_dim).transpose(0, 1)  # (H, Fo, D)
        # queries: row h·F + j of the weight is column j of s·Wq_hᵀ·Wk_h (F × F); bias s·Wk_hᵀ·bq_h
        self.query = nn.Linear(att.query.in_features, h * att.query.in_features)
        self.query.weight.data = (att.scale * wk.transpose(1, 2) @ wq).reshape(-1, wq.shape[-1]).float()
        self.query.bias.data = (att.scale * torch.einsum("hdf,hd->hf", wk, bq)).reshape(-1).float()
        # values already projected: Wo_h·Wv_h (Fo × F) per head. The output bias (with the value
        # bias it absorbs) rides on the values, a share per head: the weights of a row sum to 1
        # per head, so P·(V + b/H) over H heads adds b once, and no separate Add is left
        out_bias = att.out.bias.double() + torch.einsum("hod,hd->o", wo, bv)
        self.value = nn.Linear(att.value.in_features, h * wo.shape[1])
        self.value.weight.data = (wo @ wv).reshape(-1, wv.shape[-1]).float()
        self.value.bias.data = (out_bias / h).repeat(h).float()
        self.attention_norm = source.attention_norm
        self.ff = source.ff
        self.ff_norm = source.ff_norm

    def forward(self, x: Tensor) -> Tensor:
        """x: (B·T, F) → (B·T, F)."""
        h, t, f = self.heads, self.tokens, x.shape[-1]
        queries = self.query(x).reshape(-1, t * h, f)  # rows (token, head)
        keys = x.reshape(-1, t, f).transpose(1, 2)  # (B, F, T)
        weights = torch.softmax(torch.matmul(queries, keys), dim=-1).reshape(-1, t, h * t)  # columns (head, key)
        values = self.value(x).reshape(-1, t, h, f).transpose(1, 2).reshape(-1, h * t, f)  # rows (head, key)
        attended = torch.matmul(weights, values).reshape(-1, f)
        x = self.attention_norm(x + attended)
        return self.ff_norm(x + self.ff(x))


def _twin_block(source: EncoderBlock, tokens: int) -> nn.Module:
    """The folded block where it needs fewer operations (heads at least as wide as the tokens)."""
    att = source.attention
    if att.head_dim >= att.query.in_features and att.out.out_features == att.query.in_features:
        return _FoldedBlock(source, tokens)
    return _TwinBlock(source, tokens)


class _TwinScore(nn.Module):
    """Softsign(Linear'(ReLU(Linear'(x)))) with both BatchNorms folded into the Linears."""

    def __init__(self, source: ScoreBlock) -> None:
        super().__init__()
        self.first = _folded_linear(source.first, source.first_norm)
        self.second = _folded_linear(source.second, source.second_norm)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.softsign(self.second(torch.relu(self.first(x))))


def _collapsed_classifier(layers: nn.Sequential) -> nn.Module:
    """The classifier without dropout; consecutive Linears with no activation become one."""
    kept = [m for m in layers if not isinstance(m, (nn.Dropout, nn.Identity))]
    linears = [m for m in kept if isinstance(m, nn.Linear)]
    if len(linears) != len(kept):
        return nn.Sequential(*kept)
    weight = linears[0].weight.double()
    bias = linears[0].bias.double()
    for linear in linears[1:]:
        weight = linear.weight.double() @ weight
        bias = linear.weight.double() @ bias + linear.bias.double()
    fused = nn.Linear(weight.shape[1], weight.shape[0])
    fused.weight.data, fused.bias.data = weight.float(), bias.float()
    return fused


class InferenceStudent(nn.Module):
    """Eval-mode twin of an :class:`EmotionNetStudent`: ``forward(gsr (B, W)) → logits (B, 2)``.

    Built from (a copy of) the student's weights; the student itself is not changed. Raises
    :class:`ExportError` for a student this rewrite does not cover (more than one input channel).
    """

    def __init__(self, student: EmotionNetStudent) -> None:
        super().__init__()
        if not isinstance(student, EmotionNetStudent):
            raise ExportError(f"the inference twin needs an EmotionNetStudent, got {type(student).__name__}")
        if student.encoder.filter.spatial.kernel_size[0] != 1:
            raise ExportError("the inference twin covers one-channel (GSR) students only")
        # a private copy: the twin reuses some of its modules and freezes them for inference
        student = copy.deepcopy(student)
        encoder = student.encoder
        with torch.no_grad():
            self.filter = _TwinFilter(encoder.filter)
            self.position = nn.Parameter(encoder.position.detach()[: encoder.tokens].clone(), requires_grad=False)
            # (a ModuleList types its items as Module; the student's hold these blocks)
            self.blocks = nn.ModuleList(_twin_block(cast(EncoderBlock, b), encoder.tokens) for b in encoder.blocks)
            self.scores = nn.ModuleList(_TwinScore(cast(ScoreBlock, s)) for s in student.scores)
            self.classifier = _collapsed_classifier(student.classifier.layers)
        self.pooled = student.config.readout == "pool"
        self.eval()
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    def forward(self, gsr: Tensor) -> Tensor:
        tokens, features = self.position.shape
        h = (self.filter(gsr) + self.position).reshape(-1, features)  # (B·T, F)
        fused: Tensor | None = None
        for block, score in zip(self.blocks, self.scores, strict=True):
            h = block(h)
            term = score(h) * h
            fused = term if fused is None else fused + term
        assert fused is not None
        if self.pooled:
            fused = fused.reshape(-1, tokens, features)
            return self.classifier(torch.cat([fused.mean(1), fused.amax(1)], dim=1))
        return self.classifier(fused.reshape(-1, tokens * features))


def inference_twins(students: dict[str, nn.Module]) -> dict[str, nn.Module]:
    """Each :class:`EmotionNetStudent` replaced by its :class:`InferenceStudent`; other modules kept."""
    return {t: InferenceStudent(s) if isinstance(s, EmotionNetStudent) else s for t, s in students.items()}


__all__ = ["InferenceStudent", "inference_twins"]
