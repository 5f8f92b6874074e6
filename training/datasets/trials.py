"""One trial → aligned GSR and EEG windows, through the device's GSR preprocessing.

GSR windows come from :class:`emotionkd.sdk.preprocessing.GsrPreprocessor` (the code the device
runs; it converts the unit, resamples to the model rate and windows on the true time axis). The
student's GSR window is the preprocessing's (32 s at 16 Hz by default); the teacher's EEG window
(``eeg_window_s``, 4 s at 128 Hz; optionally decimated to ``eeg_rate_hz``) is cut so that it ENDS where the GSR window ends: the teacher
sees the EEG of the last seconds of the student's context, the moment a prediction is about.
Only whole windows inside the trial are produced (the causal GSR baseline starts at the trial's
first valid sample; DEAP's 3 s pre-trial baseline is not used for it, so every dataset is
treated alike). Windows that the preprocessing marks not ``usable`` (gaps, invalid samples) are
dropped together with their EEG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import DataError
from emotionkd.sdk.preprocessing import GsrPreprocessor
from emotionkd.training.datasets.config import EEG_RATE_HZ, DatasetConfig
from emotionkd.training.windowed import WindowedDataset


@dataclass
class TrialWindows:
    """The usable windows of one trial (k windows of W GSR samples, E EEG samples).

    Attributes:
        gsr: (k, W) float32 model input; eeg: (k, C, E) float32 or None; start_s: (k,) float32
            start of the GSR window.
        dropped: windows the preprocessing judged not usable.
    """

    gsr: npt.NDArray[np.float32]
    eeg: npt.NDArray[np.float32] | None
    start_s: npt.NDArray[np.float32]
    dropped: int = 0


def decimate_eeg(eeg: npt.NDArray[np.floating], factor: int) -> npt.NDArray[np.float64]:
    """(C, m) EEG at :data:`EEG_RATE_HZ` → (C, ceil(m / factor)) at ``EEG_RATE_HZ / factor``.

    A whole trial at once, so that the anti-alias filter's edges fall on the trial's ends, not on
    every window: scipy's zero-phase FIR decimation (Hamming, 20 × factor taps, cut-off at
    0.8 × the new Nyquist), which shifts no component in time, so the decimated window still ends
    where the GSR window ends.
    """
    from scipy.signal import decimate

    if eeg.shape[-1] <= 3 * (20 * factor + 1):
        raise DataError(f"an EEG trial of {eeg.shape[-1]} samples is too short to decimate by {factor} "
                        f"(needs over {3 * (20 * factor + 1)}); keep eeg_rate_hz at {EEG_RATE_HZ:g} for trials this short")
    return np.asarray(decimate(np.asarray(eeg, dtype=np.float64), factor, ftype="fir", zero_phase=True, axis=-1))


def normalise_eeg(windows: npt.NDArray[np.float32], config: DatasetConfig) -> npt.NDArray[np.float32]:
    """Apply the per-window part of ``config.eeg_normalisation`` to ``(k, C, W)`` µV windows.

    ``window_zscore`` divides each channel by its own std (inter-channel power differences are
    gone); ``window_common`` divides all channels of a window by one scale (their RMS), so a
    left/right power difference survives; ``subject_channel`` only centres here, its per-channel
    scale comes from the whole subject (:func:`scale_subject_eeg`).
    """
    if config.eeg_normalisation == "none":
        return windows
    centred = windows - windows.mean(axis=-1, keepdims=True, dtype=np.float64).astype(np.float32)
    if config.eeg_normalisation in ("window_center", "subject_channel"):
        return centred
    if config.eeg_normalisation == "window_common":
        std = np.sqrt((centred.astype(np.float64) ** 2).mean(axis=(-2, -1), keepdims=True)).astype(np.float32)
    else:
        std = centred.std(axis=-1, keepdims=True, dtype=np.float64).astype(np.float32)
    centred /= np.maximum(std, np.float32(config.eeg_zscore_floor_uv))
    return centred


def scale_subject_eeg(part: SubjectWindows, config: DatasetConfig) -> SubjectWindows:
    """The per-subject part of ``subject_channel``: divide each channel of every (centred)
    window by that channel's std over all of the subject's windows (a recording's electrode
    gain goes; differences between trials and between channels stay). Other methods: unchanged.
    """
    if config.eeg_normalisation != "subject_channel":
        return part
    eeg = [tw.eeg for tw in part.windows if tw.eeg is not None and len(tw.eeg)]
    if not eeg:
        return part
    # (C,) std pooled over windows and samples, in float64 (sums over ~10^6 samples per channel)
    sq = sum(np.square(e, dtype=np.float64).sum(axis=(0, 2)) for e in eeg)
    count = sum(e.shape[0] * e.shape[2] for e in eeg)
    scale = np.maximum(np.sqrt(sq / count), config.eeg_zscore_floor_uv).astype(np.float32)[None, :, None]
    for tw in part.windows:
        if tw.eeg is not None:
            tw.eeg = tw.eeg / scale
    part.info["eeg_channel_scale_uv"] = scale.ravel().round(4).tolist()
    return part


def window_trial(
    gsr: npt.ArrayLike,
    gsr_rate_hz: float,
    gsr_unit: str,
    eeg: npt.NDArray[np.floating] | None,
    config: DatasetConfig,
) -> TrialWindows:
    """Window one trial.

    Args:
        gsr: (n,) GSR samples in ``gsr_unit`` at ``gsr_rate_hz``, sample 0 = trial start.
        gsr_rate_hz, gsr_unit: the recording's rate and unit (resampled and converted here).
        eeg: (C, m) EEG in µV at :data:`EEG_RATE_HZ` (128 Hz), sample 0 = trial start, or None;
            decimated here to ``config.eeg_rate_hz``.
        config: dataset options.
    """
    pre = GsrPreprocessor(gsr_rate_hz, gsr_unit, config.preprocessing, hop_samples=config.hop)
    windows = pre.apply(gsr)
    e = config.eeg_window_samples
    keep = windows.usable.copy()
    if eeg is not None and config.eeg_decimation > 1:
        eeg = decimate_eeg(eeg, config.eeg_decimation)
    # EEG sample index one past the GSR window's end (exact when the model rate divides the EEG rate).
    eeg_end = np.round(windows.end_s * config.eeg_rate_hz).astype(np.int64)
    if eeg is not None:
        # The EEG window must fit; the GSR and EEG of one trial can differ by a sample or so.
        keep &= (eeg_end - e >= 0) & (eeg_end <= eeg.shape[1])
    eeg_windows = None
    if eeg is not None:
        idx = (eeg_end[keep] - e)[:, None] + np.arange(e)[None, :]
        eeg_windows = normalise_eeg(np.ascontiguousarray(eeg[:, idx].transpose(1, 0, 2), dtype=np.float32), config)
    return TrialWindows(
        gsr=windows.features[keep],
        eeg=eeg_windows,
        start_s=windows.start_s[keep].astype(np.float32),
        dropped=int((~keep).sum()),
    )


@dataclass
class SubjectWindows:
    """All windows of one subject, ready to concatenate (see :func:`assemble`)."""

    subject: int
    trials: list[int] = field(default_factory=list)
    ratings: list[npt.NDArray[np.float32]] = field(default_factory=list)  # per trial (2,)
    labels: list[npt.NDArray[np.int64]] = field(default_factory=list)  # per trial (2,)
    windows: list[TrialWindows] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def add(self, trial: int, ratings: npt.ArrayLike, labels: npt.ArrayLike, windows: TrialWindows) -> None:
        self.trials.append(int(trial))
        self.ratings.append(np.asarray(ratings, dtype=np.float32).reshape(2))
        self.labels.append(np.asarray(labels, dtype=np.int64).reshape(2))
        self.windows.append(windows)


def assemble(parts: list[SubjectWindows], *, has_eeg: bool, window_samples: int, eeg_channels: int,
             meta: dict[str, Any], eeg_window_samples: int | None = None) -> WindowedDataset:
    """Concatenate subjects into one :class:`WindowedDataset` (fills ``meta['windows_dropped']``).

    ``window_samples``: GSR samples per window; ``eeg_window_samples``: EEG samples per window
    (default: the same).
    """
    counts = [len(tw.start_s) for part in parts for tw in part.windows]
    n = int(sum(counts))
    gsr = np.empty((n, window_samples), np.float32)
    eeg_w = window_samples if eeg_window_samples is None else eeg_window_samples
    eeg = np.empty((n, eeg_channels, eeg_w), np.float32) if has_eeg else None
    labels = np.empty((n, 2), np.int64)
    ratings = np.empty((n, 2), np.float32)
    subject = np.empty(n, np.int64)
    trial = np.empty(n, np.int64)
    start_s = np.empty(n, np.float32)
    row = dropped = 0
    for part in parts:
        for t, r, lab, tw in zip(part.trials, part.ratings, part.labels, part.windows, strict=True):
            k = len(tw.start_s)
            dropped += tw.dropped
            sl = slice(row, row + k)
            gsr[sl] = tw.gsr
            if eeg is not None:
                if tw.eeg is None:
                    raise DataError(f"subject {part.subject} trial {t} has no EEG in an EEG dataset")
                eeg[sl] = tw.eeg
            labels[sl], ratings[sl] = lab, r
            subject[sl], trial[sl], start_s[sl] = part.subject, t, tw.start_s
            row += k
    meta = dict(meta)
    meta["windows_dropped"] = int(dropped)
    meta["n_windows"] = n
    meta["n_subjects"] = len({p.subject for p in parts})
    meta["n_trials"] = int(sum(len(p.trials) for p in parts))
    return WindowedDataset(gsr=gsr, eeg=eeg, labels=labels, ratings=ratings, subject=subject,
                           trial=trial, start_s=start_s, meta=meta)


__all__ = ["SubjectWindows", "TrialWindows", "assemble", "normalise_eeg", "scale_subject_eeg", "window_trial"]
