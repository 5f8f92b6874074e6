"""Gateway load: N simulated wearers, one tick a second, sustained; p50/p99 tick latency.

Each wearer is a synthetic EDA stream at ``--rate`` Hz with its own subject draw (level, gain,
responses). Every tick pushes one second of every wearer and runs the batch, as a hub does.
Two ways to feed the gateway are compared on the same signals:

* ``cohort``: wearers pushed together as ``(S, n)`` arrays (``Gateway.push_cohort``; the
  preprocessing and quality gate vectorised across streams, :mod:`emotionkd.sdk.batch_pipeline`);
* ``lanes``: one ``Gateway.push`` per wearer (per-stream Python; ``--lanes`` streams only, as it
  is slow).

Prints, per mode: CPU seconds per tick (process time: all threads, immune to other processes),
wall p50/p99 per tick, and the streams that fit real time on ``--cores`` cores by CPU time
(``streams × cores / CPU s per tick``). Asserts nothing.

    .venv/bin/python tests/benchmarks/gateway_load.py MODEL.onnx [--streams 2000] [--ticks 30] [--rate 128]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, GsrSynthesizer
from emotionkd.sdk.bench_measures import gateway_ticks
from emotionkd.sdk.gateway import Gateway

TARGET_STREAMS = 2000
TARGET_P99_S = 1.0


def wearers(streams: int, seconds: float, rate_hz: float, seed: int = 0) -> np.ndarray:
    """(streams, n) µS: a few distinct synthetic subjects, each stream scaled and offset."""
    n = int(round(seconds * rate_hz))
    base = np.stack([GsrSynthesizer(GsrSynthConfig(rate_hz=rate_hz), seed=seed + k).read(n) for k in range(8)])
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, base.shape[0], streams)
    gain = rng.uniform(0.6, 1.6, (streams, 1))
    return base[pick] * gain + rng.normal(0.0, 0.003, (streams, n))


def run(model: Path, signals: np.ndarray, rate_hz: float, ticks: int, warm_ticks: int, cohort_size: int,
        workers: int, max_batch: int, mode: str) -> dict[str, float]:
    """One mode on ``signals`` (streams, n), through the SDK's tick loop (``sdk.bench_measures.gateway_ticks``)."""
    hop = int(round(rate_hz))
    with Gateway(model, hop_s=1.0, workers=workers, max_batch=max_batch) as gateway:
        r = gateway_ticks(gateway, signals.shape[0], lambda second: signals[:, second * hop:(second + 1) * hop],
                          rate_hz, ticks, warm_ticks, cohort_size=cohort_size if mode == "cohort" else None)
    return {"streams": r["streams"], "cpu_s_per_tick": r["cpu_s_median"], "wall_p50_s": r["tick_s_median"],
            "wall_p99_s": r["tick_s_p99"], "windows_per_tick": r["windows_per_tick"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--streams", type=int, default=TARGET_STREAMS)
    parser.add_argument("--lanes", type=int, default=200, help="streams for the per-stream (lanes) comparison; 0 = skip")
    parser.add_argument("--ticks", type=int, default=30, help="timed ticks (1 s of every stream each)")
    parser.add_argument("--rate", type=float, default=128.0, help="wearers' sample rate (Hz)")
    parser.add_argument("--cohort-size", type=int, default=500, help="streams per cohort (e.g. one hub's radio)")
    parser.add_argument("--workers", type=int, default=2, help="parallel onnxruntime calls (one thread each)")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--cores", type=int, default=2, help="cores the capacity is stated for")
    args = parser.parse_args()

    probe = Gateway(args.model)
    warm = int(np.ceil(probe.contract.window_s)) + 2  # until every stream emits windows
    window_s, model_rate = probe.contract.window_s, probe.contract.sample_rate_hz
    probe.close()
    signals = wearers(max(args.streams, args.lanes), warm + args.ticks + 1, args.rate)
    print(f"model {args.model.name}: {window_s:g} s windows at {model_rate:g} Hz; wearers at {args.rate:g} Hz, "
          f"1 s hop, {args.ticks} ticks after {warm} warm-up; workers {args.workers}, max_batch {args.max_batch}; "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'mode':<8}{'streams':>8}{'CPU s/tick':>12}{'CPU ms/stream':>14}{'wall p50':>10}{'wall p99':>10}"
          f"{f'streams on {args.cores} cores (CPU)':>28}")
    rows = [("cohort", args.streams)] + ([("lanes", args.lanes)] if args.lanes else [])
    for mode, n in rows:
        r = run(args.model, signals[:n], args.rate, args.ticks, warm, args.cohort_size, args.workers, args.max_batch, mode)
        capacity = int(n * args.cores / max(r["cpu_s_per_tick"], 1e-9))
        print(f"{mode:<8}{n:>8}{r['cpu_s_per_tick']:>12.3f}{r['cpu_s_per_tick'] / n * 1e3:>14.3f}"
              f"{r['wall_p50_s']:>10.3f}{r['wall_p99_s']:>10.3f}{capacity:>28}")
        if mode == "cohort":
            met = capacity >= TARGET_STREAMS and r["wall_p99_s"] < TARGET_P99_S
            print(f"  target >= {TARGET_STREAMS} real-time streams on {args.cores} cores by CPU time and p99 tick "
                  f"< {TARGET_P99_S:g} s: {'met' if met else 'missed'} ({capacity} streams, p99 {r['wall_p99_s']:.3f} s "
                  f"wall on this shared machine)")


if __name__ == "__main__":
    main()
