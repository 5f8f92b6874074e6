"""The C99 firmware library compiled with gcc: byte-equal to the Python encoder and PROTOCOL.md."""

from __future__ import annotations

import random
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

import pytest

from emotionkd.firmware_bridge.cobs import cobs_encode
from emotionkd.firmware_bridge.ekd import (
    Ack,
    FrameType,
    Hello,
    Opcode,
    Status,
    command_frame,
    control_frame,
    data_frame,
    serial_encode,
)

FIRMWARE = Path(str(files("emotionkd.firmware_bridge") / "firmware"))
DRIVER = Path(__file__).with_name("ekd_c_driver.c")
GCC = shutil.which("gcc") or shutil.which("cc")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if GCC is None:
        pytest.skip("no C compiler (gcc/cc) on PATH: install build-essential to check the C encoder")
    exe = tmp_path_factory.mktemp("c") / "ekd_driver"
    subprocess.run([GCC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", f"-I{FIRMWARE}",
                    str(FIRMWARE / "ekd_frame.c"), str(DRIVER), "-o", str(exe)], check=True, capture_output=True)
    return exe


def ask(exe: Path, lines: list[str]) -> list[str]:
    result = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def test_firmware_files_ship_with_the_package() -> None:
    for name in ("ekd_frame.h", "ekd_frame.c", "README.md", "PROTOCOL.md", "examples/esp32_gsr/esp32_gsr.ino"):
        assert (FIRMWARE / name).is_file(), name


def test_protocol_vectors(driver: Path) -> None:
    def h(text: str) -> str:
        return text.replace(" ", "")

    out = ask(driver, [
        "data 0 7 1000 2 0 4 2500000 2510000 0 2520000",
        "data 2 65535 4294967280 0 2 3 512 0 1023",
        "hello 0 123456 258 128000 12 1 0.01 -0.5 EKD-GSR-01",
        "ack 1 5000 1 0",
    ])
    # the frames and serial forms exactly as printed in PROTOCOL.md
    assert out[0].split() == [
        h("10 00 07 00 e8 03 00 00 04 02 a0 25 26 00 b0 4c 26 00 00 00 00 00 c0 73 26 00 50 d6"),
        h("02 10 02 07 03 e8 03 01 06 04 02 a0 25 26 04 b0 4c 26 01 01 01 01 04 c0 73 26 03 50 d6 00"),
    ]
    assert out[1].split() == [
        h("10 02 ff ff f0 ff ff ff 03 20 00 02 00 00 ff 03 0c 0a"),
        h("0b 10 02 ff ff f0 ff ff ff 03 20 02 02 01 05 ff 03 0c 0a 00"),
    ]
    assert out[2].split()[0] == h("12 00 00 00 40 e2 01 00 20 00 02 01 00 f4 01 00 0c 01 0a d7 23 3c 00 00 00 bf "
                                  "45 4b 44 2d 47 53 52 2d 30 31 00 00 00 00 00 00 4f 2d")
    assert out[3].split()[0] == h("14 00 01 00 88 13 00 00 02 00 01 00 c3 03")


def test_random_frames_equal_python(driver: Path) -> None:
    rng = random.Random(6)
    lines, expected = [], []
    for _ in range(300):
        fmt = rng.choice([0, 1, 2])
        count = rng.choice([0, 1, 4, 17, 255])
        top = {0: 2**16, 1: 2**24, 2: 2**32}[fmt]
        samples = [rng.randrange(top) if rng.random() < 0.8 else 0 for _ in range(count)]
        flags, seq, t0, gain_range = rng.randrange(32), rng.randrange(2**16), rng.randrange(2**32), rng.randrange(16)
        lines.append(f"data {flags} {seq} {t0} {fmt} {gain_range} {count} " + " ".join(map(str, samples)))
        frame = data_frame(seq, t0, samples, fmt, flags=flags, gain_range=gain_range)
        expected.append(f"{frame.hex()} {serial_encode(frame).hex()}")
    for _ in range(50):
        seq, us, mv, flags = rng.randrange(2**16), rng.randrange(2**32), rng.randrange(2**16), rng.randrange(32)
        lines.append(f"status {seq} {us} {mv} {flags}")
        frame = control_frame(FrameType.STATUS, seq, us, Status(mv, flags).encode(), flags=flags)
        expected.append(f"{frame.hex()} {serial_encode(frame).hex()}")
        op = rng.randrange(1, 6)
        lines.append(f"ack {seq} {us} {op} 0")
        frame = control_frame(FrameType.ACK, seq, us, Ack(op, 0).encode())
        expected.append(f"{frame.hex()} {serial_encode(frame).hex()}")
    hello = Hello(0x0203, 250_000, 16, 1, 0.125, 2.5, "dev")
    lines.append("hello 9 77 515 250000 16 1 0.125 2.5 dev")
    frame = control_frame(FrameType.HELLO, 9, 77, hello.encode())
    expected.append(f"{frame.hex()} {serial_encode(frame).hex()}")
    assert ask(driver, lines) == expected


def test_device_parses_host_commands(driver: Path) -> None:
    start = command_frame(Opcode.START, 1)
    rate = command_frame(Opcode.SET_RATE, 300, 256_000)
    sync = command_frame(Opcode.TIMESYNC, 5, 2**40 + 7)
    broken = bytearray(start)
    broken[-1] ^= 1
    out = ask(driver, [f"cmd {start.hex()}", f"cmd {rate.hex()}", f"cmd {sync.hex()}", f"cmd {bytes(broken).hex()}",
                       f"cmd {data_frame(0, 0, [1], 2).hex()}"])
    assert out == ["1 1 0", f"4 300 {256_000}", f"5 5 {2**40 + 7}", "invalid", "invalid"]


def test_cobs_decode_matches(driver: Path) -> None:
    rng = random.Random(1)
    payloads = [bytes(rng.choice([0, 0, rng.randrange(256)]) for _ in range(rng.randrange(1, 600))) for _ in range(30)]
    out = ask(driver, [f"cobsdec {cobs_encode(p).hex()}" for p in payloads] + ["cobsdec 0501"])
    assert out[:-1] == [p.hex() for p in payloads]
    assert out[-1] == "error"
