"""The compact student for the edge: a preset that the same distillation trains and the same
exporter ships with the same contract, at a fraction of the faithful student's FLOPs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from emotionkd.exporters.onnx_export import ExportOptions, export_checkpoint
from emotionkd.sdk.model import OnnxEmotionModel
from emotionkd.training.checkpoint import load_student_checkpoint
from emotionkd.training.cli import app
from emotionkd.training.config import load_config
from emotionkd.training.models import (
    COMPACT_STUDENT_OPTIONS,
    EmotionNetStudent,
    StudentConfig,
    compact_student_config,
)


def _flops(config: StudentConfig) -> int:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        EmotionNetStudent(config).eval()(torch.zeros(1, config.window_samples))
    return int(counter.get_total_flops())


def test_compact_preset_keeps_the_teacher_and_the_feature_size() -> None:
    config = load_config(preset="compact")
    tuned = load_config(preset="tuned")
    for name, value in COMPACT_STUDENT_OPTIONS.items():
        assert getattr(config.student, name) == value
    assert config.teacher == tuned.teacher  # the same teacher distils it
    assert config.student.fused_features == tuned.student.fused_features == 3904  # same KD target size
    assert config.student.batch_norm_momentum == tuned.student.batch_norm_momentum
    assert compact_student_config() == StudentConfig(**COMPACT_STUDENT_OPTIONS)


def test_compact_student_costs_a_tenth_of_the_faithful_flops() -> None:
    faithful, compact = _flops(StudentConfig()), _flops(compact_student_config())
    assert faithful == 78_645_760  # docs/performance.md: 78.6 MFLOP per student
    assert compact * 10 < faithful


def test_compact_student_distils_and_exports_with_the_same_contract(tmp_path: Path) -> None:
    shapes = "kernel_samples = 32\nstride_samples = 16\nfilters = 8\nff_dim = 8\nhidden = 8\n"
    (tmp_path / "c.toml").write_text(
        f'name = "c"\noutput_dir = "{tmp_path / "runs"}"\nprogress = false\nthreads = 1\n'
        f'[data]\nsource = "synthetic"\npath = "{tmp_path / "deap"}"\ncache_dir = ""\nsubjects = 3\ntrials = 4\n'
        f'trial_s = 36.0\nworkers = 1\n[teacher]\n{shapes}heads = 2\nhead_dim = 4\n[student]\n{shapes}'
        "[teacher_optim]\nepochs = 1\nbatch_size = 16\n[student_optim]\nepochs = 1\nbatch_size = 16\n")
    result = CliRunner().invoke(app, ["distill", "--preset", "compact", "--config", str(tmp_path / "c.toml")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    checkpoint = load_student_checkpoint(tmp_path / "runs" / "c" / "student.pt")
    assert (checkpoint.student_config.heads, checkpoint.student_config.head_dim, checkpoint.student_config.blocks) == (2, 32, 1)
    assert checkpoint.contract.model["config"]["blocks"] == 1
    report = export_checkpoint(tmp_path / "runs" / "c" / "student.pt", tmp_path / "c.onnx", ExportOptions())
    model = OnnxEmotionModel(report.path)
    assert model.contract.preprocessing == checkpoint.contract.preprocessing
    assert model.contract.window_samples == checkpoint.contract.window_samples == 512
    gsr = np.random.default_rng(0).normal(size=(3, 512)).astype(np.float32)
    students = checkpoint.build_all()
    with torch.no_grad():
        for target, probabilities in model.run(gsr).items():
            expected = torch.softmax(students[target](torch.from_numpy(gsr)), dim=-1).numpy()
            assert np.allclose(probabilities, expected, atol=1e-5)
