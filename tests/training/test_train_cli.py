"""emotionkd-train teacher/student/distill/finetune/evaluate end to end on tiny models and data,
including a 2-process data-parallel run under torchrun (gloo, CPU)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.training.checkpoint import load_student_checkpoint, load_training_state
from emotionkd.training.cli import app
from emotionkd.training.config import load_config, parse_override
from emotionkd.training.experiment import describe_options

from .conftest import make_dataset

_SHAPES = "window_samples = {w}\nkernel_samples = 8\nstride_samples = 4\nfilters = 8\nheads = 2\nhead_dim = 4\n" \
          "ff_dim = 8\nhidden = 8\nmax_positions = {p}\n"
_OPTIM = "epochs = 2\nbatch_size = 16\nlr = 3e-3\n"
TINY_MODEL = (f"[teacher]\neeg_channels = {{c}}\n{_SHAPES}[student]\n{_SHAPES}"
              f"[teacher_optim]\n{_OPTIM}[student_optim]\n{_OPTIM}")

runner = CliRunner()


def _prepared(tmp_path: Path, subjects: int = 3) -> Path:
    data = make_dataset(subjects=subjects, trials=6, windows=3)
    data.meta.update({"dataset": "unit-test", "data_kind": "synthetic", "hop_samples": 64,
                      "preprocessing": {"name": "ekd-gsr", "version": 1,
                                        "params": {"rate_hz": 128.0, "window_samples": 64}},
                      "label_rule": {"threshold": 5.0, "rule": "gt"},
                      "eeg_normalisation": {"method": "subject_channel", "floor_uv": 0.1}})
    path = tmp_path / "windows.npz"
    data.save_npz(path)
    return path


def _config(tmp_path: Path, source: str, path: Path, window: int = 64, channels: int = 3) -> Path:
    positions = 16 if window == 64 else 128
    text = (f'name = "t"\noutput_dir = "{tmp_path / "runs"}"\nprogress = false\n'
            f'[data]\nsource = "{source}"\npath = "{path}"\ncache_dir = ""\nsubjects = 3\ntrials = 4\ntrial_s = 36.0\n'
            + TINY_MODEL.format(w=window, c=channels, p=positions))
    config = tmp_path / "experiment.toml"
    config.write_text(text)
    return config


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_distill_with_feedback_on_synthetic_deap_writes_a_complete_student_pt(tmp_path: Path) -> None:
    config = _config(tmp_path, "synthetic", tmp_path / "deap", window=512, channels=28)
    output = _invoke("distill", "--feedback", "--config", str(config), "--set", "feedback.period=2")
    assert "held-out accuracy" in output
    checkpoint = load_student_checkpoint(tmp_path / "runs" / "t" / "student.pt")
    contract = checkpoint.contract
    assert contract.provenance.method == "kd+feedback" and contract.provenance.data_kind == "synthetic"
    assert contract.provenance.dataset == "deap" and contract.provenance.protocol == "holdout-subjects"
    assert contract.provenance.subjects == 2
    assert contract.label_threshold == 5.0 and contract.label_rule == ">"
    assert contract.preprocessing.params["window_samples"] == 512
    assert set(contract.metrics) == {"arousal", "valence"} and "accuracy" in contract.metrics["arousal"]
    assert contract.model["name"] == "EmotionNet-Student"
    students = checkpoint.build_all()
    assert students["valence"](torch.randn(2, 512)).shape == (2, 2)
    saved = json.loads((tmp_path / "runs" / "t" / "config.json").read_text())
    assert saved["feedback"]["period"] == 2


def test_teacher_then_distill_from_it_then_finetune(tmp_path: Path) -> None:
    config = _config(tmp_path, "prepared", _prepared(tmp_path))
    _invoke("teacher", "--config", str(config))
    teacher = tmp_path / "runs" / "t" / "teacher.pt"
    assert teacher.is_file()
    _invoke("distill", "--config", str(config), "--teacher", str(teacher), "--set", "name=kd")
    student = tmp_path / "runs" / "kd" / "student.pt"
    assert load_student_checkpoint(student).contract.provenance.method == "kd"
    _invoke("finetune", "--checkpoint", str(student), "--config", str(config), "--set", "name=ft",
            "--set", "student_optim.lr=1e-4")
    tuned = load_student_checkpoint(tmp_path / "runs" / "ft" / "student-finetuned.pt")
    assert tuned.contract.provenance.method == "kd+finetune"
    before = load_student_checkpoint(student).state_dicts["arousal"]
    changed = [k for k, v in tuned.state_dicts["arousal"].items() if not torch.equal(v, before[k])]
    assert changed


def test_student_run_resumes_from_its_state(tmp_path: Path) -> None:
    config = _config(tmp_path, "prepared", _prepared(tmp_path))
    _invoke("student", "--config", str(config), "--set", 'targets=["arousal"]')
    state = tmp_path / "runs" / "t" / "state" / "arousal-student.state.pt"
    assert load_training_state(state)["epoch"] == 2
    # Asking for more epochs continues from epoch 2 instead of starting again.
    _invoke("student", "--config", str(config), "--set", 'targets=["arousal"]', "--set", "student_optim.epochs=3")
    history = load_training_state(state)["history"]
    assert [h["epoch"] for h in history] == [1.0, 2.0, 3.0]


def test_evaluate_loso_writes_results_and_curves(tmp_path: Path) -> None:
    config = _config(tmp_path, "prepared", _prepared(tmp_path))
    output = _invoke("evaluate", "--config", str(config), "--protocol", "loso",
                     "--set", 'evaluation.methods=["student", "kd"]', "--set", 'targets=["arousal"]')
    run = tmp_path / "runs" / "t"
    results = json.loads((run / "results.json").read_text())
    assert results["protocol"] == "loso"
    summary = results["summary"]["arousal"]
    assert set(summary) == {"student", "kd", "logreg-gsr", "logreg-eeg-bands", "logreg-eeg+gsr"} and summary["kd"]["accuracy"]["folds"] == 3
    assert (run / "curves.png").stat().st_size > 1000
    assert "| arousal | kd |" in (run / "results.md").read_text() and "Majority rate" in output
    # baselines, chance, training accuracy and paired comparisons sit in the same results
    assert {"logreg-gsr", "logreg-eeg-bands", "logreg-eeg+gsr"} <= set(results["reports"])
    assert "chance" in summary["kd"] and "train_accuracy" in summary["kd"]
    pairs = {(c["a"], c["b"]) for c in results["comparisons"]["arousal"]}
    assert ("kd", "student") in pairs and ("student", "logreg-gsr") in pairs
    assert "Wilcoxon p" in (run / "results.md").read_text()


def test_evaluate_report_writes_the_results_document(tmp_path: Path) -> None:
    config = _config(tmp_path, "prepared", _prepared(tmp_path))
    report = tmp_path / "docs" / "results.md"
    appendix = tmp_path / "kd-choice.md"
    appendix.write_text("## KD choice\n\nthe sweep's table\n")
    _invoke("evaluate", "--config", str(config), "--set", 'evaluation.methods=["teacher", "student"]',
            "--set", 'targets=["valence"]', "--set", "evaluation.max_folds=2", "--report", str(report),
            "--append", str(appendix))
    text = report.read_text()
    assert text.rstrip().endswith("## KD choice\n\nthe sweep's table") and " min CPU (all processes)" in text
    assert "## The exact command" in text and "Chance (test majority)" in text and "Training accuracy" in text
    # the teacher's EEG scaling as the prepared windows record it, not the config's default
    assert "EEG 0.5 s at 128 Hz, EEG scaled `subject_channel`" in text and "(θ α β γ per channel)" in text
    assert "| valence | teacher − student |" in text and "![training loss" in text
    assert (tmp_path / "docs" / "results-curves.png").stat().st_size > 1000
    assert text.count("| s0") >= 2  # the per-fold table


def test_folds_in_two_processes_give_the_same_results(tmp_path: Path) -> None:
    config = _config(tmp_path, "prepared", _prepared(tmp_path))
    summaries = []
    for workers in (1, 2):
        _invoke("evaluate", "--config", str(config), "--set", 'evaluation.methods=["student"]',
                "--set", 'targets=["arousal"]', "--set", f"evaluation.fold_workers={workers}",
                "--set", "threads=1", "--set", f'name="w{workers}"')
        summaries.append(json.loads((tmp_path / "runs" / f"w{workers}" / "results.json").read_text())["reports"])
    assert summaries[0] == summaries[1]


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    config = _config(tmp_path, "prepared", _prepared(tmp_path))
    result = runner.invoke(app, ["student", "--config", str(config), "--set", "student_optim.lrr=1"])
    assert result.exit_code == 2 and "unknown option 'lrr'" in result.output
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config(preset="fastest")
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("lr")


def test_paper_preset_has_the_authors_optimiser() -> None:
    paper = load_config(preset="paper")
    assert paper.teacher_optim.lr == 5e-5 and paper.student_optim.lr == 1e-6
    assert paper.teacher_optim.eps == 1e-7 and (paper.teacher_optim.beta1, paper.teacher_optim.beta2) == (0.9, 0.999)
    assert paper.distill.kl_weight == 0.1 and paper.distill.feature_weight == 1.0 and paper.distill.temperature == 1.0
    assert paper.teacher_optim.schedule == "constant" and paper.teacher_optim.class_weighting == "none"
    assert paper.distill.matching == "gsr_half" and paper.evaluation.validation_fraction == 0.0


def test_experiment_preset_is_the_sized_loso_recipe() -> None:
    experiment = load_config(preset="experiment")
    assert experiment.evaluation.protocol == "loso" and experiment.data.subjects >= 8 and experiment.data.trials >= 40
    assert experiment.threads == 1 and experiment.evaluation.fold_workers == 2
    assert experiment.evaluation.validation_fraction > 0 and experiment.teacher_optim.schedule == "cosine"
    assert experiment.distill.matching != "gsr_half"
    # measured choices (docs/recipe-choice.md): the last epoch of the cosine schedule (part 9, on a
    # development draw), the compact student, and a generator whose GSR ceiling leaves room
    # above the hand-made features
    assert experiment.teacher_optim.select_by == experiment.student_optim.select_by == "last"
    assert (experiment.student.heads, experiment.student.head_dim, experiment.student.blocks) == (2, 32, 1)
    # the pooled readout (part 10, development draw); the library default stays the authors' flatten
    assert experiment.student.readout == experiment.teacher.readout == "pool"
    assert load_config().student.readout == load_config(preset="paper").teacher.readout == "flatten"
    assert describe_options(experiment.student) == "2 heads × 32, 1 block, pooled readout"
    assert describe_options(load_config(preset="paper").teacher) == "8 heads × 64, 3 blocks"
    assert experiment.data.gsr_drive_noise < load_config().data.gsr_drive_noise
    # the teacher lr chosen by validation balanced accuracy over 8 folds (recipe-choice part 4)
    assert experiment.teacher_optim.lr == 2e-3 and load_config().teacher_optim.lr == 1e-3
    # model selection on 2 of the 7 training subjects (part 5), and the teacher's ~900 Adam steps
    # on the 5 left to fit (part 6: 5 subjects x 40 trials x 3 windows, batch 8)
    training_subjects = experiment.data.subjects - 1
    validation_subjects = round(experiment.evaluation.validation_fraction * training_subjects)
    assert validation_subjects == 2
    fit_windows = (training_subjects - validation_subjects) * experiment.data.trials * 3
    assert experiment.teacher_optim.epochs * -(-fit_windows // experiment.teacher_optim.batch_size) >= 900
    assert experiment.teacher_optim.plateau_restarts >= 1 and load_config().teacher_optim.plateau_restarts == 0


def test_torchrun_two_gloo_processes(tmp_path: Path) -> None:
    config = _config(tmp_path, "prepared", _prepared(tmp_path, subjects=4))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(port),
               "-m", "emotionkd.training.cli", "distill", "--feedback", "--config", str(config),
               "--set", 'targets=["arousal"]']
    # A session of its own, so a hung rendezvous can be killed with every worker it started.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    assert process.returncode == 0, stdout[-2000:] + stderr[-4000:]
    assert stdout.count("wrote ") == 1  # only rank 0 writes
    checkpoint = load_student_checkpoint(tmp_path / "runs" / "t" / "student.pt")
    assert checkpoint.contract.provenance.method == "kd+feedback"
    state = load_training_state(tmp_path / "runs" / "t" / "state" / "arousal-kd-feedback.state.pt")
    assert state["epoch"] == 2


def test_kd_sweep_compares_each_setting_with_the_student(tmp_path: Path) -> None:
    config = _config(tmp_path, "prepared", _prepared(tmp_path))
    _invoke("kd-sweep", "--config", str(config), "--set", 'targets=["arousal"]', "--set", "evaluation.max_folds=2",
            "--matchings", "sum_halves,relational", "--kl-weights", "0.5", "--temperatures", "2")
    results = json.loads((tmp_path / "runs" / "t" / "kd-sweep.json").read_text())
    rows = results["comparisons"]["arousal"]
    assert [r["a"] for r in rows] == ["matching=sum_halves, kl_weight=0.5, temperature=2.0",
                                      "matching=relational, kl_weight=0.5, temperature=2.0"]
    assert all(r["b"] == "student" and r["n"] == 2 for r in rows)
    result = runner.invoke(app, ["kd-sweep", "--config", str(config), "--matchings", "cosine"])
    assert result.exit_code == 2 and "matching" in result.output
