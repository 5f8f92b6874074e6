"""Tiny structured datasets and model configs so training tests take seconds."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from emotionkd.training.models import StudentConfig, TeacherConfig
from emotionkd.training.windowed import WindowedDataset

#: a few minutes of two Stress-Predict participants (E4 folders + per-second labels; MIT licence beside)
EXCERPT = Path(__file__).parent / "data" / "stress-predict-excerpt"

TINY_SHAPES = dict(window_samples=64, kernel_samples=8, stride_samples=4, filters=8, heads=2, head_dim=4,
                   ff_dim=8, hidden=8, max_positions=16)


def tiny_teacher_config(**changes: object) -> TeacherConfig:
    return TeacherConfig(**{**TINY_SHAPES, "eeg_channels": 3, "batch_norm_momentum": 0.1, **changes})


def tiny_student_config(**changes: object) -> StudentConfig:
    return StudentConfig(**{**TINY_SHAPES, "batch_norm_momentum": 0.1, **changes})


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine OpenMP spinning
    makes them many times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def excerpt(tmp_path: Path) -> Path:
    """A writable copy of :data:`EXCERPT` (tests add or break labels files in it)."""
    root = tmp_path / "stress"
    shutil.copytree(EXCERPT, root)
    return root


def make_dataset(subjects: int = 3, trials: int = 6, windows: int = 4, seed: int = 0,
                 samples: int = 64, eeg: bool = True) -> WindowedDataset:
    """Windows whose label shows weakly in the GSR (a slope) and strongly in the EEG (a tone)."""
    rng = np.random.default_rng(seed)
    rows = subjects * trials * windows
    subject = np.repeat(np.arange(subjects), trials * windows)
    trial = np.tile(np.repeat(np.arange(trials), windows), subjects)
    ratings = rng.uniform(1, 9, size=(subjects * trials, 2)).astype(np.float32)
    ratings = np.repeat(ratings, windows, axis=0)
    labels = (ratings > 5).astype(np.int64)
    t = np.linspace(0, 1, samples, dtype=np.float32)
    sign = (2 * labels[:, 0] - 1)[:, None].astype(np.float32)
    gsr = 0.5 * sign * t + rng.normal(0, 1, (rows, samples)).astype(np.float32)
    eeg_x = None
    if eeg:
        tone = np.sin(2 * np.pi * 8 * t)[None, None, :] * sign[:, :, None]
        eeg_x = (2 * tone + rng.normal(0, 1, (rows, 3, samples))).astype(np.float32)
    return WindowedDataset(gsr=gsr.astype(np.float32), eeg=eeg_x, labels=labels, ratings=ratings,
                           subject=subject.astype(np.int64), trial=trial.astype(np.int64),
                           start_s=np.zeros(rows, np.float32),
                           meta={"dataset": "test", "data_kind": "synthetic"})


@pytest.fixture
def tiny_dataset() -> WindowedDataset:
    return make_dataset()
