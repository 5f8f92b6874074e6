"""Fixtures of the SDK tests: test ONNX models (see onnx_test_models.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# pytest runs with --import-mode=importlib: make the helper module importable by the tests.
sys.path.insert(0, str(Path(__file__).parent))

from onnx_test_models import build_test_model  # noqa: E402


@pytest.fixture(scope="session")
def test_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic-provenance test model (session-wide; read-only)."""
    return build_test_model(tmp_path_factory.mktemp("models") / "test-linear.onnx")


@pytest.fixture(scope="session")
def real_data_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model with a contract that says it was trained on real data."""
    return build_test_model(tmp_path_factory.mktemp("models") / "test-real.onnx", data_kind="real")
