# size: the serial and BLE EKD decoders share the frame → sample logic; the resync search (find_frames) belongs with the serial framing
"""Sans-IO decoders for EKD v1: over a serial byte stream (COBS + 0x00) and over BLE.

Both turn frames into :class:`~emotionkd.firmware_bridge.samples.SampleBlock` s in µS with
per-sample :class:`~emotionkd.firmware_bridge.samples.SampleFlag` s.

* **Time axis.** ``t0`` of a DATA frame is the device's sample index; the decoder unwraps it
  (mod 2^32) and fills a forward jump with NaN + GAP (bounded, see ``decoding``). A frame that
  lies entirely behind the samples already emitted is a duplicate (dropped, counted); one that
  partly overlaps is trimmed. A jump backwards further than ``max_gap_s`` means the device
  restarted streaming: a discontinuity.
* **Sequence.** ``seq`` gaps (mod 2^16) count lost frames of every type except ACK (an ACK
  echoes the seq of the command it answers).
* **Calibration.** u32 nS samples need none. Raw ADC samples (u16/u24) need the HELLO's linear
  calibration (or one given to the constructor). Until a HELLO arrives, raw frames are *held*
  (up to ``max_gap_s`` worth of samples) and released, converted, when it arrives; if the buffer
  fills first, the oldest held samples are emitted as NaN + GAP and counted in
  ``samples_uncalibrated``. The host transports request a HELLO on every connect.
* **Flags.** Frame flags apply to every sample of the frame, except CLOCK_RESYNC and
  DEVICE_OVERFLOW, which mark the first sample. ELECTRODE_OFF samples are NaN (the reading is
  not skin conductance) with the ELECTRODE_OFF flag; raw samples at the ADC's full scale get
  SATURATED.
* **Resync (serial).** Bytes are split at 0x00. A chunk that fails COBS, CRC, version or length
  checks is searched for intact frames before anything is dropped: at every offset where a frame
  header can start, the COBS code chain is walked for the length that header announces, and a
  run that ends there and passes the CRC is a frame. So a flipped, deleted or inserted delimiter,
  a lost tail, or garbage without a 0x00 in front of a frame cost at most the damaged frame
  (PROTOCOL.md, Transports); the bytes no frame claims are counted in ``bytes_skipped``. A run
  without delimiter longer than two frames keeps only its last two frames' worth of bytes.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

import numpy as np

from emotionkd.firmware_bridge.bounds import is_plausible_rate
from emotionkd.firmware_bridge.cobs import (
    cobs_decode,
    cobs_decode_head,
    cobs_run_end,
    max_encoded_size,
)
from emotionkd.firmware_bridge.decoding import DEFAULT_MAX_GAP_S, Decoder, DecoderCounters
from emotionkd.firmware_bridge.ekd import (
    DEFAULT_RATE_HZ,
    HEADER_SIZE,
    MAX_FRAME_SIZE,
    MIN_FRAME_SIZE,
    Ack,
    CalibrationKind,
    Frame,
    FrameError,
    FrameFlag,
    FrameType,
    Hello,
    Opcode,
    SampleFormat,
    Status,
    command_frame,
    decode_frame,
    frame_size,
    serial_encode,
)
from emotionkd.firmware_bridge.errors import ProtocolError
from emotionkd.firmware_bridge.sample_axis import classify_jump
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag

#: the longest run of bytes without a 0x00 that can still hold frames: two merged frames
#: (one corrupted delimiter between them) plus the corrupted delimiter
_MAX_CHUNK = 2 * max_encoded_size(MAX_FRAME_SIZE) + 1
_FRAME_FLAG_MASK = 0x1F
_FIRST_SAMPLE_ONLY = FrameFlag.CLOCK_RESYNC | FrameFlag.DEVICE_OVERFLOW
#: where an encoded frame can start: a COBS code >= 2 followed by a version-1 ver_type byte of a
#: known type (lookahead: overlapping matches)
_FRAME_START = re.compile(rb"(?=[\x02-\xff][\x10-\x14])")


@dataclass
class EkdCounters(DecoderCounters):
    """EKD counters (see :class:`DecoderCounters` for the common ones).

    Attributes:
        data_frames, hello_frames, status_frames, ack_frames: accepted frames by type.
        unexpected_frames: CMD frames received by the host (only devices should get those).
        bad_version: frames of another protocol version.
        bad_length: frames whose length disagrees with n/fmt (or unknown format/type).
        cobs_errors: serial chunks that were not valid COBS.
        oversize_runs: runs of bytes without delimiter longer than two frames (front trimmed).
        duplicate_samples: samples received twice (dropped).
        samples_uncalibrated: raw samples emitted as NaN because no calibration arrived in time.
        battery_mv: the last STATUS battery voltage (0 = none yet).
    """

    data_frames: int = 0
    hello_frames: int = 0
    status_frames: int = 0
    ack_frames: int = 0
    unexpected_frames: int = 0
    bad_version: int = 0
    bad_length: int = 0
    cobs_errors: int = 0
    oversize_runs: int = 0
    duplicate_samples: int = 0
    samples_uncalibrated: int = 0
    battery_mv: int = 0


@dataclass(frozen=True)
class LinearCalibration:
    """µS = gain · adc + offset, and the ADC resolution (for saturation)."""

    gain: float
    offset: float
    adc_bits: int = 0

    @classmethod
    def from_hello(cls, hello: Hello) -> LinearCalibration:
        if hello.calibration == CalibrationKind.NANOSIEMENS:
            return cls(1e-3, 0.0, hello.adc_bits)
        return cls(float(hello.gain), float(hello.offset), hello.adc_bits)


class _EkdCore(Decoder[EkdCounters]):
    """Frame → sample logic shared by the serial and BLE decoders."""

    protocol = "ekd"

    def __init__(
        self,
        rate_hz: float = DEFAULT_RATE_HZ,
        *,
        calibration: LinearCalibration | None = None,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
    ) -> None:
        super().__init__(rate_hz, max_gap_s)
        self.counters = EkdCounters()
        self.calibration = calibration
        self._user_calibration = calibration is not None
        self.hello: Hello | None = None
        self.last_status: Status | None = None
        #: the last ACKs received (opcode, status, seq), newest last
        self.acks: deque[tuple[int, int, int]] = deque(maxlen=16)
        self._last_seq: int | None = None
        self._next_t0: int | None = None  # device index expected next (unwrapped)
        self._held: deque[tuple[Frame, float]] = deque()
        self._held_samples = 0
        self._host_seq = 0

    # -- commands the host sends ---------------------------------------------------------
    def command(self, opcode: int, argument: int | None = None) -> bytes:
        """An encoded CMD frame with the host's next seq (serial or BLE form per subclass)."""
        frame = command_frame(opcode, self._host_seq, argument)
        self._host_seq = (self._host_seq + 1) & 0xFFFF
        return self._wire(frame)

    def _wire(self, frame: bytes) -> bytes:
        return frame

    def startup_commands(self) -> list[bytes]:
        # HELLO first so that raw samples can be converted from the first frame on; START is
        # idempotent, so sending it again after a reconnect is always right.
        return [self.command(Opcode.HELLO_REQUEST), self.command(Opcode.START)]

    def stop_commands(self) -> list[bytes]:
        return [self.command(Opcode.STOP)]

    def link_reset(self, down_s: float | None = None) -> list[SampleBlock]:
        # t0 measures the gap itself; remember the outage to size a discontinuity if the device
        # restarted its counter meanwhile.
        self._pending_outage_s = down_s
        return []

    # -- frames ----------------------------------------------------------------------------
    def _count_rejection(self, error: ProtocolError, size: int) -> None:
        reason = getattr(error, "reason", "cobs")
        if reason == "crc":
            self.counters.crc_failures += 1
        elif reason == "version":
            self.counters.bad_version += 1
        elif reason == "cobs":
            self.counters.cobs_errors += 1
        else:
            self.counters.bad_length += 1
        self.counters.bytes_skipped += size

    def _on_frame(self, frame: Frame, now: float) -> list[SampleBlock]:
        self.counters.frames += 1
        kind = frame.frame_type
        if kind != FrameType.ACK:
            self._track_seq(frame.seq)
        if kind == FrameType.DATA:
            self.counters.data_frames += 1
            return self._on_data(frame, now)
        if kind == FrameType.HELLO:
            return self._on_hello(frame, now)
        if kind == FrameType.STATUS:
            try:
                self.last_status = Status.decode(frame.payload)
            except FrameError:
                self.counters.bad_length += 1
                return []
            self.counters.status_frames += 1
            self.counters.battery_mv = self.last_status.battery_mv
            return []
        if kind == FrameType.ACK:
            try:
                ack = Ack.decode(frame.payload)
            except FrameError:
                self.counters.bad_length += 1
                return []
            self.counters.ack_frames += 1
            self.acks.append((ack.opcode, ack.status, frame.seq))
            return []
        self.counters.unexpected_frames += 1
        return []

    def _track_seq(self, seq: int) -> None:
        if self._last_seq is not None:
            # same seq again (missing == 0xFFFF) or older: a duplicate or a restart, judged
            # by t0 for DATA frames; only forward jumps count as lost frames
            missing = (seq - self._last_seq - 1) & 0xFFFF
            if missing < 0x8000:
                self.counters.frames_lost += missing
        self._last_seq = seq

    def _on_hello(self, frame: Frame, now: float) -> list[SampleBlock]:
        try:
            hello = Hello.decode(frame.payload)
        except FrameError:
            self.counters.bad_length += 1
            return []
        self.counters.hello_frames += 1
        self.hello = hello
        out: list[SampleBlock] = []
        rate = hello.rate_hz
        if not is_plausible_rate(rate):
            # a corrupt or hostile HELLO: keep the current rate (never size buffers from it)
            self.counters.implausible_claims += 1
        elif abs(rate - self.axis.rate_hz) > 1e-9:
            if self.axis.next_index:
                # The device changed its rate mid-stream: indices before and after are not on one
                # axis, so mark a discontinuity and continue at the new rate.
                out.append(self.axis.discontinuity(now))
                self.counters.discontinuities += 1
            self.axis.rate_hz = rate
        if not self._user_calibration:
            self.calibration = LinearCalibration.from_hello(hello)
        while self._held:
            held, when = self._held.popleft()
            self._held_samples -= held.n
            out += self._place(held, when, self._convert(held))
        return out

    def _on_data(self, frame: Frame, now: float) -> list[SampleBlock]:
        needs_calibration = frame.sample_format != SampleFormat.U32_NANOSIEMENS and self.calibration is None
        if needs_calibration or self._held:  # keep order: nothing overtakes held frames
            return self._hold(frame, now)
        return self._place(frame, now, self._convert(frame))

    def _hold(self, frame: Frame, now: float) -> list[SampleBlock]:
        self._held.append((frame, now))
        self._held_samples += frame.n
        out: list[SampleBlock] = []
        limit = self.axis.max_gap_samples
        while self._held_samples > limit and self._held:
            old, when = self._held.popleft()
            self._held_samples -= old.n
            self.counters.samples_uncalibrated += old.n
            values = np.full(old.n, np.nan)
            flags = np.full(old.n, SampleFlag.GAP, dtype=np.uint8)
            out += self._place(old, when, (values, flags))
        return out

    def _convert(self, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        fmt = frame.sample_format
        payload = frame.payload
        if fmt == SampleFormat.U16_ADC:
            raw = np.frombuffer(payload, dtype="<u2").astype(np.float64)
        elif fmt == SampleFormat.U32_NANOSIEMENS:
            raw = np.frombuffer(payload, dtype="<u4").astype(np.float64)
        else:
            b = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3).astype(np.uint32)
            raw = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)).astype(np.float64)
        base = frame.flags & _FRAME_FLAG_MASK & ~_FIRST_SAMPLE_ONLY
        flags = np.full(raw.size, base, dtype=np.uint8)
        if raw.size:
            flags[0] |= frame.flags & _FIRST_SAMPLE_ONLY
        if fmt == SampleFormat.U32_NANOSIEMENS:
            values = raw * 1e-3
        else:
            cal = self.calibration
            assert cal is not None  # held until calibrated
            values = cal.gain * raw + cal.offset
            if cal.adc_bits:
                flags[raw >= (1 << cal.adc_bits) - 1] |= np.uint8(SampleFlag.SATURATED)
        if frame.flags & FrameFlag.ELECTRODE_OFF:
            values = np.full(raw.size, np.nan)
        return values, flags

    def _place(self, frame: Frame, now: float, converted: tuple[np.ndarray, np.ndarray]) -> list[SampleBlock]:
        values, flags = converted
        n = frame.n
        out: list[SampleBlock] = []
        if self._next_t0 is None:
            self._next_t0 = frame.t0
        else:
            expected = self._next_t0
            delta = (frame.t0 - expected) & 0xFFFFFFFF
            if delta >= 1 << 31:
                delta -= 1 << 32
            jump = classify_jump(delta, n, self.axis.max_gap_samples)
            if delta > 0:  # a gap, or a jump beyond the bound: the axis bounds the fill
                self.counters.samples_lost += delta
                block = self.axis.gap(delta, now)
                if block is not None:
                    if len(block) < delta:
                        self.counters.discontinuities += 1
                    out.append(block)
            elif jump.kind == "duplicate":
                self.counters.duplicates += 1
                self.counters.duplicate_samples += n
                return out
            elif jump.kind == "overlap":  # keep only the samples not emitted yet
                self.counters.duplicate_samples += jump.skip
                values, flags = values[jump.skip:], flags[jump.skip:]
                n -= jump.skip
            elif jump.kind == "discontinuity":
                # far behind: the device restarted its sample counter (e.g. after a power cycle)
                fill = None
                if self._pending_outage_s is not None:
                    fill = int(round(self._pending_outage_s * self.axis.rate_hz))
                out.append(self.axis.discontinuity(now, fill))
                self.counters.discontinuities += 1
            self._next_t0 = expected + delta
        self._pending_outage_s = None
        out.append(self.axis.samples(values, flags, now))
        self._next_t0 += n
        return out


class EkdSerialDecoder(_EkdCore):
    """EKD v1 over a serial byte stream (COBS + 0x00 framing). Feed bytes in any split."""

    def __init__(self, rate_hz: float = DEFAULT_RATE_HZ, *, calibration: LinearCalibration | None = None,
                 max_gap_s: float = DEFAULT_MAX_GAP_S) -> None:
        super().__init__(rate_hz, calibration=calibration, max_gap_s=max_gap_s)
        self._buf = bytearray()

    def _wire(self, frame: bytes) -> bytes:
        return serial_encode(frame)

    def link_reset(self, down_s: float | None = None) -> list[SampleBlock]:
        self.counters.bytes_skipped += len(self._buf)
        self._buf.clear()
        return super().link_reset(down_s)

    def _feed(self, data: bytes, now: float) -> list[SampleBlock]:
        out: list[SampleBlock] = []
        start = 0
        while True:
            end = data.find(0, start)
            if end < 0:
                break
            piece = data[start:end]
            start = end + 1
            if self._buf:
                self._buf += piece
                chunk = bytes(self._buf)
                self._buf.clear()
            else:
                chunk = piece
            if len(chunk) > _MAX_CHUNK:
                chunk = self._trim(chunk)
            if chunk:
                out += self._chunk(chunk, now)
        self._buf += data[start:]
        if len(self._buf) > _MAX_CHUNK:
            # no delimiter for longer than two frames: garbage in front; keep only the bytes that
            # can still hold intact frames (bounded memory, and the frame after it survives)
            self._buf[:] = self._trim(bytes(self._buf))
        return out

    def _trim(self, run: bytes) -> bytes:
        self.counters.oversize_runs += 1
        self.counters.bytes_skipped += len(run) - _MAX_CHUNK
        return run[-_MAX_CHUNK:]

    def _chunk(self, chunk: bytes, now: float) -> list[SampleBlock]:
        try:
            frame = decode_frame(cobs_decode(chunk))
        except ProtocolError as error:
            frames, used = find_frames(chunk)
            if not frames:
                self._count_rejection(error, len(chunk))
                return []
            self.counters.bytes_skipped += len(chunk) - used
            out: list[SampleBlock] = []
            for found in frames:
                out += self._on_frame(found, now)
            return out
        return self._on_frame(frame, now)


def find_frames(run: bytes) -> tuple[list[Frame], int]:
    """The intact EKD frames inside a damaged COBS run (between two 0x00), in order, and the
    number of run bytes they occupy.

    At each offset where a frame can start, the header is decoded, the code chain walked for the
    length the header announces, and the run there decoded and CRC-checked; the scan goes on after
    each frame found. Cost: linear in the run for random garbage (offsets are prefiltered).
    """
    frames: list[Frame] = []
    used = 0
    min_encoded = MIN_FRAME_SIZE + 1
    position = 0
    for match in _FRAME_START.finditer(run):
        at = match.start()
        if at < position or len(run) - at < min_encoded:
            continue
        header = cobs_decode_head(run, at, HEADER_SIZE)
        size = None if header is None else frame_size(header)
        end = None if size is None else cobs_run_end(run, at, size)
        if end is None:
            continue
        try:
            frames.append(decode_frame(cobs_decode(run[at:end])))
        except ProtocolError:
            continue
        used += end - at
        position = end
    return frames, used


class EkdBleDecoder(_EkdCore):
    """EKD v1 over BLE: one frame per notification (no COBS). ``feed`` one notification at a time.

    For hobby firmware that runs the serial byte stream over the Nordic UART Service, use
    :class:`EkdSerialDecoder` instead.
    """

    def _feed(self, data: bytes, now: float) -> list[SampleBlock]:
        if not data:
            return []
        try:
            frame = decode_frame(data)
        except ProtocolError as error:
            self._count_rejection(error, len(data))
            return []
        return self._on_frame(frame, now)


__all__ = ["EkdBleDecoder", "EkdCounters", "EkdSerialDecoder", "LinearCalibration", "find_frames"]
