"""Helpers of the hostile-input suite: peak memory of a call, measured with tracemalloc
(numpy reports its buffers to tracemalloc, so arrays count)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest


def measure_peak(call: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``call()``; return its result and the peak bytes allocated while it ran."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        result = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.fixture
def peak_bytes() -> Callable[[Callable[[], Any]], tuple[Any, int]]:
    return measure_peak
