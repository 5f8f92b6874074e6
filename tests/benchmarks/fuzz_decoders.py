"""Fuzz every firmware_bridge decoder with random and mutated inputs.

    python tests/benchmarks/fuzz_decoders.py                # 10^6 inputs through every decoder
    python tests/benchmarks/fuzz_decoders.py --inputs 20000 --seed 3

Each input (random bytes, or a valid stream of the protocol with bit flips, inserted garbage,
deleted/duplicated/truncated runs) is fed to a long-lived decoder of every protocol (stateful,
split at random points) and, every 1000 inputs, to fresh ones. The only errors allowed are the
documented ones: ``feed`` raises nothing; ``decode_frame``/``cobs_decode`` raise
:class:`ProtocolError`. Invariants checked: blocks are contiguous on the sample axis, arrays
have matching shapes and dtypes, internal buffers stay bounded. Prints counts and time.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
from collections.abc import Callable

import numpy as np

from emotionkd.firmware_bridge.ascii_lines import AsciiLineDecoder
from emotionkd.firmware_bridge.bitalino import BitalinoDecoder, pack_frame
from emotionkd.firmware_bridge.cobs import cobs_decode
from emotionkd.firmware_bridge.decoding import Decoder
from emotionkd.firmware_bridge.ekd import (
    FrameType,
    Hello,
    control_frame,
    data_frame,
    decode_frame,
    serial_encode,
)
from emotionkd.firmware_bridge.ekd_decoder import EkdBleDecoder, EkdSerialDecoder
from emotionkd.firmware_bridge.errors import ProtocolError
from emotionkd.firmware_bridge.samples import SampleBlock
from emotionkd.firmware_bridge.shimmer3 import Shimmer3Decoder

MAX_BUFFERED = 8192  # no decoder may hold more than this many undecoded bytes


def _ekd_corpus(rng: random.Random) -> list[bytes]:
    hello = Hello(0x0102, 128000, 12, 1, 0.01, -0.5, "FUZZ")
    frames = [control_frame(FrameType.HELLO, 0, 0, hello.encode())]
    t0 = rng.randrange(2**32)
    for seq in range(1, 40):
        fmt = rng.choice([0, 1, 2])
        n = rng.choice([1, 4, 8, 30])
        top = {0: 2**16, 1: 2**24, 2: 2**32}[fmt]
        frames.append(data_frame(seq, t0, [rng.randrange(top) for _ in range(n)], fmt, flags=rng.randrange(32)))
        t0 = (t0 + n) & 0xFFFFFFFF
    return frames


def corpus(rng: random.Random) -> dict[str, bytes]:
    """One valid stream per protocol (the mutation seeds)."""
    ekd_frames = _ekd_corpus(rng)
    shimmer = b"\xff\xff\x02" + struct.pack("<HIBB", 256, 0, 1, 1) + bytes([0x1C]) + b"\xff"
    for i in range(200):
        shimmer += b"\x00" + ((1000 + 256 * i) % 2**24).to_bytes(3, "little") + struct.pack("<H", rng.randrange(2**16))
    return {
        "ekd_serial": b"".join(serial_encode(f) for f in ekd_frames),
        "ekd_ble": b"".join(ekd_frames),  # cut at frame boundaries below
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


def make_decoders() -> dict[str, Callable[[], Decoder]]:
    return {
        "ekd_serial": EkdSerialDecoder,
        "ekd_ble": EkdBleDecoder,
        "ascii": lambda: AsciiLineDecoder(unit="adc"),
        "ascii_kohm": lambda: AsciiLineDecoder(unit="kOhm"),
        "shimmer3": Shimmer3Decoder,
        "bitalino": BitalinoDecoder,
    }


def _check(blocks: list[SampleBlock], expected: int) -> int:
    for b in blocks:
        assert b.first_index == expected, "blocks must be contiguous"
        assert b.conductance_us.dtype == np.float64 and b.flags.dtype == np.uint8
        assert b.conductance_us.shape == b.flags.shape and b.conductance_us.ndim == 1
        expected += len(b)
    return expected


def _buffered(decoder: Decoder) -> int:
    return sum(len(getattr(decoder, name, b"")) for name in ("_buf", "_partial"))


def run_fuzz(n_inputs: int, seed: int = 0) -> dict[str, int | float]:
    """Fuzz ``n_inputs`` inputs through every decoder; returns counts (raises AssertionError on a
    violated invariant, lets any undocumented exception propagate)."""
    rng = random.Random(seed)
    seeds = corpus(rng)
    factories = make_decoders()
    live = {name: make() for name, make in factories.items()}
    next_index = dict.fromkeys(live, 0)
    stats: dict[str, int | float] = {"inputs": 0, "bytes": 0, "samples": 0, "frame_errors": 0, "cobs_errors": 0}
    started = time.perf_counter()
    for i in range(n_inputs):
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
            if name == "ekd_ble":
                blocks = decoder.feed(data, host_time_s=0.0)
            else:
                cut = rng.randint(0, len(data))
                blocks = decoder.feed(data[:cut], host_time_s=0.0) + decoder.feed(data[cut:], host_time_s=0.0)
            next_index[name] = _check(blocks, next_index[name])
            stats["samples"] += sum(len(b) for b in blocks)
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
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    stats = run_fuzz(args.inputs, args.seed)
    decoders = len(make_decoders())
    print(f"fuzzed {stats['inputs']:,} inputs ({stats['bytes']:,} bytes) through {decoders} decoders "
          f"+ decode_frame + cobs_decode in {stats['seconds']:.1f} s "
          f"({stats['inputs'] / stats['seconds']:,.0f} inputs/s)")
    print(f"samples out: {stats['samples']:,}; rejected frames: {stats['frame_errors']:,}; "
          f"COBS errors: {stats['cobs_errors']:,}; undocumented errors: 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
