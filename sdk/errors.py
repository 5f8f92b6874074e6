"""The emotionkd exception family, re-exported for applications (defined in firmware_bridge)."""

from __future__ import annotations

from emotionkd.firmware_bridge.errors import (
    CheckpointError,
    ConfigError,
    ContractError,
    DataError,
    EmotionKDError,
    ExportError,
    ModelError,
    ProtocolError,
    TransportError,
    UnitError,
)

__all__ = [
    "CheckpointError",
    "ConfigError",
    "ContractError",
    "DataError",
    "EmotionKDError",
    "ExportError",
    "ModelError",
    "ProtocolError",
    "TransportError",
    "UnitError",
]
