"""emotionkd.firmware_bridge: bytes from GSR sensors to samples in µS, with per-sample flags.

Modules: ``ekd`` (the EKD v1 frame format), ``ekd_decoder`` (its serial and BLE decoders),
``ascii_lines`` / ``shimmer3`` / ``bitalino`` (devices people own), ``decoding`` (what all
decoders share), ``sources`` (``serial://`` and ``ble://`` URLs → :class:`GsrSource`),
``transports`` (pyserial, bleak), ``discovery`` (ports and BLE scan), ``emulators`` (byte-exact devices on a pty), ``units``,
``gsr_synth``, ``samples``, and ``firmware/`` (the C99 encoder and an ESP32 sketch).
Depends on nothing else in emotionkd.
"""

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
