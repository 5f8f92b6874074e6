"""Hostile device bytes: claims of absurd rates and jumps are counted faults, never allocations."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from emotionkd.firmware_bridge.bounds import MAX_GAP_FILL_SAMPLES, MAX_RATE_HZ
from emotionkd.firmware_bridge.ekd import FrameType, Hello, control_frame, data_frame, serial_encode
from emotionkd.firmware_bridge.ekd_decoder import EkdBleDecoder, EkdSerialDecoder
from emotionkd.firmware_bridge.sample_axis import FILL_CREDIT_PER_SAMPLE

MB = 1 << 20


def bomb_stream(rate_mhz: int, frames: int, jump: int) -> list[bytes]:
    """The tester's memory bomb: a HELLO claiming ``rate_mhz``, then DATA frames whose t0 jumps."""
    hello = Hello(0x0102, rate_mhz, 12, 0, 0.0, 0.0, "BOMB")
    out = [control_frame(FrameType.HELLO, 0, 0, hello.encode())]
    t0 = 0
    for seq in range(1, frames + 1):
        out.append(data_frame(seq, t0 & 0xFFFFFFFF, [2_000_000], 2))
        t0 += jump
    return out


def test_hello_claiming_4_mhz_and_jumping_t0_allocates_nothing_large(
        peak_bytes: Callable[[Callable[[], Any]], tuple[Any, int]]) -> None:
    decoder = EkdSerialDecoder(128.0)
    stream = b"".join(serial_encode(f) for f in bomb_stream(0xFFFFFFFF, 6, 1 << 30))
    blocks, peak = peak_bytes(lambda: decoder.feed(stream, host_time_s=0.0))
    samples = sum(len(b) for b in blocks)
    assert decoder.rate_hz == 128.0, "an implausible HELLO rate must not be adopted"
    assert decoder.counters.implausible_claims == 1
    assert samples <= 6 * 1281, samples  # before: 214,748,389 samples (1.17 GB)
    assert peak < 8 * MB, f"decoder peaked at {peak / MB:.1f} MB"


def test_a_flood_of_jumping_frames_emits_a_bounded_multiple_of_real_samples(
        peak_bytes: Callable[[Callable[[], Any]], tuple[Any, int]]) -> None:
    """Even at the highest plausible rate, fills are paid for by real samples."""
    decoder = EkdBleDecoder(128.0)
    frames = bomb_stream(int(MAX_RATE_HZ * 1000), 2000, 1 << 20)

    def run() -> int:
        return sum(len(b) for f in frames for b in decoder.feed(f, host_time_s=0.0))

    samples, peak = peak_bytes(run)
    real = 2000
    assert decoder.rate_hz == MAX_RATE_HZ
    assert samples <= real + real * FILL_CREDIT_PER_SAMPLE + MAX_GAP_FILL_SAMPLES, samples
    assert decoder.counters.discontinuities >= 1900
    assert peak < 16 * MB, f"peaked at {peak / MB:.1f} MB"


def test_hello_with_nan_or_zero_rate_is_ignored() -> None:
    for rate_mhz in (0, 1, 0xFFFFFFFF):
        decoder = EkdBleDecoder(128.0)
        hello = Hello(0x0102, rate_mhz, 12, 0, 0.0, 0.0, "X")
        decoder.feed(control_frame(FrameType.HELLO, 0, 0, hello.encode()), host_time_s=0.0)
        assert decoder.rate_hz == 128.0 and decoder.counters.implausible_claims == 1


def test_a_run_without_delimiter_keeps_the_decoder_buffer_bounded(
        peak_bytes: Callable[[Callable[[], Any]], tuple[Any, int]]) -> None:
    decoder = EkdSerialDecoder(128.0)
    chunk = struct.pack("<B", 0x11) * 65536

    def run() -> None:
        for _ in range(64):  # 4 MB of bytes without a 0x00
            decoder.feed(chunk, host_time_s=0.0)

    _, peak = peak_bytes(run)
    assert len(decoder._buf) <= 4096
    assert peak < 2 * MB


def test_stream_cli_survives_the_bomb_on_a_serial_port_in_bounded_memory() -> None:
    """The tester's run: `stream --port … --protocol ekd` peaked at 1.96 GB before an error.
    Now the bomb is a counted fault and the stream ends normally; the child's peak RSS is measured."""
    import os
    import subprocess
    import sys
    import threading
    import time
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    hello = Hello(0x0102, 0xFFFFFFFF, 12, 0, 0.0, 0.0, "BOMB")
    stop = threading.Event()

    def device() -> None:
        seq = 0
        while not stop.is_set():
            burst = [serial_encode(control_frame(FrameType.HELLO, seq, 0, hello.encode()))]
            burst += [serial_encode(data_frame((seq + k) & 0xFFFF, (k << 30) & 0xFFFFFFFF, [2_000_000] * 8, 2))
                      for k in range(1, 7)]
            try:
                os.write(master, b"".join(burst))
            except OSError:
                return
            seq = (seq + 7) & 0xFFFF
            time.sleep(0.01)

    thread = threading.Thread(target=device, daemon=True)
    thread.start()
    measure = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "print(r.stderr[-400:], file=sys.stderr)")
    cli = [sys.executable, "-c", "from emotionkd.sdk.cli import main; main()", "stream", "--port",
           os.ttyname(slave), "--protocol", "ekd", "--format", "jsonl", "--duration", "60", "--timeout", "10"]
    try:
        result = subprocess.run([sys.executable, "-c", measure, *cli], capture_output=True, text=True, timeout=300)
    finally:
        stop.set()
        thread.join(5)
        os.close(master)
        os.close(slave)
    code, maxrss_kb = (int(x) for x in result.stdout.split())
    assert code == 0, result.stderr
    assert "predictions" in result.stderr
    assert maxrss_kb < 400 * 1024, f"peak RSS {maxrss_kb / 1024:.0f} MB"
