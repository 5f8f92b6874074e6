"""``lsl://NAME``: GSR from any Lab Streaming Layer stream (optional extra ``emotionkd[lsl]``).

``lsl://Shimmer_GSR?channel=0&unit=kOhm&timeout=10`` resolves the stream by name (or
``lsl://?type=EDA`` by type), reads one channel, converts it to µS and places the samples on
the stream's nominal-rate axis by their LSL time stamps, so that samples the network lost show
up as a gap instead of being stitched. Parameters: ``type`` (match by type instead of name),
``channel`` (index, default 0), ``unit`` (default: the channel's ``unit`` in the stream
metadata, else ``uS``), ``rate`` (needed for irregular-rate streams), ``timeout`` (s to find the
stream and the longest silence tolerated, default 10), ``max_gap`` (s: the longest jump in time
stamps filled with NaN, default 10; a longer one is a bounded discontinuity, counted).

Each sample's LSL time stamp is kept in :attr:`LslSource.clock`, so that predictions can be
stamped with the LSL time of their window's end (:class:`~emotionkd.sdk.lsl.PredictionOutlet`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from emotionkd.firmware_bridge.bounds import rate_problem
from emotionkd.firmware_bridge.errors import ConfigError, TransportError
from emotionkd.firmware_bridge.sample_axis import (
    DEFAULT_MAX_GAP_S,
    AxisAligner,
    GapPolicy,
    StreamClock,
)
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag
from emotionkd.firmware_bridge.source_spec import DEFAULT_NO_DATA_TIMEOUT_S, SourceSpec
from emotionkd.firmware_bridge.units import normalise_unit, to_conductance_us
from emotionkd.sdk.lsl import import_pylsl
from emotionkd.sdk.sources.base import Source, SourceInfo, SourceUrl


@dataclass(frozen=True)
class LslSpec(SourceSpec):
    """``lsl://NAME?…`` parsed (see the module docstring for the parameters)."""

    scheme: ClassVar[str] = "lsl"
    name: str = ""
    stream_type: str | None = None
    channel: int = 0
    unit: str | None = None
    rate_hz: float | None = None
    timeout_s: float = DEFAULT_NO_DATA_TIMEOUT_S
    max_gap_s: float = DEFAULT_MAX_GAP_S

    def describe(self, device: str | None = None) -> str:
        """``LSL NAME``, ``LSL type EDA`` before the stream is found; once found, ``device`` (the
        stream's ``NAME (TYPE, HOST)``) after ``LSL``."""
        return f"LSL {device or self.name or f'type {self.stream_type}'}"


def parse_lsl(url: str) -> LslSpec:
    """Parse an ``lsl://`` URL.

    Raises:
        ConfigError: no name or type, an unknown unit or parameter, a malformed number.
    """
    parsed = SourceUrl.parse(url)
    unit = parsed.take("unit")
    default = LslSpec(url)  # the defaults are the spec's fields, written once
    spec = LslSpec(url, parsed.location, parsed.take("type"), parsed.take_int("channel", default.channel),
                   normalise_unit(unit) if unit else None, parsed.take_rate("rate", default.rate_hz),
                   parsed.take_positive("timeout", default.timeout_s), parsed.take_positive("max_gap", default.max_gap_s))
    parsed.refuse_leftovers("type, channel, unit, rate, timeout, max_gap")
    if not spec.name and not spec.stream_type:
        raise ConfigError("lsl:// needs a stream name (lsl://NAME) or a type (lsl://?type=EDA)")
    return spec


class LslSource(Source):
    """One channel of an LSL stream as GSR in µS (see the module docstring).

    Args:
        spec: an :class:`LslSpec` (or the URL, parsed here).
    """

    def __init__(self, spec: LslSpec | str) -> None:
        spec = parse_lsl(spec) if isinstance(spec, str) else spec
        super().__init__(spec.url)
        self.spec = spec
        self.name, self.stream_type, self.channel = spec.name, spec.stream_type, spec.channel
        self.unit, self.rate_hz, self.timeout_s, self.max_gap_s = spec.unit, spec.rate_hz, spec.timeout_s, spec.max_gap_s
        self._inlet: Any = None
        self._device = spec.describe()
        self._counters = {"samples": 0, "gap_samples": 0, "discontinuities": 0}
        self._clock: StreamClock | None = None

    def open(self) -> None:
        if self._inlet is not None:
            return
        pylsl = import_pylsl()
        prop, value = ("name", self.name) if self.name else ("type", self.stream_type)
        found = pylsl.resolve_byprop(prop, value, timeout=self.timeout_s)
        if not found:
            raise TransportError(f"no LSL stream with {prop} {value!r} found in {self.timeout_s:g} s "
                                 "(is the sender running on this network?)", url=self.url)
        info = found[0]
        if not 0 <= self.channel < info.channel_count():
            raise ConfigError(f"LSL stream {info.name()!r} has {info.channel_count()} channels; channel={self.channel} does not exist")
        rate = info.nominal_srate()
        if rate <= 0 and not self.rate_hz:
            raise ConfigError(f"LSL stream {info.name()!r} has an irregular rate: give one, lsl://{info.name()}?rate=32")
        self.rate_hz = float(self.rate_hz or rate)
        problem = rate_problem(self.rate_hz)
        if problem is not None:  # a stream may claim anything; nothing is sized from it unchecked
            raise ConfigError(f"LSL stream {info.name()!r}: {problem}; give the true one, lsl://{info.name()}?rate=32")
        self._inlet = pylsl.StreamInlet(info, max_buflen=60, recover=True)
        self._clock = StreamClock(self.rate_hz)
        full = self._inlet.info(timeout=self.timeout_s)  # with the metadata (desc)
        self._inlet.open_stream(timeout=self.timeout_s)  # buffer from now on, not from the first pull
        if self.unit is None:
            self.unit = normalise_unit(_channel_unit(full, self.channel) or "uS")
        self._device = self.spec.describe(f"{info.name()} ({info.type()}, {info.hostname()})")

    def close(self) -> None:
        super().close()
        if self._inlet is not None:
            self._inlet.close_stream()
            self._inlet = None

    @property
    def info(self) -> SourceInfo:
        return SourceInfo(device=self._device, protocol="lsl", rate_hz=self.rate_hz or 0.0)

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    @property
    def clock(self) -> StreamClock | None:
        """The LSL time of every position on this source's sample axis (None before :meth:`open`):
        ``clock.time_at(prediction.end_s)`` is the LSL time of a window's end."""
        return self._clock

    def blocks(self) -> Iterator[SampleBlock]:
        if self._inlet is None:
            self.open()
        assert self.rate_hz and self.unit and self._clock is not None
        rate, unit = self.rate_hz, self.unit
        # Samples are placed by their LSL time stamps: a jump up to max_gap_s is lost samples
        # (NaN fill), a longer one (or a clock reset, or a 10^9 s stamp) a bounded discontinuity;
        # jitter up to 0.1 s is neither, and stamps that step back keep every sample (sample_axis
        # owns these rules).
        axis = AxisAligner(rate, GapPolicy(self.max_gap_s, jitter_s=max(2, round(0.1 * rate)) / rate, on_overlap="keep"),
                           start_index=0)
        tolerance = axis.policy.jitter_samples(rate)
        first_stamp: float | None = None
        last_data = time.monotonic()
        while not self.closed:
            inlet = self._inlet
            if inlet is None:
                return
            data, stamps = inlet.pull_chunk(timeout=0.2)
            if not stamps:
                if time.monotonic() - last_data > self.timeout_s:
                    raise TransportError(f"no data from {self.url} in {self.timeout_s:g} s", url=self.url)
                continue
            last_data = time.monotonic()
            values = to_conductance_us(np.asarray(data, dtype=np.float64)[:, self.channel], unit)
            stamps_arr = np.asarray(stamps, dtype=np.float64)
            if first_stamp is None:
                first_stamp = float(stamps_arr[0])
            flags = np.where(np.isnan(values), SampleFlag.GAP, 0).astype(np.uint8)
            # one pull may span a gap: place each run of evenly stamped samples by its own stamp
            with np.errstate(over="ignore", invalid="ignore"):
                steps = np.diff(stamps_arr) * rate - 1.0
            cuts = np.flatnonzero(~(np.abs(steps) <= tolerance)) + 1
            for run in np.split(np.arange(stamps_arr.size), cuts):
                with np.errstate(over="ignore", invalid="ignore"):
                    claimed = (float(stamps_arr[run[0]]) - first_stamp) * rate  # float: a 1e300 s jump stays a number
                placed = axis.place_values(claimed, values[run], flags[run], time.time())
                if placed.blocks:  # the run's samples are the last block (after any fill)
                    last = placed.blocks[-1]
                    self._clock.mark(last.first_index, stamps_arr[run][run.size - len(last):])
                self._counters.update(axis.counters())
                yield from placed.blocks


def _channel_unit(info: Any, channel: int) -> str | None:
    """The ``unit`` of channel ``channel`` in an LSL stream's ``desc/channels``, if declared."""
    node = info.desc().child("channels").child("channel")
    for _ in range(channel):
        node = node.next_sibling()
    unit = node.child_value("unit") if not node.empty() else ""
    if not unit:
        return None
    try:
        return normalise_unit(unit.replace("microsiemens", "uS").replace("micro-siemens", "uS"))
    except ConfigError:
        return None


__all__ = ["LslSource", "LslSpec", "parse_lsl"]
