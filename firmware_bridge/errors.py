"""The one exception family of emotionkd.

Every error the library raises on purpose is an :class:`EmotionKDError`. The family lives in the
lowest package (``firmware_bridge``) so that every layer above can raise and catch the same
classes; ``emotionkd.sdk.errors`` re-exports them for applications. An error that only a higher
layer raises lives in that layer, still in the family: ``ExportError`` in
:mod:`emotionkd.exporters.errors`, ``CheckpointError`` (a :class:`ModelError`) in
:mod:`emotionkd.training.errors`.

Data travels on attributes, not only in the message, so that callers can react without parsing
text. Only the command-line tools turn these errors into exit codes and one-line messages.
"""

from __future__ import annotations


class EmotionKDError(Exception):
    """Base class of every error emotionkd raises on purpose."""


class ConfigError(EmotionKDError, ValueError):
    """An option, argument or configuration value is invalid (names the option and the fix)."""


class ContractError(EmotionKDError):
    """A model contract is missing, malformed, from a newer version, or cannot serve a stream.

    Attributes:
        field: the contract field at fault, when one is.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DataError(EmotionKDError):
    """An input file or array is missing, truncated, of the wrong shape or holds invalid values.

    Attributes:
        path: the offending file, when there is one.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class UnitError(ConfigError):
    """A signal unit is unknown or the values are implausible for the declared unit."""


class TransportError(EmotionKDError, OSError):
    """A transport (serial port, BLE link, file, LSL) failed: not found, busy, unplugged, stalled.

    It is an :class:`OSError` so that code written against pyserial or sockets catches it too.

    Attributes:
        url: the source that failed, when known.
    """

    def __init__(self, message: str, *, url: str | None = None) -> None:
        OSError.__init__(self, message)
        self.url = url

    def __str__(self) -> str:  # OSError's str() would show the args tuple
        return str(self.args[0]) if self.args else ""


class ProtocolError(EmotionKDError):
    """Bytes could not be understood as the declared protocol (decoders count, then raise only
    where a caller asked for strict decoding)."""


class ModelError(EmotionKDError):
    """A model file cannot be loaded or run (missing, corrupt, wrong inputs or outputs)."""


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
