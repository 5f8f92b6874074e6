"""emotionkd.sdk: the edge runtime. Real-time arousal and valence from skin conductance.

numpy and onnxruntime only, never torch. Public names are loaded lazily so that
``import emotionkd.sdk`` stays inside the start-up budget (onnxruntime is imported only when a
model is loaded).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "EmotionClassifier": "emotionkd.sdk.classifier",
    "Prediction": "emotionkd.sdk.classifier",
    "BackgroundStream": "emotionkd.sdk.classifier",
    "Gateway": "emotionkd.sdk.gateway",
    "QualityConfig": "emotionkd.sdk.quality",
    "open_source": "emotionkd.sdk.sources",
    "Source": "emotionkd.sdk.sources",
    "SourceInfo": "emotionkd.sdk.sources",
    "Recording": "emotionkd.sdk.recording",
    "RecordingWriter": "emotionkd.sdk.recording",
    "read_recording": "emotionkd.sdk.recording",
    "ModelContract": "emotionkd.sdk.contract",
    "PreprocessingSpec": "emotionkd.sdk.contract",
    "Provenance": "emotionkd.sdk.contract",
    "GsrPreprocessor": "emotionkd.sdk.preprocessing",
    "PreprocessingConfig": "emotionkd.sdk.preprocessing",
    "Windows": "emotionkd.sdk.preprocessing",
    "preprocess_recording": "emotionkd.sdk.preprocessing",
    "to_conductance_us": "emotionkd.firmware_bridge.units",
    "EmotionKDError": "emotionkd.sdk.errors",
    "ConfigError": "emotionkd.sdk.errors",
    "ContractError": "emotionkd.sdk.errors",
    "DataError": "emotionkd.sdk.errors",
    "ModelError": "emotionkd.sdk.errors",
    "ProtocolError": "emotionkd.sdk.errors",
    "TransportError": "emotionkd.sdk.errors",
    "UnitError": "emotionkd.sdk.errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from emotionkd.firmware_bridge.units import to_conductance_us
    from emotionkd.sdk.classifier import BackgroundStream, EmotionClassifier, Prediction
    from emotionkd.sdk.contract import ModelContract, PreprocessingSpec, Provenance
    from emotionkd.sdk.errors import (
        ConfigError,
        ContractError,
        DataError,
        EmotionKDError,
        ModelError,
        ProtocolError,
        TransportError,
        UnitError,
    )
    from emotionkd.sdk.gateway import Gateway
    from emotionkd.sdk.preprocessing import (
        GsrPreprocessor,
        PreprocessingConfig,
        Windows,
        preprocess_recording,
    )
    from emotionkd.sdk.quality import QualityConfig
    from emotionkd.sdk.recording import Recording, RecordingWriter, read_recording
    from emotionkd.sdk.sources import Source, SourceInfo, open_source


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'emotionkd.sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
