"""Write synthetic DEAP and MAHNOB-HCI datasets in exactly the real file formats.

``emotionkd-train synth`` calls :func:`generate`. DEAP: ``data_preprocessed_python/sXX.dat``
(Python-2 pickles, as DEAP ships them; readable by :mod:`pickle` with ``encoding='latin1'``, so
by TorchEEG's ``DEAPDataset`` too) and optionally ``data_preprocessed_matlab/sXX.mat``.
MAHNOB-HCI: ``Sessions/<id>/`` with a BioSemi-style 24-bit BDF (written by pyedflib) and
``session.xml``. A ``SYNTHETIC.json`` manifest at the root records the generator, its version,
the seed and every knob; loaders copy it into ``meta`` so a model trained on it says so.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.training.datasets.channels import (
    DEAP_CHANNELS,
    DEAP_GSR_INDEX,
    DEAP_PERIPHERAL,
    GENEVA_32,
)
from emotionkd.training.datasets.deap import (
    DEAP_RATE_HZ,
    MATLAB_DIR,
    PYTHON_DIR,
    write_deap_dat,
    write_deap_mat,
)
from emotionkd.training.datasets.synthetic import (
    SYNTH_MODEL_VERSION,
    SynthConfig,
    draw_profile,
    draw_ratings,
    draw_states,
    subject_rng,
    synth_eeg,
    synth_gsr_us,
    synth_peripherals,
)

logger = logging.getLogger(__name__)

MANIFEST: Final = "SYNTHETIC.json"
FORMATS: Final = ("deap", "mahnob")


def deap_subject_arrays(seed: int, subject: int, trials: int, config: SynthConfig,
                        baseline_s: float = 3.0) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """One synthetic DEAP subject.

    Returns:
        data (trials, 40, samples) float64 (EEG µV, GSR Ohm, …), labels (trials, 4) =
        valence, arousal, dominance, liking ratings, states (trials, 2) latent [arousal, valence].
    """
    rng = subject_rng(seed, subject)
    profile = draw_profile(rng, subject)
    states = draw_states(rng, trials)
    ratings = draw_ratings(rng, states, profile, config)  # arousal, valence
    samples = int(round((baseline_s + config.trial_s) * DEAP_RATE_HZ))
    data = np.empty((trials, DEAP_CHANNELS, samples))
    data[:, :32] = synth_eeg(rng, states, profile, config, samples, DEAP_RATE_HZ)
    gsr_us = synth_gsr_us(rng, states, profile, config, samples, DEAP_RATE_HZ, onset_s=baseline_s)
    data[:, DEAP_GSR_INDEX] = 1e6 / gsr_us  # DEAP stores skin resistance in Ohm
    others = synth_peripherals(rng, trials, samples, DEAP_RATE_HZ)
    for i, name in enumerate(DEAP_PERIPHERAL):
        if 32 + i != DEAP_GSR_INDEX:
            data[:, 32 + i] = others[name.split(" ")[0]]
    dominance = np.round(np.clip(5.0 + 1.5 * states[:, 0] + rng.normal(0, 1.5, trials), 1, 9), 2)
    liking = np.round(np.clip(5.0 + 2.5 * states[:, 1] + rng.normal(0, 1.5, trials), 1, 9), 2)
    labels = np.stack([ratings[:, 1], ratings[:, 0], dominance, liking], axis=1)
    return data, labels, states


def _write_deap_subject(out: str, seed: int, subject: int, trials: int, config_dict: dict[str, Any],
                        matlab: bool) -> dict[str, Any]:
    config = SynthConfig(**config_dict)
    data, labels, states = deap_subject_arrays(seed, subject, trials, config)
    root = Path(out)
    write_deap_dat(root / PYTHON_DIR / f"s{subject:02d}.dat", data, labels)
    if matlab:
        write_deap_mat(root / MATLAB_DIR / f"s{subject:02d}.mat", data, labels)
    return {"subject": subject, "states": states.round(4).tolist()}


def _write_mahnob_subject(out: str, seed: int, subject: int, trials: int, config_dict: dict[str, Any],
                          pad_s: float, first_session: int) -> dict[str, Any]:
    return write_mahnob_subject(Path(out), seed, subject, trials, SynthConfig(**config_dict), pad_s, first_session)


def generate(
    file_format: str,
    out: str | Path,
    *,
    subjects: int = 4,
    trials: int = 8,
    seed: int = 0,
    config: SynthConfig | None = None,
    matlab: bool = False,
    mahnob_pad_s: float = 30.0,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write a synthetic dataset; returns the manifest (also written to ``out/SYNTHETIC.json``).

    Args:
        file_format: ``deap`` or ``mahnob``.
        out: output folder (created).
        subjects, trials: how many subjects, and trials (sessions) per subject.
        seed: the same seed gives the same bytes.
        config: the model knobs.
        matlab: DEAP only: also write ``data_preprocessed_matlab/sXX.mat``.
        mahnob_pad_s: MAHNOB only: recording before and after each stimulus (s).
        workers: processes (subjects are independent).
        progress: called with 1 after each subject (e.g. a tqdm ``update``).
    """
    if file_format not in FORMATS:
        raise ConfigError(f"unknown synthetic format {file_format!r}; use one of {', '.join(FORMATS)}")
    if subjects < 1 or trials < 1:
        raise ConfigError(f"need at least one subject and one trial, got {subjects} x {trials}")
    config = config or SynthConfig()
    root = Path(out)
    if file_format == "deap":
        (root / PYTHON_DIR).mkdir(parents=True, exist_ok=True)
        if matlab:
            (root / MATLAB_DIR).mkdir(parents=True, exist_ok=True)
    else:
        (root / "Sessions").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    jobs: list[tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]] = []
    for s in range(1, subjects + 1):
        if file_format == "deap":
            jobs.append((_write_deap_subject, (str(root), seed, s, trials, config.to_dict(), matlab)))
        else:
            jobs.append((_write_mahnob_subject, (str(root), seed, s, trials, config.to_dict(), mahnob_pad_s,
                                                 (s - 1) * (trials + 1) + 1)))
    results = run_jobs(jobs, workers, progress)
    manifest = {
        "generator": "emotionkd.training.datasets.synth_files",
        "model_version": SYNTH_MODEL_VERSION,
        "format": file_format,
        "subjects": subjects,
        "trials": trials,
        "seed": seed,
        "config": config.to_dict(),
        "matlab": matlab,
        "mahnob_pad_s": mahnob_pad_s if file_format == "mahnob" else None,
        "latent_states": {str(r["subject"]): r["states"] for r in results},
        "note": "synthetic data for tests and demos; not DEAP or MAHNOB-HCI recordings",
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    logger.info("wrote %s x %s synthetic %s trials to %s in %.1f s", subjects, trials, file_format, root,
                time.perf_counter() - started)
    return manifest


def run_jobs(jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]], workers: int,
             progress: Callable[[int], None] | None = None) -> list[Any]:
    """Run ``func(*args)`` for each job, in order, over ``workers`` processes (spawned, so a
    caller that has torch or threads loaded stays safe); results in job order."""
    if workers <= 1 or len(jobs) <= 1:
        results = []
        for func, args in jobs:
            results.append(func(*args))
            if progress:
                progress(1)
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")
    done = 0
    results = []
    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
            futures = [pool.submit(func, *args) for func, args in jobs]
            for future in futures:
                results.append(future.result())
                done += 1
                if progress:
                    progress(1)
    except BrokenProcessPool:
        # A worker could not start (e.g. a __main__ read from stdin cannot be re-imported by a
        # spawned process) or died; finish the remaining jobs here rather than fail.
        logger.warning("worker processes failed; running the remaining %d jobs in this process", len(jobs) - done)
        results += run_jobs(jobs[done:], 1, progress)
    return results


# --- MAHNOB-HCI ----------------------------------------------------------------------------------

MAHNOB_RATE_HZ: Final = 256.0
#: the 47 channels of a MAHNOB-HCI BioSemi file: label, unit, physical min, physical max
_EEG_RANGE: Final = (-262144.0, 262143.0)  # BioSemi ActiveTwo: 1/32 µV per bit
MAHNOB_CHANNELS: Final[tuple[tuple[str, str, float, float], ...]] = (
    *((name, "uV", *_EEG_RANGE) for name in GENEVA_32),
    *((f"EXG{i}", "uV", *_EEG_RANGE) for i in range(1, 9)),
    ("GSR1", "Ohm", -8388608.0, 8388607.0),
    ("GSR2", "Ohm", -8388608.0, 8388607.0),
    ("Erg1", "uV", *_EEG_RANGE),
    ("Erg2", "uV", *_EEG_RANGE),
    ("Resp", "Ohm", -8388608.0, 8388607.0),
    ("Temp", "Celsius", -100.0, 100.0),
    ("Status", "Boolean", -8388608.0, 8388607.0),
)
#: BioSemi's Status channel: system bits 16–23 are rarely all zero (bit 20: "CMS in range")
_STATUS_SYSTEM_BITS: Final = 1 << 20


def write_biosemi_bdf(path: Path, signals: list[npt.NDArray[np.float64]], rate_hz: float, start: datetime) -> None:
    """Write ``signals`` (one per :data:`MAHNOB_CHANNELS` entry, physical units; Status as codes)
    as a 24-bit BDF with 1 s data records, the way BioSemi ActiveTwo files are laid out.

    pyedflib writes a standard BDF: the same header, 24-bit samples and Status channel as a
    BioSemi file; its "reserved" header field is blank where ActiveView writes ``24BIT``, and
    the recording/equipment fields are pyedflib's. Readers (pyedflib, MNE, EEGLAB) accept both.
    """
    import warnings

    import pyedflib

    # pyedflib warns that "-8388608.0 has 10 chars"; it is written as -8388608, exactly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        writer = pyedflib.EdfWriter(str(path), len(MAHNOB_CHANNELS), file_type=pyedflib.FILETYPE_BDF)
        try:
            writer.setSignalHeaders([
                {"label": label, "dimension": unit, "sample_frequency": rate_hz, "physical_min": pmin,
                 "physical_max": pmax, "digital_min": -8388608, "digital_max": 8388607,
                 "transducer": "Active Electrode" if unit == "uV" else "", "prefilter": "HP:DC; LP:52 Hz"}
                for label, unit, pmin, pmax in MAHNOB_CHANNELS
            ])
            writer.setStartdatetime(start)
            writer.setEquipment("BIOSEMI")
            writer.writeSamples([np.ascontiguousarray(s, dtype=np.float64) for s in signals])
        finally:
            writer.close()


def _session_xml(session: int, subject: int, ratings: npt.NDArray[np.float64] | None, media: str,
                 stimulus_s: float) -> str:
    felt = ""
    if ratings is not None:
        felt = (f' feltEmo="0" feltArsl="{int(ratings[0])}" feltVlnc="{int(ratings[1])}"'
                f' feltCtrl="5" feltPred="5"')
    return (f'<?xml version="1.0" encoding="utf-8"?>\n'
            f'<session cutNum="{session}" cutLenSec="{stimulus_s:.1f}" mediaFile="{media}" isStim="1"{felt}'
            f' sessionId="{session}" vidRate="60" audioRate="48000">\n'
            f'  <subject id="{subject}" />\n</session>\n')


def write_mahnob_subject(root: Path, seed: int, subject: int, trials: int, config: SynthConfig, pad_s: float,
                         first_session: int) -> dict[str, Any]:
    """One synthetic MAHNOB-HCI subject: ``trials`` emotion sessions plus one implicit-tagging
    session (no felt ratings, which loaders must skip), raw-looking 256 Hz BioSemi signals."""
    rng = subject_rng(seed, subject)
    profile = draw_profile(rng, subject)
    states = draw_states(rng, trials)
    ratings = np.clip(np.round(draw_ratings(rng, states, profile, config)), 1, 9)  # MAHNOB: integers
    rate = MAHNOB_RATE_HZ
    for k in range(trials + 1):
        emotion = k < trials
        session = first_session + k
        stimulus_s = float(max(4, round(config.trial_s * rng.uniform(0.8, 1.2)))) if emotion else 12.0
        total_s = int(math.ceil(2 * pad_s + stimulus_s))
        n = int(total_s * rate)
        state = states[k : k + 1] if emotion else np.zeros((1, 2))
        # raw BioSemi EEG: no reference, wide band, electrode offsets, slow drift, mains hum
        eeg = synth_eeg(rng, state, profile, config, n, rate, band_hz=None, reference=False)[0]
        t = np.arange(n) / rate
        eeg += rng.normal(0.0, 8000.0, size=(32, 1))
        eeg += np.cumsum(rng.normal(0.0, 0.5, size=(32, n)), axis=1)
        eeg += 20.0 * np.sin(2 * np.pi * 50.0 * t + rng.uniform(0, 2 * np.pi))
        gsr_us = synth_gsr_us(rng, state, profile, config, n, rate, onset_s=pad_s)[0]
        others = synth_peripherals(rng, 1, n, rate)
        status = np.full(n, _STATUS_SYSTEM_BITS, dtype=np.float64)
        start = int(round(pad_s * rate))
        end = int(round((pad_s + stimulus_s) * rate))
        pulse = int(0.05 * rate)
        status[start : start + pulse] += 1  # stimulus onset trigger
        status[end : end + pulse] += 2  # stimulus end trigger
        exg = rng.normal(0.0, 10.0, size=(8, n)) + rng.normal(0.0, 3000.0, size=(8, 1))
        signals = [*eeg, *exg, 1e6 / gsr_us, 1e6 / (gsr_us * 1.03) + rng.normal(0, 50.0, n),
                   rng.normal(0, 5.0, n), rng.normal(0, 5.0, n),
                   others["Respiration"][0] + 2e5, others["Temperature"][0], status]
        folder = root / "Sessions" / str(session)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"Part_{subject}_S_Trial{k + 1}_{'emotion' if emotion else 'implicit'}.bdf"
        write_biosemi_bdf(folder / name, signals, rate, datetime(2010, 1, 1) + timedelta(days=session))
        media = f"synthetic_clip_{session}.avi"
        (folder / "session.xml").write_text(_session_xml(session, subject, ratings[k] if emotion else None,
                                                         media, stimulus_s), encoding="utf-8")
    return {"subject": subject, "states": states.round(4).tolist()}


def read_manifest(root: str | Path) -> dict[str, Any] | None:
    """The synthetic manifest of a dataset folder (or its parents up to two levels), or None."""
    folder = Path(root)
    for candidate in (folder, folder.parent, folder.parent.parent):
        path = candidate / MANIFEST
        if path.is_file():
            try:
                manifest = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            manifest.pop("latent_states", None)  # large; stays in the file
            return manifest
    return None


__all__ = ["FORMATS", "MANIFEST", "deap_subject_arrays", "generate", "read_manifest", "run_jobs"]
