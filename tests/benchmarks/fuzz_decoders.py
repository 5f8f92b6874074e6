"""Fuzz every firmware_bridge decoder with random and mutated inputs.

    python tests/benchmarks/fuzz_decoders.py                # 10^6 inputs through every decoder
    python tests/benchmarks/fuzz_decoders.py --inputs 10000000          # the issue's 10^7
    python tests/benchmarks/fuzz_decoders.py --inputs 20000 --seed 3
    nice -n 10 python tests/benchmarks/fuzz_decoders.py --inputs 10000000 --cpu-seconds 600

``--cpu-seconds`` stops early when the process has used that much CPU time and reports how many
inputs it ran (the figure docs/reliability.md quotes).

The decoders are the device registry's (:data:`emotionkd.firmware_bridge.devices.DEVICES`), as a
source builds them: each protocol's serial decoder at its default rate, its framed-BLE decoder
where it has a framed BLE profile, and the option variants in :data:`OPTION_VARIANTS`; a device
added to the registry is fuzzed with no change here, and the run refuses to start until
:func:`corpus` has a valid stream of its protocol to mutate.

Each input (random bytes, or a valid stream of the protocol with bit flips, inserted garbage,
deleted/duplicated/truncated runs) is fed to a long-lived decoder of every protocol (stateful,
split at random points; a framed-BLE decoder gets whole notifications) and, every 1000 inputs,
to fresh ones. The only errors allowed are the
documented ones: ``feed`` raises nothing; ``decode_frame``/``cobs_decode`` raise
:class:`ProtocolError`. Invariants checked: blocks are contiguous on the sample axis, arrays
have matching shapes and dtypes, internal buffers stay bounded, and no feed emits more than
``5 × bytes + 2 × max_gap_samples`` samples (a claimed rate or jump is never an allocation). The
EKD seeds include hostile HELLOs (rates of 0, 1 mHz, 4.3 MHz) and t0 jumps of up to 2^31.
Prints counts, rate and peak RSS.
"""

from __future__ import annotations

import argparse
import random
import resource
import struct
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from emotionkd.firmware_bridge.bitalino import pack_frame
from emotionkd.firmware_bridge.cobs import cobs_decode
from emotionkd.firmware_bridge.decoding import Decoder
from emotionkd.firmware_bridge.devices import DEVICES
from emotionkd.firmware_bridge.ekd import (
    FrameType,
    Hello,
    control_frame,
    data_frame,
    decode_frame,
    serial_encode,
)
from emotionkd.firmware_bridge.errors import ProtocolError
from emotionkd.firmware_bridge.samples import SampleBlock

MAX_BUFFERED = 8192  # no decoder may hold more than this many undecoded bytes
#: besides each protocol's defaults, these values of its own URL options (the registry's
#: ``options``) are fuzzed too: name → (protocol, options)
OPTION_VARIANTS: dict[str, tuple[str, dict[str, str]]] = {"ascii_kohm": ("ascii", {"unit": "kOhm"})}
#: the suffix of a protocol's framed-BLE decoder (one frame per notification)
BLE = "_ble"


def _ekd_corpus(rng: random.Random) -> list[bytes]:
    # mostly a sane HELLO; sometimes one a hostile device sends (absurd or zero rates)
    rate_mhz = rng.choice([128000, 128000, 128000, 0, 1, 0xFFFFFFFF, 32768000])
    hello = Hello(0x0102, rate_mhz, 12, 1, 0.01, -0.5, "FUZZ")
    frames = [control_frame(FrameType.HELLO, 0, 0, hello.encode())]
    t0 = rng.randrange(2**32)
    for seq in range(1, 40):
        fmt = rng.choice([0, 1, 2])
        n = rng.choice([1, 4, 8, 30])
        top = {0: 2**16, 1: 2**24, 2: 2**32}[fmt]
        frames.append(data_frame(seq, t0, [rng.randrange(top) for _ in range(n)], fmt, flags=rng.randrange(32)))
        jump = rng.choice([0, 0, 0, 0, 1, 1000, 2**20, 2**30, 2**31])  # lost samples, claimed or real
        t0 = (t0 + n + jump) & 0xFFFFFFFF
    return frames


def corpus(rng: random.Random) -> dict[str, bytes]:
    """One valid stream per protocol, and per framed-BLE format (the mutation seeds), by the
    names :func:`make_decoders` gives."""
    ekd_frames = _ekd_corpus(rng)
    shimmer = b"\xff\xff\x02" + struct.pack("<HIBB", 256, 0, 1, 1) + bytes([0x1C]) + b"\xff"
    for i in range(200):
        shimmer += b"\x00" + ((1000 + 256 * i) % 2**24).to_bytes(3, "little") + struct.pack("<H", rng.randrange(2**16))
    return {
        "ekd": b"".join(serial_encode(f) for f in ekd_frames),
        "ekd" + BLE: b"".join(ekd_frames),
        "ascii": b"".join(f"{rng.randrange(1024)}\r\n".encode() for _ in range(200)) + b"hello\n3.5e2\n",
        "shimmer3": shimmer,
        "bitalino": b"".join(pack_frame([rng.randrange(1024)], i & 15) for i in range(300)),
    }


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:  # bit flip
            out[min(pos, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:  # garbage
            out[pos:pos] = rng.randbytes(rng.randint(1, 40))
        elif op == 2:  # deletion
            del out[pos : pos + rng.randint(1, 20)]
        elif op == 3:  # duplication
            out[pos:pos] = out[pos : pos + rng.randint(1, 30)]
        elif op == 4:  # truncation
            del out[pos:]
        else:  # zeros (delimiters) and 0xFF (ACK bytes) where they hurt most
            out[pos:pos] = bytes([rng.choice([0, 0xFF, 0x0A])]) * rng.randint(1, 3)
    return bytes(out)


def make_decoders() -> dict[str, Callable[[], Decoder[Any]]]:
    """A factory of a fresh decoder for every wire format in the device registry, by name: the
    protocol (serial byte stream), ``<protocol>_ble`` (framed BLE) and :data:`OPTION_VARIANTS`."""
    factories: dict[str, Callable[[], Decoder[Any]]] = {}
    for protocol, device in DEVICES.items():
        factories[protocol] = partial(device.decoder, device.default_rate_hz)
        if any(profile.framed for profile in device.ble_profiles):
            factories[protocol + BLE] = partial(device.decoder, device.default_rate_hz, framed_ble=True)
    for name, (protocol, options) in OPTION_VARIANTS.items():
        factories[name] = partial(DEVICES[protocol].decoder, DEVICES[protocol].default_rate_hz, options)
    return factories


def unseeded(seeds: dict[str, bytes], factories: dict[str, Callable[[], Decoder[Any]]]) -> list[str]:
    """The wire formats :func:`corpus` has no valid stream for (an option variant shares its
    protocol's)."""
    return [name for name in factories if name not in seeds and name not in OPTION_VARIANTS]


def _check(blocks: list[SampleBlock], expected: int) -> int:
    for b in blocks:
        assert b.first_index == expected, "blocks must be contiguous"
        assert b.conductance_us.dtype == np.float64 and b.flags.dtype == np.uint8
        assert b.conductance_us.shape == b.flags.shape and b.conductance_us.ndim == 1
        expected += len(b)
    return expected


def _buffered(decoder: Decoder[Any]) -> int:
    return sum(len(getattr(decoder, name, b"")) for name in ("_buf", "_partial"))


def _emitted_bound(decoder: Decoder[Any], size: int) -> int:
    return 5 * size + 2 * decoder.axis.max_gap_samples


def run_fuzz(n_inputs: int, seed: int = 0, cpu_seconds: float | None = None) -> dict[str, int | float]:
    """Fuzz ``n_inputs`` inputs through every decoder (or until ``cpu_seconds`` of process CPU
    time); returns counts (raises AssertionError on a violated invariant, ValueError when a
    registry device has no seed stream in :func:`corpus`, lets any undocumented exception
    propagate)."""
    rng = random.Random(seed)
    cpu_start = time.process_time()
    seeds = corpus(rng)
    factories = make_decoders()
    missing = unseeded(seeds, factories)
    if missing:  # a new device would be fuzzed with random bytes only: its real frames never tried
        raise ValueError(f"corpus() has no valid stream of {', '.join(missing)}: add one to fuzz it properly")
    live = {name: make() for name, make in factories.items()}
    next_index = dict.fromkeys(live, 0)
    stats: dict[str, int | float] = {"inputs": 0, "bytes": 0, "samples": 0, "frame_errors": 0, "cobs_errors": 0}
    started = time.perf_counter()
    for i in range(n_inputs):
        if cpu_seconds is not None and i % 1000 == 0 and time.process_time() - cpu_start > cpu_seconds:
            break
        kind = rng.random()
        if kind < 0.3:
            data = rng.randbytes(rng.randint(0, 96))
        else:
            name = rng.choice(list(seeds))
            base = seeds[name]
            start = rng.randrange(len(base))
            data = mutate(base[start : start + rng.randint(1, 160)], rng)
        stats["inputs"] += 1
        stats["bytes"] += len(data)
        # the frame-level parsers: only ProtocolError is documented
        try:
            decode_frame(data)
        except ProtocolError:
            stats["frame_errors"] += 1
        try:
            cobs_decode(data)
        except ProtocolError:
            stats["cobs_errors"] += 1
        for name, decoder in live.items():
            if name.endswith(BLE):  # one notification is one frame: never split
                blocks = decoder.feed(data, host_time_s=0.0)
            else:
                cut = rng.randint(0, len(data))
                blocks = decoder.feed(data[:cut], host_time_s=0.0) + decoder.feed(data[cut:], host_time_s=0.0)
            next_index[name] = _check(blocks, next_index[name])
            emitted = sum(len(b) for b in blocks)
            assert emitted <= _emitted_bound(decoder, len(data)), f"{name} emitted {emitted} samples for {len(data)} bytes"
            stats["samples"] += emitted
            assert _buffered(decoder) <= MAX_BUFFERED, f"{name} buffers {_buffered(decoder)} bytes"
        if i % 1000 == 999:
            for name, make in factories.items():
                fresh = make()
                _check(fresh.feed(data, host_time_s=0.0), 0)
                if rng.random() < 0.5:  # sometimes also restart the long-lived one
                    live[name] = make()
                    next_index[name] = 0
                else:
                    live[name].link_reset(rng.random() * 20)
                    next_index[name] = live[name].axis.next_index
    stats["seconds"] = time.perf_counter() - started
    stats["cpu_seconds"] = time.process_time() - cpu_start
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu-seconds", type=float, default=None,
                        help="stop after this much process CPU time (reports the inputs run)")
    args = parser.parse_args(argv)
    stats = run_fuzz(args.inputs, args.seed, args.cpu_seconds)
    decoders = len(make_decoders())
    print(f"fuzzed {stats['inputs']:,} of {args.inputs:,} inputs ({stats['bytes']:,} bytes) through {decoders} "
          f"decoders + decode_frame + cobs_decode in {stats['seconds']:.1f} s wall, {stats['cpu_seconds']:.1f} s CPU "
          f"({stats['inputs'] / max(stats['cpu_seconds'], 1e-9):,.0f} inputs per CPU second)")
    print(f"samples out: {stats['samples']:,}; rejected frames: {stats['frame_errors']:,}; "
          f"COBS errors: {stats['cobs_errors']:,}; undocumented errors: 0; invariant violations: 0")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
