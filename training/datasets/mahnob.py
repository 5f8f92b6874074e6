"""MAHNOB-HCI (HCI-Tagging, Soleymani et al. 2012): emotion-elicitation sessions.

Layout: ``<root>/Sessions/<session id>/`` (or ``<root>/<session id>/``), each with one BioSemi
``.bdf`` (32 EEG channels in the Geneva order, peripheral channels incl. ``GSR1``, and a
``Status`` trigger channel) and ``session.xml``, whose ``<session>`` element carries the
self-reports ``feltArsl`` and ``feltVlnc`` (1–9) and a ``<subject id=…>`` child. Sessions
without those ratings (the implicit-tagging experiment) are skipped.

Per session: the stimulus span lies between the first two events on ``Status`` (trigger bits
0–15 changing to a non-zero code; the 30 s before and after are not stimulus). Rates and units
come from the BDF header. EEG (raw, reference-free in BioSemi files) is re-referenced to the
common average, resampled to 128 Hz with a polyphase anti-aliasing filter and band-passed to
4–45 Hz (zero-phase), which matches DEAP's preprocessing; GSR goes at its own rate and unit
into the device preprocessing, which converts and resamples it itself.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import DataError, UnitError
from emotionkd.firmware_bridge.units import normalise_unit
from emotionkd.sdk.resampling import rational_ratio
from emotionkd.training.datasets.channels import EEG_28, GENEVA_32, channel_indices
from emotionkd.training.datasets.config import DatasetConfig, ratings_to_labels
from emotionkd.training.datasets.trials import SubjectWindows, scale_subject_eeg, window_trial

logger = logging.getLogger(__name__)

MODEL_RATE_HZ: Final = 128.0
GSR_CHANNEL: Final = "GSR1"
STATUS_CHANNEL: Final = "Status"
TRIGGER_MASK: Final = 0xFFFF  # BioSemi: bits 0–15 triggers, 16–23 system status
_EEG_UNITS_TO_UV: Final = {"uv": 1.0, "µv": 1.0, "μv": 1.0, "mv": 1e3, "v": 1e6, "nv": 1e-3}


@dataclass(frozen=True)
class SessionInfo:
    """What ``session.xml`` says about one session."""

    folder: Path
    xml: Path
    bdf: Path | None
    session: int
    subject: int | None
    ratings: tuple[float, float] | None  # feltArsl, feltVlnc; None: not an emotion session


def _float(value: str | None) -> float:
    try:
        return float(value) if value is not None else math.nan
    except ValueError:
        return math.nan


def read_session_xml(folder: Path) -> SessionInfo:
    """Parse ``folder/session.xml``.

    Raises:
        DataError: the file is missing or not well-formed XML.
    """
    xml = folder / "session.xml"
    try:
        root = ET.parse(xml).getroot()
    except FileNotFoundError as exc:
        raise DataError(f"{xml}: file not found", path=str(xml)) from exc
    except ET.ParseError as exc:
        raise DataError(f"{xml}: not well-formed XML ({exc}); truncated?", path=str(xml)) from exc
    if root.tag != "session":
        raise DataError(f"{xml}: root element is <{root.tag}>, expected <session>", path=str(xml))
    subject_el = root.find("subject")
    subject_id = subject_el.get("id") if subject_el is not None else None
    subject = int(subject_id) if subject_id is not None and subject_id.isdigit() else None
    session_attr = root.get("sessionId") or folder.name
    # MAHNOB's session ids are numbers; anything else gets a stable number from its name
    session = int(session_attr) if session_attr.isdigit() else zlib.crc32(session_attr.encode()) % 10**6
    ratings = None
    if "feltArsl" in root.attrib or "feltVlnc" in root.attrib:
        ratings = (_float(root.get("feltArsl")), _float(root.get("feltVlnc")))
    bdfs = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".bdf")
    if len(bdfs) > 1:
        raise DataError(f"{folder}: {len(bdfs)} .bdf files in one session folder; expected one", path=str(folder))
    return SessionInfo(folder, xml, bdfs[0] if bdfs else None, session, subject, ratings)


def find_sessions(root: str | Path) -> list[Path]:
    """Session folders (holding ``session.xml``) under ``root/Sessions`` or ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: MAHNOB-HCI folder not found; pass the folder holding Sessions/", path=str(root))
    base = root / "Sessions" if (root / "Sessions").is_dir() else root
    folders = [p for p in base.iterdir() if p.is_dir() and (p / "session.xml").is_file()]
    if not folders:
        raise DataError(f"{root}: no session folders with a session.xml", path=str(root))
    return sorted(folders, key=lambda p: (len(p.name), p.name))


@dataclass
class BdfRecording:
    """The channels a session needs, as the BDF stores them."""

    eeg_uv: npt.NDArray[np.float64]  # (32, n) Geneva order
    eeg_rate_hz: float
    gsr: npt.NDArray[np.float64]  # (m,) in gsr_unit
    gsr_rate_hz: float
    gsr_unit: str
    stimulus_s: tuple[float, float]


def trigger_onsets(status: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    """Sample indices where the trigger code (bits 0–15) changes to a non-zero value."""
    code = np.asarray(status, dtype=np.int64) & TRIGGER_MASK
    previous = np.concatenate([[0], code[:-1]])
    return np.flatnonzero((code != 0) & (code != previous)).astype(np.int64)


def read_bdf(path: Path) -> BdfRecording:
    """Read EEG, GSR1 and the stimulus span from one BioSemi BDF.

    Raises:
        DataError: unreadable/truncated file, missing channels, fewer than two events.
        UnitError: unknown EEG or GSR unit in the header.
    """
    import pyedflib

    try:
        reader = pyedflib.EdfReader(str(path))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable BDF file, possibly truncated ({exc})", path=str(path)) from exc
    try:
        labels = [label.strip() for label in reader.getSignalLabels()]
        try:
            eeg_idx = channel_indices(tuple(labels), GENEVA_32)
            gsr_i, status_i = (int(channel_indices(tuple(labels), (name,))[0]) for name in (GSR_CHANNEL, STATUS_CHANNEL))
        except KeyError as exc:
            raise DataError(f"{path}: {exc.args[0]}", path=str(path)) from exc
        rates = {i: float(reader.getSampleFrequency(i)) for i in (*eeg_idx.tolist(), gsr_i, status_i)}
        eeg_rates = {rates[int(i)] for i in eeg_idx}
        if len(eeg_rates) != 1:
            raise DataError(f"{path}: EEG channels have different rates {sorted(eeg_rates)}", path=str(path))
        eeg_units = {reader.getPhysicalDimension(int(i)).strip() for i in eeg_idx}
        if len(eeg_units) != 1 or next(iter(eeg_units)).lower() not in _EEG_UNITS_TO_UV:
            raise UnitError(f"{path}: EEG unit {sorted(eeg_units)} not understood; expected uV, mV or V")
        eeg_scale = _EEG_UNITS_TO_UV[next(iter(eeg_units)).lower()]
        gsr_unit_raw = reader.getPhysicalDimension(gsr_i).strip()
        try:
            gsr_unit = normalise_unit(gsr_unit_raw)
        except UnitError as exc:
            raise UnitError(f"{path}: {GSR_CHANNEL} has unit {gsr_unit_raw!r}: {exc}") from exc
        status = reader.readSignal(status_i, digital=True)
        onsets = trigger_onsets(status)
        if onsets.size < 2:
            raise DataError(f"{path}: {onsets.size} trigger event(s) on {STATUS_CHANNEL}; need two (stimulus start and end)",
                            path=str(path))
        span = (onsets[0] / rates[status_i], onsets[1] / rates[status_i])
        eeg = np.stack([reader.readSignal(int(i)) for i in eeg_idx]) * eeg_scale
        gsr = reader.readSignal(gsr_i)
    except (DataError, UnitError):
        raise
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: BDF data could not be read ({exc})", path=str(path)) from exc
    finally:
        reader.close()
    return BdfRecording(eeg, eeg_rates.pop(), gsr, rates[gsr_i], gsr_unit, span)


def preprocess_eeg(eeg_uv: npt.NDArray[np.float64], rate_hz: float, config: DatasetConfig) -> npt.NDArray[np.float64]:
    """Raw BioSemi EEG (32, n) → DEAP-like (32, m) at 128 Hz: CAR, anti-aliased resampling, band-pass."""
    from scipy.signal import butter, resample_poly, sosfiltfilt

    x = eeg_uv - np.median(eeg_uv, axis=1, keepdims=True)  # electrode offsets (tens of mV) out first
    if config.mahnob_eeg_reference == "average":
        x = x - x.mean(axis=0, keepdims=True)
    up, down = rational_ratio(rate_hz, MODEL_RATE_HZ)
    if (up, down) != (1, 1):
        x = resample_poly(x, up, down, axis=1)  # Kaiser-windowed FIR anti-aliasing filter
    if config.mahnob_eeg_band_hz is not None:
        low, high = config.mahnob_eeg_band_hz
        high = min(high, 0.45 * MODEL_RATE_HZ)
        sos = butter(4, (low, high), btype="bandpass", fs=MODEL_RATE_HZ, output="sos")
        x = sosfiltfilt(sos, x, axis=1)
    return x


def prepare_mahnob_subject(subject: int, sessions: list[SessionInfo], config: DatasetConfig) -> SubjectWindows:
    """Window one subject's emotion sessions."""
    out = SubjectWindows(subject, info={"sessions": [str(s.folder) for s in sessions]})
    eeg_pick = channel_indices(GENEVA_32, EEG_28)
    for info in sessions:
        assert info.ratings is not None and info.bdf is not None
        ratings = np.array(info.ratings, dtype=np.float64)
        labels = ratings_to_labels(ratings, config, source=str(info.xml))
        rec = read_bdf(info.bdf)
        eeg = preprocess_eeg(rec.eeg_uv, rec.eeg_rate_hz, config)[eeg_pick]
        start_s, end_s = rec.stimulus_s
        e0, e1 = int(round(start_s * MODEL_RATE_HZ)), int(round(end_s * MODEL_RATE_HZ))
        g0, g1 = int(round(start_s * rec.gsr_rate_hz)), int(round(end_s * rec.gsr_rate_hz))
        windows = window_trial(rec.gsr[g0:g1], rec.gsr_rate_hz, rec.gsr_unit, eeg[:, e0:e1], config)
        out.add(info.session, ratings, labels, windows)
    return scale_subject_eeg(out, config)


def plan_sessions(root: Path, config: DatasetConfig) -> tuple[dict[int, list[SessionInfo]], list[dict[str, Any]]]:
    """Emotion sessions grouped by subject, and the sessions skipped (with the reason)."""
    by_subject: dict[int, list[SessionInfo]] = {}
    skipped: list[dict[str, Any]] = []
    for folder in find_sessions(root):
        info = read_session_xml(folder)
        reason = None
        if info.ratings is None:
            reason = "not an emotion-elicitation session (no feltArsl/feltVlnc)"
        elif info.bdf is None:
            reason = "no .bdf recording in the folder"
        elif info.subject is None:
            reason = "session.xml names no <subject id=...>"
        if reason:
            skipped.append({"session": folder.name, "reason": reason})
            continue
        assert info.subject is not None
        if config.subjects is None or info.subject in config.subjects:
            by_subject.setdefault(info.subject, []).append(info)
    for sessions in by_subject.values():
        sessions.sort(key=lambda s: s.session)
    return dict(sorted(by_subject.items())), skipped


def _plan(root: Path, config: DatasetConfig, options: dict[str, Any]) -> Any:
    from emotionkd.training.datasets.loading import Plan

    by_subject, skipped = plan_sessions(root, config)
    if config.subjects is not None:
        missing = set(config.subjects) - set(by_subject)
        if missing:
            raise DataError(f"{root}: subjects {sorted(missing)} have no emotion sessions", path=str(root))
    if not by_subject:
        raise DataError(f"{root}: no usable emotion-elicitation sessions ({len(skipped)} skipped)", path=str(root))
    for entry in skipped:
        logger.info("MAHNOB-HCI session %s skipped: %s", entry["session"], entry["reason"])
    inputs = [p for sessions in by_subject.values() for s in sessions for p in (s.xml, s.bdf) if p is not None]
    jobs = [(prepare_mahnob_subject, (subject, sessions, config)) for subject, sessions in by_subject.items()]
    meta = {"dataset": "mahnob", "gsr_channel": GSR_CHANNEL, "eeg_channels": list(EEG_28),
            "sessions_skipped": skipped, "trial_ids": "MAHNOB-HCI session id",
            "eeg_preprocessing": {"reference": config.mahnob_eeg_reference, "band_hz": config.mahnob_eeg_band_hz,
                                  "resampler": "scipy.signal.resample_poly", "band_filter": "butter4 sosfiltfilt"}}
    return Plan(inputs, jobs, meta, True)


def _register() -> None:
    from emotionkd.training.datasets.loading import register_kind

    register_kind("mahnob", _plan)


_register()

__all__ = ["BdfRecording", "SessionInfo", "find_sessions", "plan_sessions", "prepare_mahnob_subject",
           "preprocess_eeg", "read_bdf", "read_session_xml", "trigger_onsets"]
