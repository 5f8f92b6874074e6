"""The export-time inference twin computes the original student's function (≤ 1e-5 on logits)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from emotionkd.exporters.errors import ExportError
from emotionkd.exporters.inference_twin import InferenceStudent, inference_twins
from emotionkd.training.models import EmotionNetStudent, StudentConfig, count_parameters


def _randomised(config: StudentConfig, seed: int) -> EmotionNetStudent:
    """Random weights with BatchNorm affine parameters and running statistics far from identity."""
    torch.manual_seed(seed)
    model = EmotionNetStudent(config)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                assert module.running_mean is not None and module.running_var is not None  # track_running_stats
                module.running_mean.normal_(0.0, 0.5)
                module.running_var.uniform_(0.2, 3.0)
                module.weight.normal_(1.0, 0.5)
                module.bias.normal_(0.0, 0.3)
    return model.eval()


@pytest.mark.parametrize(("config", "seed"), [
    (StudentConfig(), 0),  # the faithful student: 8 heads of 64, classifier activation none
    (StudentConfig(filters=8, heads=2, head_dim=4, ff_dim=8, hidden=8), 1),
    (StudentConfig(filters=16, heads=3, head_dim=8, ff_dim=12, hidden=16, classifier_activation="relu"), 2),
    (StudentConfig(filters=16, heads=4, head_dim=4, ff_dim=8, hidden=8, blocks=2, classifier_activation="gelu"), 3),
    (StudentConfig(filters=8, heads=3, head_dim=12, ff_dim=8, hidden=8, blocks=2), 6),  # folded heads, H·D ≠ F
    (StudentConfig(heads=2, head_dim=32, blocks=1, readout="pool"), 9),  # pooled readout
    (StudentConfig(filters=8, heads=2, head_dim=4, ff_dim=8, hidden=8, readout="pool",
                   classifier_activation="relu"), 10),
])
def test_twin_equals_the_student(config: StudentConfig, seed: int) -> None:
    student = _randomised(config, seed)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    twin = InferenceStudent(student)
    gsr = torch.randn(5, config.window_samples, generator=torch.Generator().manual_seed(seed)) * 2.0
    with torch.no_grad():
        expected, got = student(gsr), twin(gsr)
        single = twin(gsr[:1])
    assert got.shape == expected.shape == (5, config.classes)
    assert expected.abs().max() > 1e-3  # a meaningful comparison, not two zeros
    assert torch.allclose(got, expected, rtol=0, atol=1e-5), (got - expected).abs().max()
    assert torch.allclose(single, expected[:1], rtol=0, atol=1e-5)
    # the student is untouched: same weights, same statistics, same parameter count
    after = student.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.requires_grad for p in student.parameters()) and not student.training
    assert count_parameters(student) == count_parameters(EmotionNetStudent(config))
    assert not any(p.requires_grad for p in twin.parameters())


def test_batchnorm_really_folded_and_heads_fused() -> None:
    twin = InferenceStudent(_randomised(StudentConfig(filters=8, heads=2, head_dim=4, ff_dim=8, hidden=8), 4))
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in twin.modules())
    block = twin.blocks[0]
    assert block.qkv.weight.shape == (3 * 2 * 4, 8)


def test_heads_at_least_as_wide_as_the_tokens_are_folded_narrower_ones_are_not() -> None:
    from emotionkd.exporters.inference_twin import _FoldedBlock, _TwinBlock
    from emotionkd.training.models import compact_student_config

    faithful = InferenceStudent(_randomised(StudentConfig(), 7))  # 8 heads of 64 on 64 features
    assert all(isinstance(b, _FoldedBlock) for b in faithful.blocks)
    block = faithful.blocks[0]
    assert block.query.weight.shape == block.value.weight.shape == (8 * 64, 64)  # no key projection left
    compact = InferenceStudent(_randomised(compact_student_config(), 8))  # 2 heads of 32: folding costs more
    assert all(isinstance(b, _TwinBlock) for b in compact.blocks)


def test_twin_follows_a_training_mode_student_in_eval_semantics() -> None:
    student = _randomised(StudentConfig(filters=8, heads=2, head_dim=4, ff_dim=8, hidden=8), 5).train()
    twin = InferenceStudent(student)
    gsr = torch.randn(3, 512)
    with torch.no_grad():
        got = twin(gsr)
        expected = student.eval()(gsr)
    assert torch.allclose(got, expected, rtol=0, atol=1e-5)


def test_other_modules_pass_through_and_bad_input_is_refused() -> None:
    other = nn.Linear(512, 2)
    twins = inference_twins({"arousal": other})
    assert twins["arousal"] is other
    with pytest.raises(ExportError, match="EmotionNetStudent"):
        InferenceStudent(other)  # type: ignore[arg-type]
