"""The EKD firmware emulator (COBS-framed EKD v1 over the pty; answers CMD frames)."""

from __future__ import annotations

import math
import time

import numpy as np

from emotionkd.firmware_bridge import ekd
from emotionkd.firmware_bridge.cobs import cobs_decode
from emotionkd.firmware_bridge.emulators.base import (
    EKD_SAMPLE_FORMATS,
    DeviceEmulator,
    EmulatorConfig,
)
from emotionkd.firmware_bridge.errors import ProtocolError


class EkdEmulator(DeviceEmulator):
    """An EKD v1 device on a serial line (COBS + 0x00): HELLO, STATUS, DATA, ACK; answers CMDs."""

    device = "ekd"
    #: linear calibration of the raw formats: µS = GAIN · adc + OFFSET
    GAIN_US = 0.01
    OFFSET_US = 0.0

    def __init__(self, config: EmulatorConfig | None = None, name: str = "EKD-EMU") -> None:
        super().__init__(config)
        self.name = name
        self._seq = 0
        self._stream_start_index = 0
        self._rx = bytearray()
        self._device_us0 = time.monotonic()
        self._next_status = 0.0
        self._format = EKD_SAMPLE_FORMATS[self.config.sample_format]
        self._per_frame = max(1, min(255, int(math.ceil(self.rate_hz / self.config.frames_per_s))))

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFFFF
        return seq

    def _device_us(self) -> int:
        return int((time.monotonic() - self._device_us0) * 1e6) & 0xFFFFFFFF

    def hello(self) -> ekd.Hello:
        adc_bits = {ekd.SampleFormat.U16_ADC: 16, ekd.SampleFormat.U24_ADC: 24}.get(self._format, 0)
        kind = ekd.CalibrationKind.NANOSIEMENS if self._format == ekd.SampleFormat.U32_NANOSIEMENS else ekd.CalibrationKind.LINEAR
        return ekd.Hello(0x0100, int(round(self.rate_hz * 1000)), adc_bits, kind, self.GAIN_US,
                         self.OFFSET_US, self.name)

    def _send_frame(self, frame: bytes) -> None:
        self._write(ekd.serial_encode(frame))

    def _on_connect(self) -> None:
        self._rx.clear()
        self._send_frame(ekd.control_frame(ekd.FrameType.HELLO, self._next_seq(), self._device_us(),
                                           self.hello().encode()))

    def _on_host_bytes(self, data: bytes) -> None:
        self._rx += data
        while True:
            end = self._rx.find(0)
            if end < 0:
                if len(self._rx) > 4096:
                    self._rx.clear()
                return
            chunk = bytes(self._rx[:end])
            del self._rx[: end + 1]
            if not chunk:
                continue
            try:
                frame = ekd.decode_frame(cobs_decode(chunk))
            except ProtocolError:
                continue  # a real device ignores what it cannot parse
            if frame.frame_type != ekd.FrameType.CMD or not frame.payload:
                continue
            self.counters.commands += 1
            self._command(ekd.Command.decode(frame.payload), frame.seq)

    def _command(self, cmd: ekd.Command, seq: int) -> None:
        status = 0
        if cmd.opcode == ekd.Opcode.START:
            if not self.streaming:  # idempotent: a second START changes nothing
                self._streaming = True
                self._stream_start_index = self._samples_done  # t0 counts from here
        elif cmd.opcode == ekd.Opcode.STOP:
            self._streaming = False
        elif cmd.opcode == ekd.Opcode.HELLO_REQUEST:
            pass
        elif cmd.opcode in (ekd.Opcode.SET_RATE, ekd.Opcode.TIMESYNC):
            status = 2 if cmd.opcode == ekd.Opcode.SET_RATE else 0  # the emulator's rate is fixed
        else:
            status = 1
        self._send_frame(ekd.control_frame(ekd.FrameType.ACK, seq, self._device_us(),
                                           ekd.Ack(cmd.opcode, status).encode()))
        if cmd.opcode == ekd.Opcode.HELLO_REQUEST:
            self._send_frame(ekd.control_frame(ekd.FrameType.HELLO, self._next_seq(), self._device_us(),
                                               self.hello().encode()))

    def _encode(self, values_us: np.ndarray, first_index: int) -> list[bytes]:
        flags = ekd.FrameFlag.ELECTRODE_OFF if self.electrode_off else 0
        if self._format == ekd.SampleFormat.U32_NANOSIEMENS:
            ints = np.clip(np.round(values_us * 1000.0), 0, 2**32 - 1).astype(np.int64)
            if self.electrode_off:
                ints[:] = 0
        else:
            top = 2**16 - 1 if self._format == ekd.SampleFormat.U16_ADC else 2**24 - 1
            ints = np.clip(np.round((values_us - self.OFFSET_US) / self.GAIN_US), 0, top).astype(np.int64)
            if self.electrode_off:
                ints[:] = top
        units = []
        for start in range(0, ints.size, self._per_frame):
            chunk = ints[start : start + self._per_frame].tolist()
            t0 = first_index + start - self._stream_start_index  # sample index since START
            units.append(ekd.serial_encode(ekd.data_frame(self._next_seq(), t0, chunk,
                                                          self._format, flags=flags)))
        now = time.monotonic()
        if now >= self._next_status:
            self._next_status = now + 1.0
            status = ekd.Status(3900, flags).encode()
            units.append(ekd.serial_encode(ekd.control_frame(ekd.FrameType.STATUS, self._next_seq(),
                                                             self._device_us(), status)))
        return units
