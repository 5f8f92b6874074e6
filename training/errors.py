"""Training's error, in the layer that raises it; a member of the one family
(:class:`emotionkd.firmware_bridge.errors.EmotionKDError`), so callers catch it with the rest."""

from __future__ import annotations

from emotionkd.firmware_bridge.errors import ModelError


class CheckpointError(ModelError):
    """A training checkpoint is missing, not a checkpoint, unsafe, or from a newer format."""


__all__ = ["CheckpointError"]
