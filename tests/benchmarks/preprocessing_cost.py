"""Prints the cost of the ekd-gsr preprocessing per hour of data, per device rate and chunking.

Run: ``python tests/benchmarks/preprocessing_cost.py [--minutes M]``. One core (numpy is
single-threaded here). "x real time" = seconds of signal processed per second of CPU.
"""

from __future__ import annotations

import argparse
import json
import time

from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, GsrSynthesizer
from emotionkd.sdk.preprocessing import GsrPreprocessor


def measure(rate_hz: float, minutes: float, chunk_s: float) -> dict[str, float]:
    x = GsrSynthesizer(GsrSynthConfig(rate_hz=rate_hz), seed=1).read(int(minutes * 60 * rate_hz))
    pre = GsrPreprocessor(rate_hz, "uS", hop_samples=128)
    chunk = max(1, int(round(chunk_s * rate_hz)))
    t0 = time.perf_counter()
    windows = 0
    for i in range(0, x.size, chunk):
        windows += len(pre.push(x[i : i + chunk]))
    windows += len(pre.flush())
    elapsed = time.perf_counter() - t0
    return {
        "rate_hz": rate_hz,
        "chunk_s": chunk_s,
        "windows": windows,
        "cpu_s_per_hour_of_data": elapsed * 60.0 / minutes,
        "x_real_time": minutes * 60.0 / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=20.0, help="minutes of signal per case")
    args = parser.parse_args()
    rows = [measure(rate, args.minutes, chunk) for rate in (4, 32, 128, 1000) for chunk in (0.25, 1.0)]
    rows.append(measure(128, args.minutes, args.minutes * 60))  # offline: one chunk
    print(f"{'rate Hz':>8} {'chunk s':>8} {'windows':>8} {'CPU s / h':>10} {'x real time':>12}")
    for r in rows:
        print(f"{r['rate_hz']:8g} {r['chunk_s']:8g} {r['windows']:8d} {r['cpu_s_per_hour_of_data']:10.3f} {r['x_real_time']:12.0f}")
    print(json.dumps({"preprocessing_cost": rows}))


if __name__ == "__main__":
    main()
