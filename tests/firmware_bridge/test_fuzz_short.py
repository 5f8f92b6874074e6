"""A short run of tests/benchmarks/fuzz_decoders.py (the full run feeds 10^6 inputs)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_decoders.py"


def test_short_fuzz_raises_only_documented_errors() -> None:
    spec = importlib.util.spec_from_file_location("fuzz_decoders", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stats = module.run_fuzz(4000, seed=11)
    assert stats["inputs"] == 4000 and stats["samples"] > 0
