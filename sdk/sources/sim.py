"""``sim://``: a simulated GSR sensor (the project's synthetic skin-conductance model).

``sim://?rate=128&arousal=0.3&seed=0&speed=1&duration=60&faults=electrode_off@10:3,gap@20:1``

Parameters: ``rate`` (Hz, default 128), ``arousal`` (0–1, default 0.3), ``seed`` (default 0),
``speed`` (1 = real time, 0 = as fast as possible; default 1), ``duration`` (s; default
endless), ``block`` (s per block, default 0.125) and ``faults``: a comma-separated list of
``kind@start:length`` (seconds) with kind ``gap`` (samples missing), ``electrode_off``
(flagged, conductance near 0), ``saturation`` (flagged, pinned at the top of the range) or
``flat`` (the value stops moving), for demos and for testing what an app does with bad windows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, GsrSynthesizer
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag
from emotionkd.firmware_bridge.source_spec import SourceSpec
from emotionkd.sdk.sources.base import Pacer, Source, SourceInfo, SourceUrl

FAULT_KINDS = ("gap", "electrode_off", "saturation", "flat")
#: conductance a saturated sensor reports (the top of a typical GSR front end's range, µS)
SATURATED_US = 100.0
#: conductance an open circuit reads as (leakage only, µS)
OPEN_CIRCUIT_US = 0.001


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``kind`` from ``start_s`` for ``length_s`` seconds."""

    kind: str
    start_s: float
    length_s: float

    @classmethod
    def parse_list(cls, text: str) -> tuple[Fault, ...]:
        faults = []
        for item in filter(None, (p.strip() for p in text.split(","))):
            try:
                kind, span = item.split("@")
                start, length = span.split(":")
                fault = cls(kind.strip(), float(start), float(length))
            except ValueError as exc:
                raise ConfigError(f"fault {item!r} must look like kind@start:length, e.g. gap@20:1") from exc
            if fault.kind not in FAULT_KINDS:
                raise ConfigError(f"unknown fault kind {fault.kind!r}; use one of {', '.join(FAULT_KINDS)}")
            if fault.start_s < 0 or fault.length_s <= 0:
                raise ConfigError(f"fault {item!r} needs start >= 0 and length > 0 seconds")
            faults.append(fault)
        return tuple(faults)


def apply_faults(
    first_index: int, conductance_us: np.ndarray, rate_hz: float, faults: tuple[Fault, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Return (conductance, flags) of one block with the faults that overlap it applied."""
    x = conductance_us.copy()
    flags = np.zeros(x.size, np.uint8)
    index = first_index + np.arange(x.size)
    for fault in faults:
        inside = (index >= fault.start_s * rate_hz) & (index < (fault.start_s + fault.length_s) * rate_hz)
        if not inside.any():
            continue
        if fault.kind == "gap":
            x[inside] = np.nan
            flags[inside] |= np.uint8(SampleFlag.GAP)
        elif fault.kind == "electrode_off":
            x[inside] = OPEN_CIRCUIT_US
            flags[inside] |= np.uint8(SampleFlag.ELECTRODE_OFF)
        elif fault.kind == "saturation":
            x[inside] = SATURATED_US
            flags[inside] |= np.uint8(SampleFlag.SATURATED)
        else:  # flat: the sensor repeats the value it had when the fault began
            x[inside] = x[np.argmax(inside)]
    return x, flags


@dataclass(frozen=True)
class SimSpec(SourceSpec):
    """``sim://?…`` parsed (see the module docstring for the parameters)."""

    scheme: ClassVar[str] = "sim"
    rate_hz: float = 128.0
    arousal: float = 0.3
    seed: int = 0
    speed: float = 1.0
    duration_s: float | None = None
    block_s: float = 0.125
    faults: tuple[Fault, ...] = ()

    def describe(self, device: str | None = None) -> str:
        """``simulated GSR sensor (seed N)``."""
        return f"simulated GSR sensor (seed {self.seed})"


def parse_sim(url: str) -> SimSpec:
    """Parse a ``sim://`` URL.

    Raises:
        ConfigError: a bad rate, block, duration, fault or unknown parameter.
    """
    parsed = SourceUrl.parse(url)
    default = SimSpec(url)  # the defaults are the spec's fields, written once
    spec = SimSpec(url, parsed.take_rate("rate", default.rate_hz),
                   parsed.take_float("arousal", default.arousal) or 0.0, parsed.take_int("seed", default.seed),
                   float(parsed.take_float("speed", default.speed) or 0.0), parsed.take_float("duration", default.duration_s),
                   parsed.take_positive("block", default.block_s), Fault.parse_list(parsed.take("faults", "") or ""))
    parsed.refuse_leftovers("rate, arousal, seed, speed, duration, block, faults")
    if spec.duration_s is not None and spec.duration_s <= 0:
        raise ConfigError("sim:// duration must be a positive number of seconds")
    return spec


class SimSource(Source):
    """A synthetic GSR sensor in µS (see the module docstring for the URL parameters).

    Args:
        spec: a :class:`SimSpec` (or the URL, parsed here).
    """

    def __init__(self, spec: SimSpec | str) -> None:
        spec = parse_sim(spec) if isinstance(spec, str) else spec
        super().__init__(spec.url)
        self.spec = spec
        self.rate_hz, self.seed, self.speed = spec.rate_hz, spec.seed, spec.speed
        self.duration_s, self.block_s, self.faults = spec.duration_s, spec.block_s, spec.faults
        self.synth = GsrSynthesizer(GsrSynthConfig(rate_hz=self.rate_hz), seed=self.seed, arousal=spec.arousal)
        self._emitted = 0

    @property
    def info(self) -> SourceInfo:
        return SourceInfo(device=self.spec.describe(), protocol="sim", rate_hz=self.rate_hz)

    def counters(self) -> dict[str, int]:
        return {"samples": self._emitted}

    def set_arousal(self, arousal: float) -> None:
        """Change the simulated arousal (0–1) while streaming."""
        self.synth.set_arousal(arousal)

    def blocks(self) -> Iterator[SampleBlock]:
        pacer = Pacer(self.rate_hz, self.speed, self._closed)
        block = max(1, int(round(self.block_s * self.rate_hz)))
        total = math.inf if self.duration_s is None else int(round(self.duration_s * self.rate_hz))
        while not self.closed and self._emitted < total:
            n = int(min(block, total - self._emitted))
            values, flags = apply_faults(self._emitted, self.synth.read(n), self.rate_hz, self.faults)
            pacer.wait_until(self._emitted + n)
            if self.closed:
                return
            yield SampleBlock(self._emitted, values, flags, self.rate_hz, time.time())
            self._emitted += n


__all__ = ["FAULT_KINDS", "Fault", "SimSource", "SimSpec", "apply_faults", "parse_sim"]
