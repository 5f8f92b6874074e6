"""Custom firmware speaking EKD: what the device sends, and the host side that reads it.

Your own GSR device speaks EKD v1 with the C99 library in ``firmware_bridge/firmware/``
(``ekd_frame.h``/``ekd_frame.c``, no allocation, any MCU) - see
``firmware_bridge/firmware/examples/esp32_gsr/esp32_gsr.ino`` for a complete ESP32 sketch
(USB serial + BLE) and ``firmware_bridge/firmware/PROTOCOL.md`` for the wire format. Once it is
flashed and plugged in, the host side is one command::

    emotionkd-sdk stream --port /dev/ttyUSB0 --protocol ekd

This script runs the same firmware loop in Python on a pseudo-terminal (so it works without
hardware): it answers the host's HELLO request and START command, samples a 12-bit ADC at
128 Hz (synthetic skin conductance, calibrated as µS = 0.005 · adc like the sketch), flushes DATA
frames every 250 ms and a STATUS frame every second, all encoded with the Python reference
encoder (``emotionkd.firmware_bridge.ekd``, byte-identical to the C library: the test suite
checks it). The SDK then streams it like a real device::

    python examples/custom_firmware.py                 # 20 s, predictions printed
    python examples/custom_firmware.py --serve 0       # only the device: connect with
                                                       # emotionkd-sdk stream --port /dev/pts/N
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pty
import threading
import time
import tty

import numpy as np

from emotionkd.firmware_bridge import ekd
from emotionkd.firmware_bridge.cobs import cobs_decode
from emotionkd.firmware_bridge.errors import ProtocolError
from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, GsrSynthesizer

RATE_HZ = 128
GAIN_US = 0.005  # µS per ADC count (the sketch's calibration)
ADC_BITS = 12
FLUSH_S = 0.25  # PROTOCOL.md: flush at least every 250 ms
NAME = "PY-FIRMWARE"


class PythonFirmware:
    """The ESP32 sketch's loop (setup, command handling, sampling, flush) on a pty master."""

    def __init__(self, seed: int = 0) -> None:
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        os.close(slave)  # the host opens the port
        self.synth = GsrSynthesizer(GsrSynthConfig(rate_hz=RATE_HZ), seed=seed, arousal=0.3)
        self.seq = 0  # one counter for every frame sent
        self.streaming = False
        self.sample_index = 0  # t0 of the next sample since START
        self.rx = bytearray()
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.frames_sent = 0

    def micros(self) -> int:
        return int((time.monotonic() - self.started) * 1e6)

    def send(self, frame: bytes) -> None:
        with contextlib.suppress(OSError):  # no host connected: the bytes are lost, like on a UART
            os.write(self.master, ekd.serial_encode(frame))
            self.frames_sent += 1

    def next_seq(self) -> int:
        seq, self.seq = self.seq, (self.seq + 1) & 0xFFFF
        return seq

    def send_hello(self) -> None:
        hello = ekd.Hello(0x0100, RATE_HZ * 1000, ADC_BITS, ekd.CalibrationKind.LINEAR, GAIN_US, 0.0, NAME)
        self.send(ekd.control_frame(ekd.FrameType.HELLO, self.next_seq(), self.micros(), hello.encode()))

    def handle_command(self, frame: ekd.Frame) -> None:
        if frame.frame_type != ekd.FrameType.CMD or not frame.payload:
            return
        cmd = ekd.Command.decode(frame.payload)
        status = 0
        if cmd.opcode == ekd.Opcode.START and not self.streaming:  # START is idempotent
            self.streaming, self.sample_index = True, 0
        elif cmd.opcode == ekd.Opcode.STOP:
            self.streaming = False
        elif cmd.opcode not in (ekd.Opcode.START, ekd.Opcode.HELLO_REQUEST, ekd.Opcode.TIMESYNC):
            status = 1  # SET_RATE is not supported, as in the sketch
        # an ACK echoes the seq of the CMD it answers
        self.send(ekd.control_frame(ekd.FrameType.ACK, frame.seq, self.micros(), ekd.Ack(cmd.opcode, status).encode()))
        if cmd.opcode == ekd.Opcode.HELLO_REQUEST:
            self.send_hello()

    def poll_commands(self, timeout_s: float) -> None:
        import select

        ready, _, _ = select.select([self.master], [], [], timeout_s)
        if not ready:
            return
        try:
            self.rx += os.read(self.master, 1024)
        except OSError:  # the host closed the port
            time.sleep(timeout_s)
            return
        while (end := self.rx.find(0)) >= 0:  # a 0x00 ends each COBS frame
            chunk = bytes(self.rx[:end])
            del self.rx[: end + 1]
            with contextlib.suppress(ProtocolError):  # firmware ignores what it cannot parse
                if chunk:
                    self.handle_command(ekd.decode_frame(cobs_decode(chunk)))

    def flush(self, adc: np.ndarray) -> None:
        top = (1 << ADC_BITS) - 1
        for start in range(0, adc.size, 64):
            chunk = adc[start : start + 64]
            flags = ekd.FrameFlag.SATURATED if int(chunk.max()) >= top else 0
            self.send(ekd.data_frame(self.next_seq(), self.sample_index + start, chunk.tolist(),
                                     ekd.SampleFormat.U16_ADC, flags=flags))
        self.sample_index += adc.size

    def run(self) -> None:
        """loop(): sample at 128 Hz, flush every 250 ms, STATUS every second."""
        next_flush = next_status = time.monotonic()
        while not self.stop.is_set():
            self.poll_commands(max(0.0, next_flush - time.monotonic()))
            now = time.monotonic()
            if now < next_flush:
                continue
            next_flush += FLUSH_S
            samples_us = self.synth.read(int(RATE_HZ * FLUSH_S))  # the ADC keeps sampling
            if not self.streaming:
                continue
            self.flush(np.clip(np.round(samples_us / GAIN_US), 0, (1 << ADC_BITS) - 1).astype(np.int64))
            if now >= next_status:
                next_status = now + 1.0
                status = ekd.Status(battery_mv=3900, flags=0).encode()
                self.send(ekd.control_frame(ekd.FrameType.STATUS, self.next_seq(), self.micros(), status))

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):
            os.close(self.master)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of signal to classify (default 40; the bundled model reads 32 s windows)")
    parser.add_argument("--model", default=None, help="an .onnx model (default: the bundled one)")
    parser.add_argument("--serve", type=float, default=None, metavar="SECONDS",
                        help="only run the device for SECONDS (0: until Ctrl-C) and print its port")
    args = parser.parse_args()

    firmware = PythonFirmware()
    thread = threading.Thread(target=firmware.run, daemon=True)
    thread.start()
    try:
        if args.serve is not None:
            print(f"EKD device on {firmware.port}: emotionkd-sdk stream --port {firmware.port} --protocol ekd",
                  flush=True)
            firmware.stop.wait(args.serve or None)
            return
        from emotionkd.sdk import EmotionClassifier

        clf = EmotionClassifier(args.model)
        print(f"firmware on {firmware.port}; host: EmotionClassifier().stream('serial://{firmware.port}?protocol=ekd')")
        count = 0
        for p in clf.stream(f"serial://{firmware.port}?protocol=ekd", duration_s=args.duration):
            count += 1
            what = (f"arousal {p.arousal:.2f} valence {p.valence:.2f}" if p.ok
                    else f"{p.quality}: {p.quality_detail}")
            print(f"{p.start_s:5.1f}-{p.end_s:5.1f} s  {what}", flush=True)
        print(f"{count} predictions; the firmware sent {firmware.frames_sent} frames")
    finally:
        firmware.close()
        thread.join(2.0)


if __name__ == "__main__":
    main()
