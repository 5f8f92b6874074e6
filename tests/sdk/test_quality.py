"""The quality gate: each reason, and the mapping of source flags onto model-rate windows."""

from __future__ import annotations

import numpy as np
import pytest

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.gsr_synth import synthesize_gsr
from emotionkd.firmware_bridge.samples import SampleFlag
from emotionkd.sdk.preprocessing import PAPER_PREPROCESSING, GsrPreprocessor, Windows
from emotionkd.sdk.quality import QualityConfig, WindowFlags, gate_windows, judge_window

WINDOW = synthesize_gsr(4.0, seed=5)  # 512 samples of real-looking skin conductance


def test_a_clean_window_is_ok() -> None:
    verdict = judge_window(WINDOW, True, 0, WindowFlags(512))
    assert verdict.ok and verdict.reason == "ok" and verdict.detail == ""


@pytest.mark.parametrize(
    ("window", "usable", "flags", "reason"),
    [
        (WINDOW, False, WindowFlags(512), "gap"),
        (WINDOW, True, WindowFlags(512, electrode_off=1), "electrode_off"),
        (WINDOW, False, WindowFlags(512, electrode_off=300), "electrode_off"),  # the cause wins
        (WINDOW, True, WindowFlags(512, saturated=2), "saturation"),
        (np.full(512, 7.0), True, WindowFlags(512), "flat_line"),
        (WINDOW * 1000.0, True, WindowFlags(512), "implausible_unit"),
        (WINDOW / 1000.0, True, WindowFlags(512), "implausible_unit"),
    ],
)
def test_each_reason(window: np.ndarray, usable: bool, flags: WindowFlags, reason: str) -> None:
    verdict = judge_window(window, usable, 100 if not usable else 0, flags)
    assert verdict.reason == reason and not verdict.ok and verdict.detail


def test_thresholds_are_configurable() -> None:
    lenient = QualityConfig(max_electrode_off_fraction=0.1, flat_peak_to_peak_us=0.0)
    assert judge_window(WINDOW, True, 0, WindowFlags(512, electrode_off=10), lenient).ok
    assert judge_window(np.full(512, 7.0), True, 0, WindowFlags(512), lenient).ok
    with pytest.raises(ConfigError):
        QualityConfig(max_saturated_fraction=2.0)
    with pytest.raises(ConfigError):
        QualityConfig(plausible_conductance_us=(5.0, 1.0))


@pytest.mark.parametrize("rate_hz", [4.0, 32.0, 128.0, 250.0])
def test_source_flags_reach_windows_by_time(rate_hz: float) -> None:
    """The preprocessor carries the source flags to the windows (the one mapping): a source
    sample belongs to the windows whose span holds its time."""
    pre = GsrPreprocessor(rate_hz, "uS", PAPER_PREPROCESSING, hop_samples=128)  # 4 s every 1 s
    n = int(20 * rate_hz)
    values = 5.0 + 0.01 * np.sin(np.arange(n) / rate_hz)
    flags = np.zeros(n, np.uint8)
    hit = int(10.5 * rate_hz)  # one electrode-off sample at t = 10.5 s
    flags[hit] = SampleFlag.ELECTRODE_OFF
    parts = [pre.push(v, f) for v, f in zip(np.array_split(values, 7), np.array_split(flags, 7), strict=True)]
    windows = Windows.concatenate([*parts, pre.flush()], 512)
    counts = {int(s): (int(off), int(total)) for s, off, total in
              zip(windows.start_s, windows.electrode_off, windows.source_samples, strict=True) if s < 16}
    assert set(counts) == set(range(16))
    assert {s for s, (off, _) in counts.items() if off} == {7, 8, 9, 10}
    assert all(total == int(4 * rate_hz) for _, total in counts.values())
    gated = gate_windows(windows)
    assert {int(windows.start_s[i]) for (i,), v in gated.failed.items() if v.reason == "electrode_off"} == {7, 8, 9, 10}


def test_devices_without_contact_flags_are_judged_by_their_samples() -> None:
    dropped = WINDOW.copy()
    dropped[200:300] = 0.0  # a BITalino reads 0 µS without skin contact, and flags nothing
    verdict = judge_window(dropped, True, 0, WindowFlags(512))
    assert verdict.reason == "electrode_off" and "contact" in verdict.detail
    railed = WINDOW.copy()
    railed[10:40] = 250.0
    assert judge_window(railed, True, 0, WindowFlags(512)).reason == "saturation"
