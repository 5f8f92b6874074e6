"""The emotionkd exception family, re-exported for applications (defined in firmware_bridge)."""

from __future__ import annotations

from emotionkd.firmware_bridge.errors import (
    ConfigError,
    ContractError,
    DataError,
    EmotionKDError,
    ModelError,
    ProtocolError,
    TransportError,
    UnitError,
)

__all__ = [
    "ConfigError",
    "ContractError",
    "DataError",
    "EmotionKDError",
    "ModelError",
    "ProtocolError",
    "TransportError",
    "UnitError",
]
