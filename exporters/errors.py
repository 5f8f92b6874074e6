"""The exporter's error, in the layer that raises it; a member of the one family
(:class:`emotionkd.firmware_bridge.errors.EmotionKDError`), so callers catch it with the rest."""

from __future__ import annotations

from emotionkd.firmware_bridge.errors import EmotionKDError


class ExportError(EmotionKDError):
    """A checkpoint could not be exported, or the exported model failed its parity check.

    Attributes:
        max_abs_diff: the largest output difference found by the parity check, when known.
    """

    def __init__(self, message: str, *, max_abs_diff: float | None = None) -> None:
        super().__init__(message)
        self.max_abs_diff = max_abs_diff


__all__ = ["ExportError"]
