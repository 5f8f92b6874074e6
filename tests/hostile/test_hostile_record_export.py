"""``record`` keeps only what arrived after it started; ``emotionkd-export`` answers a foreign
pickle with one line and no torch warning."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emotionkd.firmware_bridge.samples import SampleBlock
from emotionkd.sdk.cli import app
from emotionkd.sdk.recording import read_recording
from emotionkd.sdk.sources.base import SourceInfo

runner = CliRunner()


class StaleThenLive:
    """A source whose first blocks arrived before ``record`` started (a probe, an OS buffer)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> StaleThenLive:
        self.opened = time.time()
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    @property
    def info(self) -> SourceInfo:
        return SourceInfo(device="fake", protocol="ekd", rate_hz=128.0)

    def blocks(self) -> Iterator[SampleBlock]:
        before = self.opened - 1.0
        yield SampleBlock(0, np.full(40, 1.0), np.zeros(40, np.uint8), 128.0, before)
        yield SampleBlock(40, np.full(40, 2.0), np.zeros(40, np.uint8), 128.0, before + 0.3)
        for i in range(4):
            yield SampleBlock(80 + 128 * i, np.full(128, 5.0), np.zeros(128, np.uint8), 128.0, time.time())


def test_record_leaves_out_samples_that_arrived_before_it_started(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import emotionkd.sdk.sources as sources

    monkeypatch.setattr(sources, "open_source", StaleThenLive)
    out = tmp_path / "rec.csv"
    result = runner.invoke(app, ["record", str(out), "--source", "serial:///dev/null?protocol=ekd"])
    assert result.exit_code == 0, result.stderr
    rec = read_recording(out)
    assert len(rec) == 4 * 128 and np.all(rec.conductance_us == 5.0)  # before: 80 stale samples too
    assert "80 that arrived before the recording started were left out" in result.stderr


def test_export_of_a_foreign_pickle_is_one_line_without_torch_warning(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump(Evil(), f, protocol=4)
    code = "from emotionkd.exporters.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", code, str(path), "-o", str(tmp_path / "out.onnx")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "Warning" not in result.stderr, result.stderr
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error: ")
    assert not (tmp_path / "pwned").exists()
