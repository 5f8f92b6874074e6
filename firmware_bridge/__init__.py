"""emotionkd.firmware_bridge: bytes from GSR sensors to samples in µS, with per-sample flags.

Sans-IO protocol decoders, device profiles, unit conversion, the transports that move bytes
(pyserial, bleak), device emulators, and ``firmware/`` (the C encoder for device firmware).
Depends on nothing else in emotionkd.
"""

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
