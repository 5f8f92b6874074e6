"""What the EKD serial decoder's resync search costs: CPU per MB of clean frames, random bytes,
and the worst input found (runs of ``02 10``: a candidate frame start at every other byte).

    python tests/benchmarks/resync_cost.py

A hostile device can only slow the host down if it sends faster than the decoder's worst case;
a 115200-baud line carries 11.5 kB/s.
"""

from __future__ import annotations

import random
import sys
import time

from emotionkd.firmware_bridge.ekd import data_frame, serial_encode
from emotionkd.firmware_bridge.ekd_decoder import EkdSerialDecoder


def inputs() -> dict[str, bytes]:
    rng = random.Random(0)
    frames = (serial_encode(data_frame(s & 0xFFFF, s * 16, [2_000_000] * 16, 2)) for s in range((1 << 20) // 80))
    return {
        "clean frames": b"".join(frames),
        "random bytes": rng.randbytes(1 << 20),
        "adversarial 02 10 runs": (bytes([0x02, 0x10]) * 1040 + b"\x00") * 500,
    }


def main() -> int:
    for name, data in inputs().items():
        decoder = EkdSerialDecoder(128.0)
        started = time.process_time()
        for i in range(0, len(data), 4096):
            decoder.feed(data[i : i + 4096], host_time_s=0.0)
        cpu = time.process_time() - started
        print(f"{name}: {len(data) / 1e6:.2f} MB in {cpu:.2f} CPU s = {len(data) / 1e6 / cpu:.2f} MB per CPU second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
