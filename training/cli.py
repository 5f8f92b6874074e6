"""``emotionkd-train``: command line (thin typer commands; errors become exit codes only here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emotionkd.sdk.cli import friendly_errors

app = typer.Typer(name="emotionkd-train", no_args_is_help=True, add_completion=False)


@app.command()
def version() -> None:
    """Print the emotionkd version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("emotionkd"))


# --- data: synth, prepare (issue 3) -------------------------------------------------------------


@app.command()
@friendly_errors
def synth(
    out: Annotated[Path, typer.Option("--out", help="Output folder (created).")],
    file_format: str = typer.Option("deap", "--format", help="deap or mahnob"),
    subjects: int = typer.Option(4, "--subjects", min=1, help="Number of subjects."),
    trials: int = typer.Option(8, "--trials", min=1, help="Trials (sessions) per subject; DEAP has 40."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same bytes."),
    trial_s: float = typer.Option(60.0, "--trial-s", help="Stimulus seconds per trial (DEAP: 60)."),
    matlab: bool = typer.Option(False, "--matlab", help="DEAP: also write data_preprocessed_matlab/sXX.mat."),
    mahnob_pad_s: float = typer.Option(30.0, "--mahnob-pad-s", help="MAHNOB: seconds recorded before/after each stimulus."),
    eeg_arousal_effect: float = typer.Option(0.5, help="EEG: alpha down / beta up per unit arousal (log-amplitude)."),
    eeg_valence_effect: float = typer.Option(0.8, help="EEG: frontal alpha asymmetry per unit valence."),
    gsr_arousal_effect: float = typer.Option(0.25, help="GSR: SCR drive change per unit arousal (0-1 scale)."),
    gsr_valence_effect: float = typer.Option(0.08, help="GSR: SCR drive change per unit negative valence."),
    rating_noise: float = typer.Option(1.0, help="Self-report noise (rating points, 1-9 scale)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes."),
) -> None:
    """Write a synthetic DEAP or MAHNOB-HCI dataset in the real file formats."""
    import time

    from tqdm.auto import tqdm

    from emotionkd.training.datasets import SynthConfig, generate

    config = SynthConfig(trial_s=trial_s, eeg_arousal_effect=eeg_arousal_effect,
                         eeg_valence_effect=eeg_valence_effect, gsr_arousal_effect=gsr_arousal_effect,
                         gsr_valence_effect=gsr_valence_effect, rating_noise=rating_noise)
    started = time.perf_counter()
    with tqdm(total=subjects, desc=f"synth {file_format}", unit="subject", disable=None) as bar:
        generate(file_format, out, subjects=subjects, trials=trials, seed=seed, config=config,
                 matlab=matlab, mahnob_pad_s=mahnob_pad_s, workers=workers, progress=bar.update)
    typer.echo(f"wrote {subjects} subjects x {trials} trials of synthetic {file_format} to {out} "
               f"in {time.perf_counter() - started:.1f} s")


@app.command()
@friendly_errors
def prepare(
    kind: Annotated[str, typer.Argument(help="deap, mahnob or recordings")],
    root: Annotated[Path, typer.Argument(help="Dataset folder (see README, Training data).")],
    cache_dir: Annotated[Path, typer.Option("--cache-dir", help="Prepared-dataset cache.")] = Path(".cache/datasets"),
    out: Annotated[Path | None, typer.Option("--out", help="Also write the prepared windows to this .npz.")] = None,
    label_threshold: float = typer.Option(5.0, help="Rating threshold of the binary labels."),
    label_rule: str = typer.Option("gt", help="gt (rating > threshold is high) or ge (>=)."),
    eeg_normalisation: str = typer.Option("window_zscore", help="window_zscore, window_center or none."),
    hop_samples: int | None = typer.Option(None, help="Samples between windows (default: one window)."),
    gsr_unit: str | None = typer.Option(None, help="recordings: GSR unit when the CSV header has none."),
    file_format: str = typer.Option("auto", help="deap: auto, python or matlab."),
    content_hash: bool = typer.Option(False, help="Key the cache on file contents (slower, exact)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes (subjects in parallel)."),
) -> None:
    """Prepare (window, label, cache) a dataset and print a summary."""
    import time

    import numpy as np

    from emotionkd.training.datasets import DatasetConfig, load_dataset

    config = DatasetConfig(label_threshold=label_threshold, label_rule=label_rule,
                           eeg_normalisation=eeg_normalisation, hop_samples=hop_samples)
    options: dict[str, str] = {}
    if kind == "deap":
        options["file_format"] = file_format
    if gsr_unit is not None:
        options["gsr_unit"] = gsr_unit
    started = time.perf_counter()
    data = load_dataset(kind, root, config, cache_dir, workers=workers, content_hash=content_hash, **options)
    elapsed = time.perf_counter() - started
    high = data.labels.mean(axis=0) if len(data) else np.zeros(2)
    typer.echo(f"{kind}: {len(data)} windows, {data.meta['n_subjects']} subjects, {data.meta['n_trials']} trials, "
               f"EEG {'yes' if data.eeg is not None else 'no'}, {data.meta['windows_dropped']} windows dropped "
               f"({data.meta['data_kind']}) in {elapsed:.1f} s")
    typer.echo(f"high-class rate: arousal {high[0]:.2f}, valence {high[1]:.2f}; cache key {data.meta['cache_key']}")
    if out is not None:
        data.save_npz(out)
        typer.echo(f"wrote {out}")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="emotionkd-train")
