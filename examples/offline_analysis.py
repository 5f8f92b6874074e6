"""Offline analysis of a GSR recording: signal, skin-conductance responses, predictions over time.

Reads a recording (the SDK's own ``emotionkd-sdk record`` CSV, an Empatica E4 ``EDA.csv`` or a
``time,value`` CSV), runs the model over it exactly as the live stream would
(:meth:`EmotionClassifier.predict`, same preprocessing), detects skin-conductance responses
(SCRs) with NeuroKit2 (``eda_clean``, ``eda_phasic``, ``eda_peaks``), and saves a figure with
three panels (signal with SCR onsets and peaks; SCR rate per minute; arousal and valence
probabilities with the windows that failed the quality gate shaded) plus the predictions as CSV.

    python examples/offline_analysis.py session.csv --out analysis/
    python examples/offline_analysis.py            # no file: records 120 s of sim:// first
                                                   # (arousal rises at 60 s, electrodes off at 80 s)

Needs matplotlib, scipy and neurokit2 (``pip install "emotionkd[train]"``); plots use the Agg
backend (no display needed).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.samples import SampleFlag
from emotionkd.sdk import EmotionClassifier
from emotionkd.sdk.sources.replay import load_signal


@dataclass(frozen=True)
class Scr:
    """One skin-conductance response: onset and peak time (s), amplitude (µS)."""

    onset_s: float
    peak_s: float
    amplitude_us: float


def record_simulation(path: Path, duration_s: float) -> Path:
    """What ``emotionkd-sdk record --simulate`` writes, with an arousal rise half-way and a
    short electrode-off episode, produced as fast as possible."""
    from emotionkd.sdk.recording import RecordingWriter
    from emotionkd.sdk.sources.sim import SimSource

    fault_at = round(duration_s * 2 / 3)
    source = SimSource(f"sim://?rate=32&speed=0&seed=11&arousal=0.15&duration={duration_s:g}"
                       f"&faults=electrode_off@{fault_at}:3")
    writer = RecordingWriter(path, device="simulated sensor", protocol="sim", rate_hz=source.rate_hz)
    with source:
        for block in source.blocks():
            if block.start_s >= duration_s / 2:
                source.set_arousal(0.95)
            writer.write(block)
    writer.close()
    return path


def smooth(values_us: npt.NDArray[np.float64], rate_hz: float, cutoff_hz: float) -> npt.NDArray[np.float64]:
    """Zero-phase Butterworth low-pass; missing samples are interpolated for the filter."""
    from scipy.signal import butter, sosfiltfilt

    x = values_us.copy()
    bad = ~np.isfinite(x)
    if bad.all():
        return x
    if bad.any():
        x[bad] = np.interp(np.flatnonzero(bad), np.flatnonzero(~bad), x[~bad])
    sos = butter(2, min(cutoff_hz, 0.45 * rate_hz), fs=rate_hz, output="sos")
    out = sosfiltfilt(sos, x) if x.size > 30 else x
    out[bad] = np.nan
    return out


def detect_scrs(values_us: npt.NDArray[np.float64], rate_hz: float, *, min_amplitude_us: float = 0.02,
                min_stretch_s: float = 10.0) -> list[Scr]:
    """SCRs found by NeuroKit2: ``eda_clean`` (low-pass), ``eda_phasic`` (high-pass split into
    tonic and phasic), ``eda_peaks`` (onset, peak, amplitude), kept when the amplitude is at least
    ``min_amplitude_us`` (µS). Each stretch of valid samples of at least ``min_stretch_s`` is
    analysed on its own, so no response is ever found across missing samples."""
    import neurokit2 as nk

    found: list[Scr] = []
    valid = np.concatenate(([False], np.isfinite(values_us), [False]))
    edges = np.flatnonzero(np.diff(valid.astype(np.int8)))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start < min_stretch_s * rate_hz:
            continue
        clean = nk.eda_clean(values_us[start:stop], sampling_rate=rate_hz)
        phasic = nk.eda_phasic(clean, sampling_rate=rate_hz, method="highpass")["EDA_Phasic"].to_numpy()
        _, info = nk.eda_peaks(phasic, sampling_rate=rate_hz, method="neurokit")
        for onset, peak, amplitude in zip(info["SCR_Onsets"], info["SCR_Peaks"], info["SCR_Amplitude"], strict=True):
            if np.isfinite([onset, peak, amplitude]).all() and amplitude >= min_amplitude_us:
                found.append(Scr((start + onset) / rate_hz, (start + peak) / rate_hz, float(amplitude)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recording", nargs="?", type=Path, help="CSV recording (default: simulate one)")
    parser.add_argument("--out", type=Path, default=Path("analysis"), help="output folder (default ./analysis)")
    parser.add_argument("--model", default=None, help="an .onnx model (default: the bundled one)")
    parser.add_argument("--unit", default="uS", help="unit of a plain time,value CSV (uS, kOhm, …)")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds to simulate when no file is given")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.recording or record_simulation(args.out / "recording.csv", args.duration)
    signal = load_signal(path, unit=args.unit)
    rate, raw = signal.rate_hz, signal.conductance_us
    # samples the device marked unusable (electrode off, saturated, missing) are no skin signal
    unusable = (signal.flags & (SampleFlag.ELECTRODE_OFF | SampleFlag.SATURATED | SampleFlag.GAP)) != 0
    gsr = np.where(unusable, np.nan, raw)
    t = np.arange(gsr.size) / rate
    print(f"{path}: {signal.format} from {signal.device}, {gsr.size} samples at {rate:g} Hz "
          f"({gsr.size / rate:.0f} s, {np.count_nonzero(~np.isfinite(gsr))} missing or unusable)")

    clf = EmotionClassifier(args.model)
    predictions = clf.predict(raw, sample_rate_hz=rate, flags=signal.flags)  # the gate sees the flags
    scrs = detect_scrs(gsr, rate)
    tonic = smooth(gsr, rate, 0.05)

    with open(args.out / "predictions.csv", "w", encoding="utf-8") as f:
        f.write("start_s,end_s,arousal,valence,quality\n")
        for p in predictions:
            f.write(f"{p.start_s:g},{p.end_s:g},{'' if p.arousal is None else f'{p.arousal:.4f}'},"
                    f"{'' if p.valence is None else f'{p.valence:.4f}'},{p.quality}\n")

    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True, constrained_layout=True)
    ax = axes[0]
    ax.plot(t, gsr, lw=0.8, color="tab:blue", label="skin conductance")
    ax.plot(t, tonic, lw=1.2, color="tab:gray", ls="--", label="tonic level (0.05 Hz)")
    if scrs:
        ax.plot([s.peak_s for s in scrs], np.interp([s.peak_s for s in scrs], t, np.nan_to_num(gsr)), "v",
                color="tab:red", ms=5, label=f"SCR peaks ({len(scrs)})")
        ax.plot([s.onset_s for s in scrs], np.interp([s.onset_s for s in scrs], t, np.nan_to_num(gsr)), "^",
                color="tab:green", ms=4, label="SCR onsets")
    ax.set_ylabel("µS")
    ax.set_title(f"{Path(path).name}: {signal.device}")
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[1]
    edges = np.arange(0.0, t[-1] + 30.0, 30.0)
    counts, _ = np.histogram([s.peak_s for s in scrs], bins=edges)
    ax.bar(edges[:-1], counts * 2.0, width=28.0, align="edge", color="tab:orange")  # per 30 s -> per min
    ax.set_ylabel("SCRs / min")

    ax = axes[2]
    mids = np.array([(p.start_s + p.end_s) / 2 for p in predictions])
    ax.plot(mids, [np.nan if p.arousal is None else p.arousal for p in predictions], color="tab:red", label="arousal")
    ax.plot(mids, [np.nan if p.valence is None else p.valence for p in predictions], color="tab:purple", label="valence")
    for p in predictions:
        if not p.ok:
            ax.axvspan(p.start_s, p.end_s, color="0.85", lw=0)
    ax.axhline(0.5, color="0.5", lw=0.5)
    ax.set_ylim(0, 1)
    ax.set_ylabel("P(high)")
    ax.set_xlabel("time (s)")
    ax.legend(loc="upper left", fontsize=8)
    if clf.trained_on_synthetic_data:
        ax.set_title("model trained on synthetic data: a demonstration, not a measurement", fontsize=9)
    figure = args.out / "analysis.png"
    fig.savefig(figure, dpi=110)
    plt.close(fig)

    ok = [p for p in predictions if p.ok]
    half = t[-1] / 2
    first = sum(1 for s in scrs if s.peak_s < half) / (half / 60)
    second = sum(1 for s in scrs if s.peak_s >= half) / (half / 60)
    print(f"{len(scrs)} SCRs ({first:.1f}/min in the first half, {second:.1f}/min in the second); "
          f"{len(predictions)} windows, {len(ok)} ok")
    if ok:
        print(f"mean arousal {np.mean([p.arousal for p in ok]):.2f}, mean valence {np.mean([p.valence for p in ok]):.2f}")
    print(f"wrote {figure} and {args.out / 'predictions.csv'}")


if __name__ == "__main__":
    main()
