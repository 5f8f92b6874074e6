"""A small but complete student checkpoint, exported once per session (FP32 and INT8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emotionkd.exporters.onnx_export import ExportOptions, ExportReport, export_checkpoint
from emotionkd.exporters.reference_windows import synthetic_windows
from emotionkd.sdk.contract import ModelContract, Provenance
from emotionkd.training.checkpoint import StudentCheckpoint, save_student_checkpoint
from emotionkd.training.models import EmotionNetStudent, StudentConfig

#: The student's architecture at a tiny width: same graph (conv filter, 3 wide-head encoder
#: blocks, multi-depth fusion, classifier), exports in seconds.
TINY = StudentConfig(filters=8, heads=2, head_dim=4, ff_dim=8, hidden=8)
CONTRACT = ModelContract(
    provenance=Provenance(data_kind="synthetic", dataset="synthetic-deap", protocol="loso",
                          subjects=8, method="kd+feedback"),
    metrics={"arousal": {"accuracy": 0.61, "macro_f1": 0.58}, "valence": {"accuracy": 0.55, "macro_f1": 0.52}},
    model={"name": "EmotionNet-Student", "parameters": 12345},
)


def _trained_like(model: EmotionNetStudent, seed: int) -> EmotionNetStudent:
    """Weights spread like a trained model's (not all near zero), BatchNorm statistics non-trivial,
    so that outputs are far from 0.5 and parity/INT8 comparisons mean something."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if name.endswith("running_mean"):
                value.copy_(torch.randn(value.shape, generator=generator) * 0.1)
            elif name.endswith("running_var"):
                value.copy_(torch.rand(value.shape, generator=generator) + 0.5)
    return model.eval()


@pytest.fixture(scope="session")
def students() -> dict[str, EmotionNetStudent]:
    torch.manual_seed(0)
    return {t: _trained_like(EmotionNetStudent(TINY), i) for i, t in enumerate(CONTRACT.targets)}


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, students: dict[str, EmotionNetStudent]) -> Path:
    ckpt = StudentCheckpoint(contract=CONTRACT, student_config=TINY,
                             state_dicts={t: s.state_dict() for t, s in students.items()},
                             metrics=dict(CONTRACT.metrics), train_config={"seed": 0})
    return save_student_checkpoint(ckpt, tmp_path_factory.mktemp("ckpt") / "student.pt")


@pytest.fixture(scope="session")
def fp32_export(checkpoint: Path) -> ExportReport:
    return export_checkpoint(checkpoint)


@pytest.fixture(scope="session")
def labelled_windows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A windows file with labels (high arousal for the more aroused synthetic recordings)."""
    windows = synthetic_windows(CONTRACT, 48, seed=5)
    labels = np.stack([np.arange(48) % 2, (np.arange(48) // 2) % 2], axis=1).astype(np.int64)
    path = tmp_path_factory.mktemp("windows") / "windows.npz"
    np.savez(path, gsr=windows.gsr, labels=labels)
    return path


@pytest.fixture(scope="session")
def int8_export(checkpoint: Path, labelled_windows: Path) -> ExportReport:
    from emotionkd.exporters.reference_windows import load_windows

    windows = load_windows(labelled_windows, CONTRACT)
    return export_checkpoint(checkpoint, checkpoint.with_name("student.int8.onnx"),
                             ExportOptions(int8=True, int8_min_agreement=0.5, latency_runs=20),
                             windows=windows)
