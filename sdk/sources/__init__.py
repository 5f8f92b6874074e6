"""Live GSR sources addressed by URL.

==========================================================  ==================================
``serial:///dev/ttyUSB0?baud=115200&protocol=ekd``           a serial port (EKD, ASCII, Shimmer3,
                                                             BITalino or ``auto``)
``ble://AA:BB:CC:DD:EE:FF?protocol=ekd`` / ``ble://?name=X`` a BLE device (EKD GATT service)
``replay://recording.csv?speed=1``                           a file replayed as a live stream
``sim://?rate=128&arousal=0.3``                              a simulated sensor
``lsl://StreamName``                                         a Lab Streaming Layer stream (extra)
==========================================================  ==================================

A URL is parsed once (:func:`parse_source`) into its scheme's typed, frozen spec; sources are
made from the spec (:func:`open_source` takes a URL or a spec). Schemes are an open registry
(:func:`register_scheme`, as pyserial's URL handlers): a new transport is one module that
registers its parser and its source class. Each module is imported only when its scheme is used
(pyserial, bleak and pylsl cost start-up time and memory an app that replays files never needs).
"""

from __future__ import annotations

from emotionkd.firmware_bridge.source_base import Source, SourceInfo
from emotionkd.firmware_bridge.source_spec import (
    SourceSpec,
    parse_source_url,
    register_scheme,
    schemes,
    source_class,
)
from emotionkd.sdk.sources.base import Pacer, SourceUrl

# serial:// and ble:// are registered by the firmware bridge (GsrSource); the SDK adds these.
register_scheme("replay", "emotionkd.sdk.sources.replay:parse_replay", "emotionkd.sdk.sources.replay:ReplaySource",
                "replay://recording.csv?speed=1")
register_scheme("sim", "emotionkd.sdk.sources.sim:parse_sim", "emotionkd.sdk.sources.sim:SimSource",
                "sim://?rate=128&arousal=0.3")
register_scheme("lsl", "emotionkd.sdk.sources.lsl:parse_lsl", "emotionkd.sdk.sources.lsl:LslSource",
                "lsl://StreamName")


def parse_source(url: str) -> SourceSpec:
    """Parse a source URL once into its scheme's typed spec (:class:`SerialSpec`, :class:`BleSpec`,
    ``ReplaySpec``, ``SimSpec``, ``LslSpec`` or a registered scheme's).

    Raises:
        ConfigError: not a URL, unknown scheme, bad parameters.
    """
    return parse_source_url(url)


def open_source(source: str | SourceSpec) -> Source:
    """Create the source a URL (parsed here, once) or a parsed spec names; not yet opened: use it
    as a context manager.

    Raises:
        ConfigError: unknown scheme or bad parameters.
        DataError: a replay file that cannot be read.
    """
    spec = parse_source_url(source) if isinstance(source, str) else source
    opened: Source = source_class(spec)(spec)
    return opened


__all__ = ["Pacer", "Source", "SourceInfo", "SourceSpec", "SourceUrl", "open_source", "parse_source",
           "register_scheme", "schemes"]
