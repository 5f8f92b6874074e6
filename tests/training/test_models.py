"""EmotionNet-Teacher / EmotionNet-Student: parameter counts, shapes, options, export-ability."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.training.models import (
    EmotionNetStudent,
    EmotionNetTeacher,
    StudentConfig,
    TeacherConfig,
    WideHeadAttention,
    count_parameters,
    l2_penalty,
    read_out,
)

TINY = dict(window_samples=64, kernel_samples=8, stride_samples=4, filters=8, heads=2, head_dim=4,
            ff_dim=8, hidden=8, max_positions=16)


def _bn_statistics(model: nn.Module) -> int:
    return sum(m.running_mean.numel() + m.running_var.numel()
               for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))


def test_faithful_teacher_has_the_papers_parameter_count() -> None:
    teacher = EmotionNetTeacher(TeacherConfig())
    # 2,047,490 = 2,046,210 trainable parameters + 1,280 BatchNorm running mean/var values
    # (num_batches_tracked counters are not part of the Keras count).
    assert count_parameters(teacher) == 2_047_490
    assert _bn_statistics(teacher) == 1_280
    assert sum(p.numel() for p in teacher.parameters()) == 2_046_210


def test_faithful_student_has_the_papers_parameter_count() -> None:
    student = EmotionNetStudent(StudentConfig())
    assert count_parameters(student) == 993_986
    assert _bn_statistics(student) == 896
    assert sum(p.numel() for p in student.parameters()) == 993_090


def test_literal_fusion_keeps_the_count_but_starves_the_third_eeg_encoder() -> None:
    torch.manual_seed(0)
    teacher = EmotionNetTeacher(TeacherConfig(fusion="literal"))
    assert count_parameters(teacher) == 2_047_490
    eeg, gsr = torch.randn(3, 28, 512), torch.randn(3, 512)
    teacher(eeg, gsr).sum().backward()
    third = teacher.eeg_encoder.blocks[2].attention.query.weight.grad
    assert third is None or torch.count_nonzero(third) == 0
    fixed = EmotionNetTeacher(TeacherConfig())
    fixed(eeg, gsr).sum().backward()
    assert torch.count_nonzero(fixed.eeg_encoder.blocks[2].attention.query.weight.grad) > 0


def test_faithful_shapes_and_fused_feature_sizes() -> None:
    teacher, student = EmotionNetTeacher(), EmotionNetStudent()
    assert teacher.config.tokens == 61 and student.config.tokens == 61
    assert teacher.config.fused_features == 7808 and student.config.fused_features == 3904
    eeg, gsr = torch.randn(2, 28, 512), torch.randn(2, 512)
    logits, feature = teacher.forward_with_features(eeg, gsr)
    assert logits.shape == (2, 2) and feature.shape == (2, 7808)
    logits, feature = student.forward_with_features(gsr)
    assert logits.shape == (2, 2) and feature.shape == (2, 3904)
    assert student(gsr).shape == (2, 2)


def test_attention_has_eight_heads_of_64_dims() -> None:
    attention = WideHeadAttention(StudentConfig())
    assert attention.query.weight.shape == (512, 64) and attention.out.weight.shape == (64, 512)
    assert attention.scale == pytest.approx(1 / 8)


def test_attention_matches_a_reference_computation() -> None:
    torch.manual_seed(1)
    cfg = StudentConfig(**TINY)
    attention = WideHeadAttention(cfg)
    x = torch.randn(2, 5, cfg.filters)
    q, k, v = attention.query(x), attention.key(x), attention.value(x)
    heads = []
    for h in range(cfg.heads):
        sl = slice(h * cfg.head_dim, (h + 1) * cfg.head_dim)
        w = torch.softmax(q[..., sl] @ k[..., sl].transpose(1, 2) / cfg.head_dim ** 0.5, dim=-1)
        heads.append(w @ v[..., sl])
    expected = attention.out(torch.cat(heads, dim=-1))
    torch.testing.assert_close(attention(x), expected)


def test_config_round_trip_and_validation() -> None:
    cfg = TeacherConfig(fusion="literal", classifier_activation="relu")
    assert TeacherConfig.from_dict(cfg.to_dict()) == cfg
    student = StudentConfig(**TINY)
    assert StudentConfig.from_dict(student.to_dict()) == student
    assert cfg.student_config().window_samples == cfg.window_samples
    with pytest.raises(ConfigError, match="fusion"):
        TeacherConfig(fusion="late")
    with pytest.raises(ConfigError, match="unknown"):
        StudentConfig.from_dict({"widht": 3})
    with pytest.raises(ConfigError, match="max_positions"):
        StudentConfig(window_samples=1024)
    with pytest.raises(ConfigError, match="classifier_activation"):
        StudentConfig(classifier_activation="tanh")


def test_classifier_activation_option_changes_the_function() -> None:
    torch.manual_seed(2)
    linear = EmotionNetStudent(StudentConfig(**TINY)).eval()
    torch.manual_seed(2)
    relu = EmotionNetStudent(StudentConfig(**TINY, classifier_activation="relu")).eval()
    x = torch.randn(4, 64)
    assert not torch.allclose(linear(x), relu(x))


def test_pooled_readout_reads_token_means_and_maxima_whatever_their_order() -> None:
    with pytest.raises(ConfigError, match="readout"):
        StudentConfig(readout="attention")
    cfg = StudentConfig(**TINY, readout="pool")
    assert cfg.readout_features == 2 * cfg.filters and StudentConfig(**TINY).readout_features == cfg.fused_features
    feature = torch.randn(3, cfg.tokens, cfg.filters)
    pooled = read_out(feature.flatten(1), cfg)
    torch.testing.assert_close(pooled, torch.cat([feature.mean(1), feature.amax(1)], 1))
    # the same tokens in another order (a response earlier or later in the window): same input to the classifier
    shuffled = feature[:, torch.randperm(cfg.tokens, generator=torch.Generator().manual_seed(0))]
    torch.testing.assert_close(read_out(shuffled.flatten(1), cfg), pooled)
    assert not torch.allclose(read_out(shuffled.flatten(1), StudentConfig(**TINY)), feature.flatten(1))
    student = EmotionNetStudent(cfg).eval()
    logits, fused = student.forward_with_features(torch.randn(4, cfg.window_samples))
    assert logits.shape == (4, 2) and fused.shape == (4, cfg.fused_features)  # KD matches the same feature
    teacher_cfg = TeacherConfig(**TINY, readout="pool", eeg_channels=3)
    assert teacher_cfg.readout_features == 4 * cfg.filters
    two = torch.randn(2, 2 * cfg.tokens, cfg.filters)  # EEG tokens, then GSR tokens: pooled apart
    eeg, gsr = two[:, : cfg.tokens], two[:, cfg.tokens:]
    expected = torch.cat([eeg.mean(1), eeg.amax(1), gsr.mean(1), gsr.amax(1)], 1)
    torch.testing.assert_close(read_out(two.flatten(1), teacher_cfg), expected)
    teacher = EmotionNetTeacher(teacher_cfg).eval()
    assert teacher(torch.randn(2, 3, 64), torch.randn(2, 64)).shape == (2, 2)
    assert count_parameters(student) < count_parameters(EmotionNetStudent(StudentConfig(**TINY)))


def test_l2_penalty_covers_conv_kernels_only() -> None:
    student = EmotionNetStudent(StudentConfig(**TINY))
    expected = sum((m.weight ** 2).sum() for m in student.modules() if isinstance(m, nn.Conv2d))
    torch.testing.assert_close(l2_penalty(student, 1e-3), 1e-3 * expected)


def test_student_traces_to_one_static_graph() -> None:
    student = EmotionNetStudent(StudentConfig(**TINY)).eval()
    x = torch.randn(3, 64)
    # A dynamic batch dimension proves the forward has no data- or shape-dependent branches.
    batch = torch.export.Dim("batch", min=1)
    exported = torch.export.export(student, (torch.randn(2, 64),), dynamic_shapes=({0: batch},))
    torch.testing.assert_close(exported.module()(x), student(x))
