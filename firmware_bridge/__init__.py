"""emotionkd.firmware_bridge: bytes from GSR sensors to samples in µS, with per-sample flags.

Modules: ``devices`` (the device registry: one descriptor per device), ``source_spec`` (source
URLs parsed once into typed specs; the open registry of schemes), ``sample_axis`` (the one owner
of gaps, overlaps, restarts and segments), ``ekd`` (the EKD v1 frame format), ``ekd_decoder``
(its serial and BLE decoders), ``ascii_lines`` / ``shimmer3`` / ``bitalino`` (devices people
own), ``decoding`` (what all decoders share), ``source_base`` (the Source interface),
``sources`` (the device source, :class:`GsrSource`), ``link`` (the protocol between transport
and decoder) and ``transports`` (pyserial, bleak), ``discovery`` (ports and BLE scan),
``emulators`` (byte-exact devices on a pty, one module each), ``units``, ``gsr_synth``,
``samples``, and ``firmware/`` (the C99 encoder and an ESP32 sketch).
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
