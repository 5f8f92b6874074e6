"""Deep copies in JSON's types: the one converter behind model contracts (ONNX metadata),
training configurations and checkpoint metadata."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from emotionkd.firmware_bridge.errors import EmotionKDError


def to_plain(value: Any, *, what: str = "values", error: type[EmotionKDError] = EmotionKDError,
             finite: bool = False) -> Any:
    """A deep copy of ``value`` made of dict (str keys), list, str, int, float, bool and None.

    Mappings become dicts with ``str`` keys, lists and tuples become lists, and numpy or torch
    scalars and arrays (anything with ``tolist``) become numbers and nested lists, without
    importing either library.

    Args:
        what: names the values in the error message, e.g. ``"contract values"``.
        error: the exception raised (a member of the emotionkd family, one per caller's layer).
        finite: refuse NaN and infinities (strict JSON has no spelling for them).

    Raises:
        ``error``: a value of another type, or a non-finite float when ``finite``.
    """
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, what=what, error=error, finite=finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v, what=what, error=error, finite=finite) for v in value]
    if isinstance(value, float) and finite and not math.isfinite(value):
        raise error(f"{what} must be finite, got {value!r}")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy, torch
        return to_plain(value.tolist(), what=what, error=error, finite=finite)
    raise error(f"{what} must be plain JSON types, got {type(value).__name__}")


__all__ = ["to_plain"]
