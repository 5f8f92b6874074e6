"""A hostile LSL stream: an absurd nominal rate is refused, a time-stamp jump of 10^6 s or 10^9 s
is a bounded, reported discontinuity (not 32 M or 32 G NaN samples)."""

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


@pytest.mark.parametrize(("jump_s", "pause_s"), [
    (1e6, 0.4),   # 3.2e7 NaN samples at 32 Hz; one pull per chunk: the jump falls between two pulls
    (1e9, 0.05),  # 3.2e10 NaN samples (256 GB); chunks pile up: the jump may fall inside a pull
], ids=["1e6 s", "1e9 s"])
def test_a_time_stamp_jump_is_a_bounded_reported_discontinuity(jump_s: float, pause_s: float) -> None:
    """The source fills max_gap (10 s), counts a discontinuity and the samples the jump claims
    lost (reported, not allocated), flags the resync once, and its peak memory stays small."""
    import tracemalloc

    rate, sent, jump_at = 32.0, 64, 32
    name = f"ekd-hostile-jump-{jump_s:.0e}"
    reading = threading.Event()
    stop = threading.Event()
    sender = threading.Thread(target=_send_with_jump, args=(name, rate, sent, jump_at, jump_s, pause_s, reading, stop))
    sender.start()
    blocks = []
    tracemalloc.start()
    try:
        with LslSource(f"lsl://{name}?timeout=5&unit=uS") as source:
            reading.set()
            for block in source.blocks():
                blocks.append(block)
                if sum(len(b) for b in blocks) >= sent + 10 * 32:
                    break
            counters = source.counters()
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        stop.set()
        sender.join()
    flags = np.concatenate([b.flags for b in blocks])
    assert flags.size == sent + 10 * 32  # the samples sent + a 10 s fill, nothing more
    assert counters["discontinuities"] == 1 and counters["gap_samples"] == 10 * 32
    assert counters["samples_lost"] >= jump_s * rate - sent
    assert np.count_nonzero(flags & SampleFlag.CLOCK_RESYNC) == 1
    assert peak_bytes < 4_000_000, peak_bytes
