"""The synthetic generator: byte-for-byte reproducible, plausible, and EEG-informative > GSR."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.sdk.preprocessing import PAPER_PREPROCESSING
from emotionkd.training.cli import app
from emotionkd.training.datasets import DatasetConfig, SynthConfig, generate, load_dataset
from emotionkd.training.datasets.synth_files import MANIFEST, deap_subject_arrays
from emotionkd.training.evaluation import binary_metrics


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("file_format", ["deap", "mahnob"])
def test_same_seed_same_bytes(tmp_path: Path, file_format: str) -> None:
    kwargs = dict(subjects=2, trials=2, config=SynthConfig(trial_s=8.0), matlab=True, mahnob_pad_s=2.0)
    generate(file_format, tmp_path / "a", seed=11, **kwargs)
    generate(file_format, tmp_path / "b", seed=11, workers=2, **kwargs)
    generate(file_format, tmp_path / "c", seed=12, **kwargs)
    a, b, c = (_digests(tmp_path / x) for x in "abc")
    assert len(a) >= 5 and a == b
    assert all(a[k] != c[k] for k in a if k.endswith((".dat", ".mat", ".bdf")))


def test_a_subject_does_not_depend_on_the_others() -> None:
    config = SynthConfig(trial_s=4.0)
    alone = deap_subject_arrays(5, 2, 3, config)[0]
    again = deap_subject_arrays(5, 2, 3, config)[0]
    other = deap_subject_arrays(5, 3, 3, config)[0]
    np.testing.assert_array_equal(alone, again)
    assert not np.allclose(alone, other)


def test_ratings_are_noisy_reports_of_the_latent_state(tmp_path: Path) -> None:
    manifest = generate("deap", tmp_path, subjects=1, trials=40, seed=2, config=SynthConfig(trial_s=4.0))
    assert json.loads((tmp_path / MANIFEST).read_text())["seed"] == 2
    states = np.array(manifest["latent_states"]["1"])
    data = load_dataset("deap", tmp_path, DatasetConfig(PAPER_PREPROCESSING), workers=1)
    ratings = np.array([data.ratings[data.trial == t][0] for t in range(1, 41)])
    for k in range(2):
        r = np.corrcoef(states[:, k], ratings[:, k])[0, 1]
        assert 0.7 < r < 0.999  # related, but not a copy
    assert data.meta["data_kind"] == "synthetic" and data.meta["synthetic"]["seed"] == 2


def _fit_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    # a ridge-regression linear classifier on standardised features: enough to compare modalities
    mean, std = train_x.mean(0), train_x.std(0) + 1e-9
    a = np.c_[(train_x - mean) / std, np.ones(len(train_x))]
    w = np.linalg.solve(a.T @ a + 1.0 * np.eye(a.shape[1]), a.T @ (2.0 * train_y - 1))
    return (np.c_[(test_x - mean) / std, np.ones(len(test_x))] @ w > 0).astype(int)


def _gsr_features(g: np.ndarray) -> np.ndarray:
    d = np.diff(g, axis=1)
    return np.c_[g.mean(1), g[:, -g.shape[1] // 8:].mean(1), g[:, -1] - g[:, 0], g.std(1), np.ptp(g, axis=1),
                 ((d[:, 1:] > 0) & (d[:, :-1] <= 0)).sum(1), np.clip(d, 0, None).sum(1)]


def _scores(data, x_of) -> dict[str, float]:  # type: ignore[no-untyped-def]
    x = x_of(data).copy()
    test = data.trial % 4 == 0  # whole trials held out
    for subject in np.unique(data.subject):  # per-subject centring, from training trials only
        rows = data.subject == subject
        x[rows] -= x[rows & ~test].mean(0)
    return {target: binary_metrics(data.labels[test, t], _fit_predict(x[~test], data.labels[~test, t], x[test]))["accuracy"]
            for t, target in enumerate(("arousal", "valence"))}


def test_eeg_carries_the_state_strongly_and_gsr_arousal_over_tens_of_seconds(tmp_path: Path) -> None:
    generate("deap", tmp_path, subjects=4, trials=24, seed=8, config=SynthConfig(trial_s=40.0))
    v2 = load_dataset("deap", tmp_path, workers=1)  # 32 s of GSR, log baseline; EEG: last 4 s
    paper = load_dataset("deap", tmp_path, DatasetConfig(PAPER_PREPROCESSING), workers=1)  # 4 s, z-score
    assert v2.eeg is not None

    def eeg_x(data):  # type: ignore[no-untyped-def]
        spectrum = np.abs(np.fft.rfft(data.eeg, axis=-1)) ** 2
        freqs = np.fft.rfftfreq(512, 1 / 128)
        bands = [(4, 8), (8, 13), (13, 30), (30, 45)]
        return np.concatenate([np.log(spectrum[..., (freqs >= lo) & (freqs < hi)].mean(-1)) for lo, hi in bands], axis=1)

    eeg = _scores(v2, eeg_x)
    gsr = _scores(v2, lambda d: _gsr_features(d.gsr))
    gsr_paper = _scores(paper, lambda d: _gsr_features(d.gsr))
    scores = {"eeg": eeg, "gsr-v2": gsr, "gsr-paper": gsr_paper}
    assert eeg["arousal"] > 0.75 and eeg["valence"] > 0.75, scores
    assert eeg["arousal"] > gsr["arousal"] + 0.08 and eeg["valence"] > gsr["valence"] + 0.15, scores
    assert gsr["arousal"] > 0.58, scores  # GSR with context carries arousal …
    assert gsr["valence"] < 0.62, scores  # … and hardly valence
    assert gsr["arousal"] > gsr_paper["arousal"] + 0.04, scores  # the z-scored 4 s input loses most of it


def test_gsr_arousal_ceiling_follows_the_drive_noise() -> None:
    """The Bayes ceiling of a GSR-only model: no noise -> as good as the latent arousal state
    itself (labels are noisy ratings, so < 100 %); more drive noise -> strictly lower."""
    from dataclasses import replace

    from emotionkd.training.datasets.synthetic import gsr_arousal_ceiling

    base = SynthConfig()
    ceilings = [gsr_arousal_ceiling(replace(base, gsr_drive_noise=n), subjects=400) for n in (0.0, 0.15, 0.3)]
    assert 0.85 < ceilings[0] < 0.97, ceilings
    assert ceilings[0] > ceilings[1] + 0.05 > ceilings[2] + 0.1, ceilings
    assert 0.6 < ceilings[2] < 0.75, ceilings  # the default: GSR carries arousal, but weakly
    # no information at all (drive constant): the best threshold is the majority share
    flat = replace(base, gsr_arousal_effect=0.0, gsr_valence_effect=0.0, gsr_drive_noise=0.0)
    assert gsr_arousal_ceiling(flat, subjects=400) < 0.53
    with pytest.raises(ConfigError, match="subjects and trials"):
        gsr_arousal_ceiling(base, subjects=0)


def test_synth_config_checks() -> None:
    with pytest.raises(ConfigError, match="trial_s"):
        SynthConfig(trial_s=1.0)
    with pytest.raises(ConfigError, match="unknown synthetic format"):
        generate("seed", "/nonexistent")


def test_cli_synth_and_prepare(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "deap"
    result = runner.invoke(app, ["synth", "--format", "deap", "--subjects", "2", "--trials", "3", "--seed", "1",
                                 "--trial-s", "36", "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "wrote 2 subjects x 3 trials" in result.output
    npz = tmp_path / "prepared.npz"
    result = runner.invoke(app, ["prepare", "deap", str(out), "--cache-dir", str(tmp_path / "cache"),
                                 "--out", str(npz), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "deap: 12 windows, 2 subjects, 6 trials" in result.output
    from emotionkd.training.windowed import WindowedDataset

    loaded = WindowedDataset.load_npz(npz)
    assert len(loaded) == 12 and loaded.eeg is not None and loaded.meta["dataset"] == "deap"
    result = runner.invoke(app, ["prepare", "deap", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "not found" in result.output
