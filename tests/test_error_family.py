"""One exception family, each error in the layer that raises it (firmware_bridge/errors.py)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import emotionkd.exporters.errors as exporter_errors
import emotionkd.firmware_bridge.errors as edge_errors
import emotionkd.sdk.errors as sdk_errors
import emotionkd.training.errors as training_errors
from emotionkd.firmware_bridge.errors import EmotionKDError, ModelError

PACKAGES = ["emotionkd.firmware_bridge", "emotionkd.sdk", "emotionkd.training", "emotionkd.exporters"]


def _modules(package: str) -> list[str]:
    root = importlib.import_module(package)
    return [package, *(m.name for m in pkgutil.walk_packages(root.__path__, package + "."))]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_exception_is_in_the_family(package: str) -> None:
    strays = []
    for name in _modules(package):
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == name
                    and not attr.startswith("_") and not issubclass(value, EmotionKDError)):
                strays.append(f"{name}.{attr}")
    assert strays == [], "derive them from EmotionKDError (firmware_bridge/errors.py)"


def test_the_higher_layers_errors_live_in_their_layer() -> None:
    assert exporter_errors.ExportError.__module__ == "emotionkd.exporters.errors"
    assert training_errors.CheckpointError.__module__ == "emotionkd.training.errors"
    assert issubclass(exporter_errors.ExportError, EmotionKDError)
    # callers that catch ModelError for "cannot load a model" keep catching a bad checkpoint
    assert issubclass(training_errors.CheckpointError, ModelError)
    assert not hasattr(edge_errors, "ExportError") and not hasattr(edge_errors, "CheckpointError")
    error = exporter_errors.ExportError("parity check failed", max_abs_diff=0.25)
    assert error.max_abs_diff == 0.25 and str(error) == "parity check failed"


def test_the_sdk_reexports_the_edge_family() -> None:
    assert sdk_errors.__all__ == edge_errors.__all__
    assert all(getattr(sdk_errors, name) is getattr(edge_errors, name) for name in edge_errors.__all__)
