"""A hostile LSL stream: an absurd nominal rate is refused, a time-stamp jump of 10^6 s is a
bounded discontinuity (not 32 M NaN samples)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.samples import SampleFlag

pylsl = pytest.importorskip("pylsl", reason="pylsl (the lsl extra) is not installed")
try:
    pylsl.local_clock()
except Exception as exc:  # pragma: no cover - liblsl missing on this platform
    pytest.skip(f"liblsl cannot be loaded: {exc}", allow_module_level=True)

from emotionkd.sdk.sources.lsl import LslSource  # noqa: E402


def _outlet(name: str, rate: float) -> object:
    info = pylsl.StreamInfo(name, "GSR", 1, rate, "float32", f"{name}-id")
    return pylsl.StreamOutlet(info)


def test_a_stream_claiming_1e9_hz_is_refused() -> None:
    outlet = _outlet("ekd-hostile-rate", 1e9)
    time.sleep(0.3)
    source = LslSource("lsl://ekd-hostile-rate?timeout=5")
    with pytest.raises(ConfigError, match="outside"):
        source.open()
    del outlet


def _send_with_jump(name: str, rate: float, n_samples: int, jump_at: int, jump_s: float, pause_s: float,
                    ready: threading.Event, stop: threading.Event) -> None:
    """Send ``n_samples`` of 5 µS in chunks of 8, stamps jumping by ``jump_s`` from ``jump_at``."""
    outlet = _outlet(name, rate)
    ready.wait(10.0)
    time.sleep(0.3)
    start = pylsl.local_clock()
    for i in range(0, n_samples, 8):
        if stop.is_set():
            return
        jump = jump_s if i >= jump_at else 0.0
        outlet.push_chunk([[5.0]] * 8, start + jump + (i + 7) / rate)  # type: ignore[attr-defined]
        time.sleep(pause_s)
    time.sleep(1.0)


def test_a_time_stamp_jump_is_a_bounded_discontinuity() -> None:
    rate = 32.0
    stop = threading.Event()
    consumer = threading.Event()
    # one pull per chunk: the jump falls between two pulls
    sender = threading.Thread(target=_send_with_jump,
                              args=("ekd-hostile-jump", rate, 96, 48, 1e6, 0.4, consumer, stop))
    sender.start()
    blocks = []
    try:
        with LslSource("lsl://ekd-hostile-jump?timeout=5&unit=uS") as source:
            consumer.set()
            for block in source.blocks():
                blocks.append(block)
                if block.flags.size and block.flags[0] & SampleFlag.CLOCK_RESYNC:
                    break  # the first samples after the jump
            counters = source.counters()
    finally:
        stop.set()
        sender.join()
    total = sum(len(b) for b in blocks)
    assert counters["discontinuities"] == 1
    assert total <= 96 + 10 * 32 + 8, total  # before: 32,000,000 NaN samples
    flags = np.concatenate([b.flags for b in blocks])
    assert np.count_nonzero(flags & SampleFlag.CLOCK_RESYNC) == 1


def test_a_time_jump_of_a_billion_seconds_keeps_memory_bounded_and_is_reported() -> None:
    """10^9 s at 32 Hz would be 3.2e10 NaN samples (256 GB); the source fills max_gap (10 s),
    counts a discontinuity and the samples the jump claims lost, and its peak memory stays small."""
    import tracemalloc

    rate = 32.0
    reading = threading.Event()
    stop = threading.Event()
    sender = threading.Thread(target=_send_with_jump,
                              args=("ekd-hostile-billion", rate, 64, 32, 1e9, 0.05, reading, stop))
    sender.start()
    blocks = []
    tracemalloc.start()
    try:
        with LslSource("lsl://ekd-hostile-billion?timeout=5&unit=uS") as source:
            reading.set()
            for block in source.blocks():
                blocks.append(block)
                if sum(len(b) for b in blocks) >= 64 + 10 * 32:
                    break
            counters = source.counters()
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        stop.set()
        sender.join()
    flags = np.concatenate([b.flags for b in blocks])
    assert flags.size == 64 + 10 * 32  # 64 samples + a 10 s fill, nothing more
    assert counters["discontinuities"] == 1 and counters["gap_samples"] == 10 * 32
    assert counters["samples_lost"] >= 1e9 * rate - 64  # the claim is reported, not allocated
    assert np.count_nonzero(flags & SampleFlag.CLOCK_RESYNC) == 1
    assert peak_bytes < 4_000_000, peak_bytes
