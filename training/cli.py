"""``emotionkd-train``: command line (thin typer commands; errors become exit codes only here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast

import typer

from emotionkd.sdk.cli import friendly_errors
from emotionkd.training.datasets.config import EEG_NORMALISATIONS, EEG_RATE_HZ
from emotionkd.training.datasets.synthetic import SynthConfig

#: the generator's defaults are SynthConfig's (one owner): `synth` writes what `train` would, so
#: the data check (training.experiment.check_synthetic_files) accepts its files
_SYNTH = SynthConfig()

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
    eeg_arousal_effect: float = typer.Option(_SYNTH.eeg_arousal_effect, help="EEG: alpha down / beta up per unit arousal (log-amplitude)."),
    eeg_valence_effect: float = typer.Option(_SYNTH.eeg_valence_effect, help="EEG: frontal alpha asymmetry per unit valence."),
    gsr_arousal_effect: float = typer.Option(_SYNTH.gsr_arousal_effect, help="GSR: SCR drive change per unit arousal (0-1 scale)."),
    gsr_valence_effect: float = typer.Option(_SYNTH.gsr_valence_effect, help="GSR: SCR drive change per unit negative valence."),
    rating_noise: float = typer.Option(_SYNTH.rating_noise, help="Self-report noise (rating points, 1-9 scale)."),
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
    eeg_normalisation: str = typer.Option("window_zscore", help=" | ".join(EEG_NORMALISATIONS) + "."),
    hop_samples: int | None = typer.Option(None, help="Samples between windows (default: one window)."),
    eeg_window_s: float = typer.Option(4.0, help="The teacher's EEG window (s), ending where the GSR window ends."),
    eeg_rate_hz: float = typer.Option(EEG_RATE_HZ, help="The teacher's EEG rate: 128, or 64 / 32 (decimated)."),
    gsr_unit: str | None = typer.Option(None, help="recordings: GSR unit when the CSV header has none."),
    file_format: str = typer.Option("auto", help="deap: auto, python or matlab."),
    content_hash: bool = typer.Option(False, help="Key the cache on file contents (slower, exact)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes (subjects in parallel)."),
    subjects: str | None = typer.Option(None, "--subjects", help="Only these subject ids, e.g. 2,3,7."),
    label_target: str = typer.Option("arousal", help="recordings: the target a plain 'label' column labels."),
    label_source: str | None = typer.Option(
        None, help="recordings: where the labels come from, in words (goes into the model card), e.g. "
                   "'binary stress label: stress task = high arousal'."),
) -> None:
    """Prepare (window, label, cache) a dataset and print a summary."""
    import time

    from emotionkd.training.datasets import DatasetConfig, load_dataset
    from emotionkd.training.windowed import TARGETS

    config = DatasetConfig(label_threshold=label_threshold, label_rule=label_rule,
                           eeg_normalisation=eeg_normalisation, hop_samples=hop_samples,
                           eeg_window_s=eeg_window_s, eeg_rate_hz=eeg_rate_hz,
                           subjects=parse_subjects(subjects))
    options: dict[str, Any] = {}  # keyword options of the dataset's loader
    if kind == "deap":
        options["file_format"] = file_format
    if kind == "recordings":
        options["label_target"] = label_target
        if label_source:
            options["label_source"] = label_source
    if gsr_unit is not None:
        options["gsr_unit"] = gsr_unit
    started = time.perf_counter()
    data = load_dataset(kind, root, config, cache_dir, workers=workers, content_hash=content_hash, **options)
    elapsed = time.perf_counter() - started
    typer.echo(f"{kind}: {len(data)} windows, {data.meta['n_subjects']} subjects, {data.meta['n_trials']} trials, "
               f"EEG {'yes' if data.eeg is not None else 'no'}, {data.meta['windows_dropped']} windows dropped "
               f"({data.meta['data_kind']}) in {elapsed:.1f} s")
    labelled = data.meta.get("targets", list(TARGETS))
    rates = ", ".join(f"{t} {data.labels[:, i].mean():.2f}" if t in labelled else f"{t} (no labels)"
                      for i, t in enumerate(TARGETS))
    typer.echo(f"high-class rate: {rates}; cache key {data.meta['cache_key']}")
    for target, text in (data.meta.get("label_provenance") or {}).items():
        if text:
            typer.echo(f"{target} labels: {text}")
    for item in data.meta.get("skipped") or []:
        typer.echo(f"skipped {item['path']}: {item['reason']}")
    if out is not None:
        data.save_npz(out)
        typer.echo(f"wrote {out}")


def parse_subjects(text: str | None) -> tuple[int, ...] | None:
    """``"2,3,7"`` → (2, 3, 7); None or empty → None (all)."""
    if not text:
        return None
    from emotionkd.firmware_bridge.errors import ConfigError

    try:
        ids = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"--subjects must be comma-separated subject ids such as 2,3,7, got {text!r}") from exc
    return ids or None


# --- training: teacher, student, distill, finetune, evaluate (issue 4) ------------------------
def _experiment(config_path: Path | None, preset: str | None, overrides: list[str], device: str | None,
                seed: int | None, out: Path | None, progress: bool) -> Any:
    """The typed experiment config: preset, then file, then ``--set``, then the flag options."""
    from emotionkd.training.config import load_config, parse_override

    changes = dict(parse_override(item) for item in overrides)
    for key, value in (("device", device), ("seed", seed), ("output_dir", None if out is None else str(out))):
        if value is not None:
            changes[key] = value
    changes["progress"] = progress
    return load_config(config_path, preset=preset, overrides=changes)


def _start(config: Any, preprocessing: Any = None) -> tuple[Any, Any]:
    """Join torchrun's process group (if any) and load the data (rank 0 first: it may generate
    synthetic files that the other ranks then read from the cache), prepared with
    ``preprocessing`` (default: this emotionkd's)."""
    import os

    import torch

    from emotionkd.training.experiment import default_threads, load_windows
    from emotionkd.training.trainer import Parallel

    torch.set_num_threads(default_threads(config.threads, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    parallel = Parallel.from_environment(config.device)
    if not parallel.is_main:
        parallel.barrier()
    data = load_windows(config, progress=config.progress and parallel.is_main, preprocessing=preprocessing)
    if parallel.is_main:
        parallel.barrier()
        from emotionkd.training.config import save_config

        save_config(config, config.run_dir / "config.json")
    return parallel, data


def _finish(parallel: Any) -> None:
    import torch.distributed as dist

    if parallel.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def _holdout_metrics(models: dict[str, Any], train: Any, held: Any, parallel: Any) -> dict[str, dict[str, float]]:
    from emotionkd.training.evaluation import binary_metrics
    from emotionkd.training.trainer import TensorSet, predict_proba
    from emotionkd.training.windowed import TARGETS

    if held is None:
        return {}
    out = {}
    for target, model in models.items():
        tensors = TensorSet.from_dataset(held, target, need_eeg=held.eeg is not None)
        y_train = train.labels[:, TARGETS.index(target)]
        out[target] = binary_metrics(tensors.labels.numpy(),
                                     predict_proba(model, tensors, parallel.device).argmax(1), y_train)
    return out


def _write_student(config: Any, data: Any, train: Any, held: Any, students: dict[str, Any], method: str,
                   parallel: Any, path: Path, notes: str = "") -> None:
    from emotionkd.training.checkpoint import StudentCheckpoint, save_student_checkpoint
    from emotionkd.training.experiment import build_contract

    metrics = _holdout_metrics(students, train, held, parallel)
    if not parallel.is_main:
        return
    first = next(iter(students.values()))
    contract = build_contract(
        data, config, first, method=method, protocol="holdout-subjects" if held is not None else "none",
        metrics=metrics, subjects=len(set(train.subject.tolist())), notes=notes)
    save_student_checkpoint(StudentCheckpoint(
        contract=contract, student_config=first.config,
        state_dicts={t: m.state_dict() for t, m in students.items()}, metrics=metrics,
        train_config=config.to_dict()), path)
    typer.echo(f"wrote {path} ({method}; {contract.provenance.data_kind} {contract.provenance.dataset})")
    for target, m in metrics.items():
        typer.echo(f"  {target}: held-out accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f} "
                   f"(majority rate {m['majority_rate']:.3f})")


_CONFIG = typer.Option(None, "--config", "-c", help="Experiment file (.toml or .json).")
_PRESET = typer.Option(None, "--preset", help="tuned (default), paper, pipeline or experiment.")
_SET = typer.Option([], "--set", help="Override one option: section.key=value (repeatable).")
_DEVICE = typer.Option(None, "--device", help="cpu or cuda.")
_SEED = typer.Option(None, "--seed", help="Seed of initialisation, shuffling and splits.")
_OUT = typer.Option(None, "--out", help="Output folder (config output_dir; the run goes to OUT/NAME).")
_PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show progress bars.")
_APPEND = typer.Option([], "--append", help="Markdown file appended to the results document (repeatable), "
                       "e.g. docs/kd-choice.md.")
_REPORT = typer.Option(None, "--report", help="Also write the results document here (e.g. docs/results.md; "
                       "the curves beside it as NAME-curves.png).")
_TEACHER = typer.Option(None, "--teacher", help="teacher.pt to distil from (default: train the teachers first).")


def _fit_on_training_subjects(config: Any, method: str, teachers: dict[str, Any] | None = None,
                              ) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
    """Start (DDP-aware), hold out the evaluation subjects, train ``method`` for every target
    (``teachers``: given teachers per target for the KD methods; missing ones are trained).

    Returns ``(parallel, data, train, held, models)`` with ``models`` keyed by target.
    """
    from emotionkd.training.experiment import fit_methods, subject_holdout

    parallel, data = _start(config)
    train, held = subject_holdout(data, config.evaluation.holdout_subjects, config.seed,
                                  config.evaluation.holdout_ids)
    models = {t: fit_methods(train, t, config, [method], parallel=parallel, state_dir=config.run_dir / "state",
                             teacher=(teachers or {}).get(t))[method].model for t in config.targets}
    return parallel, data, train, held, models


@app.command()
@friendly_errors
def teacher(config_path: Path | None = _CONFIG, preset: str | None = _PRESET, overrides: list[str] = _SET,
            device: str | None = _DEVICE, seed: int | None = _SEED, out: Path | None = _OUT,
            progress: bool = _PROGRESS) -> None:
    """Train the EEG+GSR teachers (arousal, valence) and write RUN/teacher.pt."""
    from emotionkd.training.checkpoint import save_teacher_checkpoint

    config = _experiment(config_path, preset, overrides, device, seed, out, progress)
    parallel, data, train, held, teachers = _fit_on_training_subjects(config, "teacher")
    metrics = _holdout_metrics(teachers, train, held, parallel)
    if parallel.is_main:
        path = save_teacher_checkpoint(config.teacher, {t: m.state_dict() for t, m in teachers.items()},
                                       config.run_dir / "teacher.pt", metadata={"metrics": metrics})
        typer.echo(f"wrote {path}")
        for target, m in metrics.items():
            typer.echo(f"  {target}: held-out accuracy {m['accuracy']:.3f} (majority rate {m['majority_rate']:.3f})")
    _finish(parallel)


@app.command()
@friendly_errors
def student(config_path: Path | None = _CONFIG, preset: str | None = _PRESET, overrides: list[str] = _SET,
            device: str | None = _DEVICE, seed: int | None = _SEED, out: Path | None = _OUT,
            progress: bool = _PROGRESS) -> None:
    """Train the GSR-only baseline students (no teacher) and write RUN/student.pt."""
    config = _experiment(config_path, preset, overrides, device, seed, out, progress)
    parallel, data, train, held, students = _fit_on_training_subjects(config, "student")
    _write_student(config, data, train, held, students, "student", parallel, config.run_dir / "student.pt")
    _finish(parallel)


@app.command()
@friendly_errors
def distill(config_path: Path | None = _CONFIG, preset: str | None = _PRESET, overrides: list[str] = _SET,
            device: str | None = _DEVICE, seed: int | None = _SEED, out: Path | None = _OUT,
            progress: bool = _PROGRESS,
            feedback: bool = typer.Option(False, "--feedback", help="KD + adaptive feedback (second order)."),
            teacher_path: Path | None = _TEACHER) -> None:
    """Distil the teachers into GSR-only students and write RUN/student.pt (what export reads)."""
    from emotionkd.training.checkpoint import load_teacher_checkpoint

    config = _experiment(config_path, preset, overrides, device, seed, out, progress)
    given: dict[str, Any] = {}
    if teacher_path is not None:
        _, given, _ = load_teacher_checkpoint(teacher_path)
    method = "kd+feedback" if feedback else "kd"
    parallel, data, train, held, students = _fit_on_training_subjects(config, method, given)
    _write_student(config, data, train, held, students, method, parallel, config.run_dir / "student.pt",
                   notes=f"teacher from {teacher_path}" if teacher_path else "")
    _finish(parallel)


@app.command()
@friendly_errors
def finetune(checkpoint: str = typer.Option(..., "--checkpoint", "--from",
                                            help="student.pt to start from, or 'bundled' (the bundled model's student)."),
             config_path: Path | None = _CONFIG, preset: str | None = _PRESET, overrides: list[str] = _SET,
             device: str | None = _DEVICE, seed: int | None = _SEED, out: Path | None = _OUT,
             progress: bool = _PROGRESS,
             holdout: str | None = typer.Option(None, "--holdout", help="Hold out these subject ids, e.g. 3,7 "
                                                "(default: evaluation.holdout_subjects random ones).")) -> None:
    """Fine-tune a student on labelled GSR recordings (data.source=recordings or prepared):
    GSR-only CE with the student optimiser, only the heads the data labels (the others are kept
    with their provenance); writes RUN/student-finetuned.pt."""
    import json

    from emotionkd.training.experiment import subject_holdout
    from emotionkd.training.finetune import (
        check_compatible,
        finetune_targets,
        finetuned_checkpoint,
        load_start,
    )
    from emotionkd.training.models import EmotionNetStudent
    from emotionkd.training.trainer import LoopOptions, TensorSet, train_student

    base = load_start(checkpoint)
    ids = parse_subjects(holdout)
    if ids:
        overrides = [*overrides, f"evaluation.holdout_ids={json.dumps(list(ids))}"]
    config = _experiment(config_path, preset, overrides, device, seed, out, progress)
    parallel, data = _start(config, base.contract.preprocessing_config())
    check_compatible(base, data)
    train, held = subject_holdout(data, config.evaluation.holdout_subjects, config.seed,
                                  config.evaluation.holdout_ids)
    students: dict[str, EmotionNetStudent] = {}
    for target in finetune_targets(config.targets, data, base):
        options = LoopOptions(seed=config.seed, parallel=parallel, progress=config.progress and parallel.is_main,
                              state_path=config.run_dir / "state" / f"{target}-finetune.state.pt")
        model = train_student(TensorSet.from_dataset(train, target, need_eeg=False), base.student_config,
                              config.student_optim, config.distill.l2, options,
                              initial=base.build(target).train(), desc=f"finetune {target}").model
        students[target] = cast(EmotionNetStudent, model)  # a trained copy of `initial`
    metrics = _holdout_metrics(students, train, held, parallel)
    if parallel.is_main:
        from emotionkd.training.checkpoint import save_student_checkpoint

        result = finetuned_checkpoint(
            base, data.meta, students, metrics, protocol="holdout-subjects" if held is not None else "none",
            subjects=len(set(train.subject.tolist())), notes=f"fine-tuned from {checkpoint}",
            train_config=config.to_dict())
        path = save_student_checkpoint(result, config.run_dir / "student-finetuned.pt")
        typer.echo(f"wrote {path} ({result.contract.provenance.method})")
        for target in result.contract.targets:
            origin = result.contract.origin(target)
            tuned = "fine-tuned" if target in students else "kept"
            typer.echo(f"  {target}: {tuned}, {origin.data_kind} data ({origin.dataset}); labels: {origin.labels or '-'}")
            m = metrics.get(target)
            if m:
                typer.echo(f"    held-out accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f} "
                           f"(majority rate {m['majority_rate']:.3f})")
    _finish(parallel)


@app.command("bundle-checkpoint")
@friendly_errors
def bundle_checkpoint(
    student_pt: Annotated[Path, typer.Argument(help="The student.pt behind the bundled model.")],
    out: Annotated[Path | None, typer.Option("--out", help="Where to write (default: the installed bundled "
                                                           "checkpoint).")] = None,
) -> None:
    """Write a weights-only (float16) copy of a student checkpoint where `finetune --from bundled` finds it."""
    from emotionkd.training.checkpoint import load_student_checkpoint
    from emotionkd.training.finetune import bundled_checkpoint_path, save_weights_only

    path = save_weights_only(load_student_checkpoint(student_pt), out or bundled_checkpoint_path())
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command()
@friendly_errors
def evaluate(config_path: Path | None = _CONFIG, preset: str | None = _PRESET, overrides: list[str] = _SET,
             device: str | None = _DEVICE, seed: int | None = _SEED, out: Path | None = _OUT,
             progress: bool = _PROGRESS,
             protocol: str | None = typer.Option(None, "--protocol", help="loso or kfold."),
             report_path: Path | None = _REPORT,
             appendices: list[Path] = _APPEND) -> None:
    """Compare teacher, student, KD, KD + feedback and logistic-regression baselines over the folds
    of a protocol; writes RUN/results.json, RUN/results.md and RUN/curves.png."""
    import json
    import resource
    import shlex
    import shutil
    import sys
    import time

    from emotionkd.firmware_bridge.errors import ConfigError
    from emotionkd.training.experiment import evaluate_protocol, plot_curves, results_markdown

    started = time.perf_counter()

    if protocol is not None:
        overrides = [*overrides, f"evaluation.protocol={json.dumps(protocol)}"]
    config = _experiment(config_path, preset, overrides, device, seed, out, progress)
    parallel, data = _start(config)

    def report(record: dict[str, Any]) -> None:
        if parallel.is_main:
            typer.echo(f"{record['fold']:>20} {record['target']:>8} {record['method']:>12}: "
                       f"accuracy {record['accuracy']:.3f} macro-F1 {record['macro_f1']:.3f} "
                       f"(majority {record['majority_rate']:.3f})")

    texts = []
    for path in appendices:
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except OSError as exc:  # before hours of training, not after
            raise ConfigError(f"--append {path}: cannot read it ({exc.strerror}); give an existing Markdown file") from exc
    results = evaluate_protocol(data, config, parallel=parallel, on_fold=report)
    if parallel.is_main:
        usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        results["cpu_s"] = sum(u.ru_utime + u.ru_stime for u in usage)
        run = config.run_dir
        results["config"] = config.to_dict()
        results["data"] = {"windows": len(data), "subjects": len(set(data.subject.tolist())),
                           "dataset": data.meta.get("dataset"), "data_kind": data.meta.get("data_kind"),
                           "eeg_normalisation": (data.meta.get("eeg_normalisation") or {}).get("method"),
                           "eeg_window_samples": data.eeg_window_samples,
                           "eeg_rate_hz": data.meta.get("eeg_rate_hz")}
        results["wall_s"] = time.perf_counter() - started
        (run / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        command = "emotionkd-train " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "emotionkd-train evaluate"
        plot_curves(results["curves"], run / "curves.png")
        document = results_markdown(results, config, command=command, wall_s=results["wall_s"],
                                    curves_image="curves.png", cpu_s=results["cpu_s"], appendices=texts)
        (run / "results.md").write_text(document, encoding="utf-8")
        typer.echo(document)
        typer.echo(f"wrote {run / 'results.json'}, {run / 'results.md'}, {run / 'curves.png'}")
        if report_path is not None:
            image = report_path.with_name(report_path.stem + "-curves.png")
            report_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run / "curves.png", image)
            report_path.write_text(results_markdown(results, config, command=command, wall_s=results["wall_s"],
                                                    curves_image=image.name, cpu_s=results["cpu_s"],
                                                    appendices=texts), encoding="utf-8")
            typer.echo(f"wrote {report_path}, {image}")
    _finish(parallel)


@app.command("kd-sweep")
@friendly_errors
def kd_sweep(config_path: Path | None = _CONFIG, preset: str | None = _PRESET, overrides: list[str] = _SET,
             device: str | None = _DEVICE, seed: int | None = _SEED, out: Path | None = _OUT,
             progress: bool = _PROGRESS,
             matchings: str = typer.Option("sum_halves,relational,projection", help="Comma-separated matchings."),
             kl_weights: str = typer.Option("0.1,0.5,1.0", help="Comma-separated KL weights."),
             temperatures: str = typer.Option("1,2,4", help="Comma-separated temperatures.")) -> None:
    """Choose the KD matching, KL weight and temperature: every combination against the GSR-only
    student over the protocol's folds (paired, same teacher); writes RUN/kd-sweep.{json,md}."""
    import itertools
    import json

    from emotionkd.firmware_bridge.errors import ConfigError
    from emotionkd.training.evaluation import comparison_table
    from emotionkd.training.experiment import sweep_distillation

    try:
        grid = [{"matching": m, "kl_weight": float(w), "temperature": float(t)} for m, w, t in itertools.product(
            [m.strip() for m in matchings.split(",")], kl_weights.split(","), temperatures.split(","))]
    except ValueError as exc:
        raise ConfigError(f"--kl-weights and --temperatures must be comma-separated numbers: {exc}") from exc
    config = _experiment(config_path, preset, overrides, device, seed, out, progress)
    for point in grid:  # validate every point before hours of training
        config.with_overrides({f"distill.{k}": v for k, v in point.items()})
    parallel, data = _start(config)
    results = sweep_distillation(data, config, grid, parallel=parallel)
    if parallel.is_main:
        run = config.run_dir
        run.mkdir(parents=True, exist_ok=True)
        (run / "kd-sweep.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        table = comparison_table(results["comparisons"])
        (run / "kd-sweep.md").write_text(table, encoding="utf-8")
        typer.echo(table)
        typer.echo(f"wrote {run / 'kd-sweep.json'}, {run / 'kd-sweep.md'}")
    _finish(parallel)


@app.command("eda-contrast")
@friendly_errors
def eda_contrast(
    root: Annotated[Path, typer.Argument(help="Labelled recordings (e.g. ../shared/data/stress-predict).")],
    label_source: str | None = typer.Option(None, help="What the labels mean, in words."),
    out: Annotated[Path | None, typer.Option("--json", help="Also write the figures here (JSON).")] = None,
) -> None:
    """What changes from rest to stress in real EDA: tonic level (µS, ratio, time course), SCR
    rate and rise, median and quartiles over every rest -> stress transition."""
    import json

    from emotionkd.training.datasets.recordings import read_labelled_recordings
    from emotionkd.training.eda_contrast import (
        contrast_markdown,
        rest_stress_transitions,
        summarise_figures,
        transition_figures,
    )

    by_subject, _ = read_labelled_recordings(root, **({"label_source": label_source} if label_source else {}))
    transitions = rest_stress_transitions((sid, rec) for sid, recs in sorted(by_subject.items()) for rec in recs)
    summary = summarise_figures([transition_figures(r, s, hz) for _, r, s, hz in transitions])
    if out is not None:
        out.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    typer.echo(contrast_markdown(summary, len(transitions), len({t[0] for t in transitions})))


@app.command("evaluate-real")
@friendly_errors
def evaluate_real(
    root: Annotated[Path, typer.Argument(help="Labelled recordings (e.g. ../shared/data/stress-predict).")],
    start: str = typer.Option("bundled", "--from", help="student.pt the fine-tuned arm starts from, or 'bundled'."),
    shipped: str = typer.Option("bundled", "--shipped", help="ONNX model scored as shipped: 'bundled', a path, or 'none'."),
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("runs/real"),
    folds: int = typer.Option(6, "--folds", help="Groups of participants (0: leave one participant out)."),
    epochs: int = typer.Option(3, "--epochs", help="Training passes (fine-tuned and scratch)."),
    train_windows: int = typer.Option(3000, "--train-windows", help="Training windows sampled per fold."),
    seed: int = typer.Option(0, "--seed", help="Seed of sampling, initialisation, shuffling, bootstrap."),
    workers: int = typer.Option(1, "--workers", min=1, help="Folds run in parallel (processes)."),
    threads: int = typer.Option(1, "--threads", min=1, help="Torch threads per process."),
    label_target: str = typer.Option("arousal", help="The target a plain 'label' column labels."),
    label_source: str | None = typer.Option(None, help="What the labels mean, in words."),
    final: Annotated[Path | None, typer.Option(
        "--write-finetuned", help="Also fine-tune on every participant (same recipe) and write this student.pt.")] = None,
    baseline_tau: str = typer.Option(
        "", "--baseline-tau", help="v2 models: candidate baseline time constants in s, comma-separated; each fold "
        "takes the one its training participants rank best (nested). Empty: the base model's."),
    seed_from_rest: bool = typer.Option(
        False, "--seed-baseline-from-rest", help="v2 models: start each recording's baseline at the level of "
        "the last 180 s of its first rest span (training and evaluation), not at its first sample."),
) -> None:
    """Fine-tuned vs scratch vs shipped model vs baselines on real people (grouped k-fold by
    participant); writes OUT/results.json, OUT/results.md and OUT/per-person-auc.png."""
    import json

    from emotionkd.firmware_bridge.errors import ConfigError
    from emotionkd.training.finetune import resolve_checkpoint
    from emotionkd.training.real_eval import RealEvalConfig, plot, results_markdown
    from emotionkd.training.real_eval import evaluate_real as run

    try:
        grid = tuple(float(v) for v in baseline_tau.split(",") if v.strip())
    except ValueError as exc:
        raise ConfigError(f"--baseline-tau must be seconds separated by commas, got {baseline_tau!r}") from exc
    config = RealEvalConfig(folds=folds, epochs=epochs, train_windows=train_windows, seed=seed, workers=workers,
                            threads=threads, baseline_tau_grid=grid, seed_from_rest=seed_from_rest)
    shipped_path = None
    if shipped != "none":
        from emotionkd.sdk.model import bundled_model_path

        shipped_path = bundled_model_path() if shipped == "bundled" else Path(shipped)
    options = {"label_target": label_target, **({"label_source": label_source} if label_source else {})}
    results = run(root, resolve_checkpoint(start), shipped_path, config, dataset_options=options,
                  on_fold=lambda r: typer.echo(f"fold {r['done']}/{r['folds']} done", err=True), final=final)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    table = results_markdown(results)
    (out / "results.md").write_text(table + "\n", encoding="utf-8")
    d = results["data"]
    plot({a: {int(p): m for p, m in t.items()} for a, t in results["per_person"].items()}, out / "per-person-auc.png",
         f"{d['participants']} participants, {d['decision_points']} decision points, "
         f"{'LOPO' if folds == 0 else f'{folds} folds by person'}")
    typer.echo(table)
    t = results["time"]
    typer.echo(f"wall {t['wall_s']:.0f} s, CPU {t['cpu_s']:.0f} s; wrote {out / 'results.json'}, "
               f"{out / 'results.md'}, {out / 'per-person-auc.png'}" + (f", {final}" if final else ""))


def main() -> None:
    """Console-script entry point."""
    app(prog_name="emotionkd-train")


if __name__ == "__main__":
    main()
