"""Live GSR sources addressed by URL.

==========================================================  ==================================
``serial:///dev/ttyUSB0?baud=115200&protocol=ekd``           a serial port (EKD, ASCII, Shimmer3,
                                                             BITalino or ``auto``)
``ble://AA:BB:CC:DD:EE:FF?protocol=ekd`` / ``ble://?name=X`` a BLE device (EKD GATT service)
``replay://recording.csv?speed=1``                           a file replayed as a live stream
``sim://?rate=128&arousal=0.3``                              a simulated sensor
``lsl://StreamName``                                         a Lab Streaming Layer stream (extra)
==========================================================  ==================================

Each module is imported only when its scheme is used (pyserial, bleak and pylsl cost start-up
time and memory an app that replays files never needs).
"""

from __future__ import annotations

import importlib
from typing import Final

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.sdk.sources.base import Pacer, Source, SourceInfo, SourceUrl

#: scheme -> (module, class)
SCHEMES: Final[dict[str, tuple[str, str]]] = {
    "serial": ("emotionkd.sdk.sources.device", "DeviceSource"),
    "ble": ("emotionkd.sdk.sources.device", "DeviceSource"),
    "replay": ("emotionkd.sdk.sources.replay", "ReplaySource"),
    "sim": ("emotionkd.sdk.sources.sim", "SimSource"),
    "lsl": ("emotionkd.sdk.sources.lsl", "LslSource"),
}


def open_source(url: str) -> Source:
    """Create the source a URL names (not yet opened: use it as a context manager).

    Raises:
        ConfigError: unknown scheme or bad parameters.
        DataError: a replay file that cannot be read.
    """
    scheme = SourceUrl.parse(url).scheme
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown source scheme {scheme!r} in {url!r}; use one of "
                          + ", ".join(f"{s}://" for s in SCHEMES))
    module, name = SCHEMES[scheme]
    cls = getattr(importlib.import_module(module), name)
    return cls(url)


__all__ = ["SCHEMES", "Pacer", "Source", "SourceInfo", "SourceUrl", "open_source"]
