"""Lab Streaming Layer: publish predictions as an LSL stream (optional extra ``emotionkd[lsl]``).

The outlet carries three channels per prediction, described in the stream's metadata so that
LabRecorder, mne-lsl or any LSL client can read them without this package:

=========  ==================  ==============================================================
channel    unit                meaning
=========  ==================  ==============================================================
arousal    probability         probability of high arousal (NaN when the window failed)
valence    probability         probability of high valence (NaN when the window failed)
quality    code                0 ok, 1 electrode_off, 2 saturation, 3 gap, 4 implausible_unit,
                               5 flat_line (listed under ``desc/quality_codes``)
=========  ==================  ==============================================================

**Time stamps** (mne-lsl's way): a prediction's LSL time stamp is the LSL time of its window's
end, not the time it was pushed, so a lab can align it with other streams. The outlet asks the
source's :class:`~emotionkd.firmware_bridge.sample_axis.StreamClock` (``source.clock``) for the
clock time of ``prediction.end_s`` (s since the stream's first sample); an ``lsl://`` source
keeps every sample's LSL time stamp there. A source without a clock (a serial device, a replay)
gets the push time, as before.

Reading GSR *from* LSL is the ``lsl://`` source (:mod:`emotionkd.sdk.sources.lsl`).
"""

from __future__ import annotations

import math
from typing import Any

from emotionkd.firmware_bridge.errors import TransportError
from emotionkd.firmware_bridge.sample_axis import StreamClock
from emotionkd.sdk.contract import ModelContract
from emotionkd.sdk.quality import QUALITY_REASONS

#: the quality channel's codes (index = code)
QUALITY_CODES = QUALITY_REASONS


def import_pylsl() -> Any:
    """Import pylsl (with its liblsl), or say how to get it."""
    try:
        import pylsl
    except ImportError as exc:
        raise TransportError(
            "LSL needs pylsl: pip install 'emotionkd[lsl]' (pylsl ships liblsl for common "
            f"platforms; elsewhere install liblsl too) ({exc})") from exc
    except RuntimeError as exc:  # pylsl raises RuntimeError when liblsl cannot be loaded
        raise TransportError(f"pylsl is installed but liblsl cannot be loaded: {exc}") from exc
    return pylsl


class PredictionOutlet:
    """Publishes each :class:`~emotionkd.sdk.classifier.Prediction` as one LSL sample.

    Args:
        contract: the model's contract (its provenance goes into the metadata).
        name: the LSL stream name.
        hop_s: seconds between predictions (the nominal rate is 1 / hop_s).
        source_id: a stable id so that clients reconnect to the same stream after a restart.
        source: the source the predictions come from (see :meth:`bind_source`).
    """

    def __init__(self, contract: ModelContract, *, name: str = "emotionkd", hop_s: float = 1.0,
                 source_id: str = "emotionkd-predictions", source: Any = None) -> None:
        pylsl = import_pylsl()
        self._source = source
        self._pylsl = pylsl
        info = pylsl.StreamInfo(name, "Emotion", 3, 1.0 / hop_s, "float32", source_id)
        desc = info.desc()
        channels = desc.append_child("channels")
        for label, unit, kind in (("arousal", "probability", "arousal"), ("valence", "probability", "valence"),
                                  ("quality", "code", "quality")):
            channel = channels.append_child("channel")
            channel.append_child_value("label", label)
            channel.append_child_value("unit", unit)
            channel.append_child_value("type", kind)
        codes = desc.append_child("quality_codes")
        for code, reason in enumerate(QUALITY_CODES):
            codes.append_child_value(reason, str(code))
        model = desc.append_child("model")
        model.append_child_value("window_s", f"{contract.window_s:g}")
        model.append_child_value("trained_on", contract.provenance.data_kind)
        model.append_child_value("dataset", contract.provenance.dataset)
        model.append_child_value("class_high", contract.class_names[1])
        self.info = info
        self._outlet = pylsl.StreamOutlet(info)

    def bind_source(self, source: Any) -> None:
        """Stamp predictions with ``source.clock`` (read at each write: a source makes its clock
        when it opens); a source without one (``clock`` None or absent) gives the push time."""
        self._source = source

    def timestamp(self, prediction: Any) -> float:
        """The LSL time stamp of ``prediction``: its window's end on the source's clock, else now."""
        clock: StreamClock | None = getattr(self._source, "clock", None)
        stamp = clock.time_at(float(prediction.end_s)) if clock is not None else None
        return float(stamp) if stamp is not None and math.isfinite(stamp) else float(self._pylsl.local_clock())

    def write(self, prediction: Any, status: Any = None) -> None:
        """Push one prediction, stamped by :meth:`timestamp` (``status`` is accepted for the output
        interface and unused)."""
        quality = QUALITY_CODES.index(prediction.quality) if prediction.quality in QUALITY_CODES else len(QUALITY_CODES)
        self._outlet.push_sample([
            math.nan if prediction.arousal is None else prediction.arousal,
            math.nan if prediction.valence is None else prediction.valence,
            float(quality),
        ], self.timestamp(prediction))

    def close(self) -> None:
        self._outlet = None


__all__ = ["QUALITY_CODES", "PredictionOutlet", "import_pylsl"]
