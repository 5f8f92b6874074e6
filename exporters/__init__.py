"""emotionkd.exporters: checkpoint → ONNX with the model contract inside, parity-checked against
PyTorch, optionally INT8 (``emotionkd-export``).

Public names load lazily, so that ``emotionkd-export --help`` does not wait for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ExportOptions": "emotionkd.exporters.onnx_export",
    "ExportReport": "emotionkd.exporters.onnx_export",
    "export_checkpoint": "emotionkd.exporters.onnx_export",
    "export_students": "emotionkd.exporters.onnx_export",
    "ReferenceWindows": "emotionkd.exporters.reference_windows",
    "load_windows": "emotionkd.exporters.reference_windows",
    "synthetic_windows": "emotionkd.exporters.reference_windows",
}

__all__ = sorted(_EXPORTS)

def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'emotionkd.exporters' has no attribute {name!r}")
