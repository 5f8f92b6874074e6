"""Fine-tuning on real wrist EDA (the Stress-Predict excerpt): `--from bundled`, arousal-only
labels keep the valence head and its provenance, per-head provenance with licence, an
arousal-only model exports and the SDK serves it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from emotionkd.sdk.preprocessing import DEFAULT_PREPROCESSING
from emotionkd.training import finetune as finetune_module
from emotionkd.training.checkpoint import load_student_checkpoint
from emotionkd.training.cli import app
from emotionkd.training.errors import CheckpointError
from emotionkd.training.experiment import default_threads

from .conftest import make_dataset
from .test_train_cli import TINY_MODEL

SOURCE = "binary stress label: stress task = high arousal"


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def _config(tmp_path: Path, source: str, path: Path) -> Path:
    text = (f'name = "base"\noutput_dir = "{tmp_path / "runs"}"\nprogress = false\n'
            f'[data]\nsource = "{source}"\npath = "{path}"\ncache_dir = ""\nworkers = 1\n'
            f'label_source = "{SOURCE}"\n[evaluation]\nholdout_subjects = 0\n'
            + TINY_MODEL.format(w=512, c=3, p=128))
    config = tmp_path / f"{source}.toml"
    config.write_text(text)
    return config


@pytest.fixture
def base_student(tmp_path: Path) -> Path:
    """A tiny two-head student trained on synthetic windows with the default (v2) preprocessing."""
    data = make_dataset(subjects=3, trials=4, windows=3, samples=512)
    data.meta.update({"dataset": "synthetic-deap", "data_kind": "synthetic", "hop_samples": 512,
                      "preprocessing": {"name": "ekd-gsr", "version": 2, "params": DEFAULT_PREPROCESSING.to_params()},
                      "label_rule": {"threshold": 5.0, "rule": "gt"}})
    data.save_npz(tmp_path / "synthetic.npz")
    _invoke("student", "--config", str(_config(tmp_path, "prepared", tmp_path / "synthetic.npz")))
    return tmp_path / "runs" / "base" / "student.pt"


def test_finetune_from_bundled_trains_only_the_labelled_head(tmp_path: Path, base_student: Path, excerpt: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    bundled = tmp_path / "pretrained" / "bundled-student.pt"
    monkeypatch.setattr(finetune_module, "bundled_checkpoint_path", lambda: bundled)
    with pytest.raises(CheckpointError, match="no bundled student checkpoint"):
        finetune_module.resolve_checkpoint("bundled")
    assert "MB" in _invoke("bundle-checkpoint", str(base_student), "--out", str(bundled))
    shipped = load_student_checkpoint(bundled)  # float16 weights, no train config: half the size
    assert {v.dtype for sd in shipped.state_dicts.values() for v in sd.values() if v.is_floating_point()} == {torch.float16}
    assert bundled.stat().st_size < base_student.stat().st_size and "teacher_optim" not in shipped.train_config
    real = excerpt
    output = _invoke("finetune", "--from", "bundled", "--config", str(_config(tmp_path, "recordings", real)),
                     "--holdout", "3", "--set", "name=ft", "--set", "student_optim.lr=1e-3")
    assert "arousal: fine-tuned, real data" in output and "valence: kept, synthetic data" in output
    tuned = load_student_checkpoint(tmp_path / "runs" / "ft" / "student-finetuned.pt")
    base = load_student_checkpoint(bundled)
    c = tuned.contract
    assert c.targets == ("arousal", "valence") and c.contract_version == 2
    arousal, valence = c.origin("arousal"), c.origin("valence")
    assert (arousal.data_kind, arousal.labels, arousal.subjects) == ("real", SOURCE, 1)
    assert arousal.licence == "MIT License, Copyright (c) 2022 Talha Iqbal"
    assert arousal.dataset == "stress (recordings)" and arousal.protocol == "holdout-subjects"
    assert 0.0 <= arousal.metrics["accuracy"] <= 1.0
    assert (valence.data_kind, valence.method, valence.labels) == ("synthetic", "student", "")
    assert c.real_targets() == ("arousal",) and not c.is_synthetic
    assert "arousal head met real skin" in (c.provenance_note() or "")
    for key, value in tuned.state_dicts["valence"].items():  # kept as shipped
        torch.testing.assert_close(value, base.state_dicts["valence"][key].to(value.dtype))
    changed = [k for k, v in tuned.state_dicts["arousal"].items()
               if v.is_floating_point() and not torch.allclose(v, base.state_dicts["arousal"][k].float())]
    assert changed
    # the exported model's card and the stream's start-up note say which head met real skin
    from emotionkd.exporters.onnx_export import export_students
    from emotionkd.sdk.classifier import EmotionClassifier
    from emotionkd.sdk.cli import _note_synthetic
    from emotionkd.sdk.model_card import read_model_info, render_model_card

    export_students(tuned.build_all(), c, tmp_path / "tuned.onnx")
    card = render_model_card(read_model_info(tmp_path / "tuned.onnx"))
    assert "Head 'arousal': met REAL skin" in card and "Head 'valence': SYNTHETIC data only" in card
    assert "MIT License, Copyright (c) 2022 Talha Iqbal" in card and SOURCE in card
    assert "contract v2" in card
    capsys.readouterr()
    _note_synthetic(EmotionClassifier(model=tmp_path / "tuned.onnx"))
    note = capsys.readouterr().err
    assert "arousal head met real skin (stress (recordings)" in note and "valence head trained on synthetic" in note


def test_an_arousal_only_model_exports_and_the_sdk_serves_its_one_head(tmp_path: Path, excerpt: Path) -> None:
    from emotionkd.exporters.onnx_export import export_students
    from emotionkd.sdk.classifier import EmotionClassifier
    from emotionkd.sdk.model_card import read_model_info, render_model_card

    real = excerpt
    _invoke("student", "--config", str(_config(tmp_path, "recordings", real)), "--set", 'targets=["arousal"]')
    checkpoint = load_student_checkpoint(tmp_path / "runs" / "base" / "student.pt")
    assert checkpoint.contract.targets == ("arousal",) and checkpoint.contract.provenance.data_kind == "real"
    onnx_path = tmp_path / "arousal.onnx"
    export_students(checkpoint.build_all(), checkpoint.contract, onnx_path)
    eda = np.array([float(v) for v in (real / "S02" / "EDA.csv").read_text().split()[2:]])
    predictions = EmotionClassifier(model=onnx_path).predict(eda[:400], 4.0)
    ok = [p for p in predictions if p.ok]
    assert ok and all(p.arousal is not None and p.valence is None and p.valence_label is None for p in ok)
    card = render_model_card(read_model_info(onnx_path))
    assert "real (recordings)" in card and "SYNTHETIC" not in card


def test_default_threads_is_one_on_a_two_core_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
    assert default_threads(0) == 1 and default_threads(3) == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(16)), raising=False)
    assert default_threads(0) == 8 and default_threads(0, local_processes=4) == 2


def test_finetune_explains_data_without_the_requested_heads(tmp_path: Path, base_student: Path,
                                                            excerpt: Path) -> None:
    real = excerpt
    result = CliRunner().invoke(app, ["finetune", "--checkpoint", str(base_student), "--config",
                                      str(_config(tmp_path, "recordings", real)), "--set", 'targets=["valence"]',
                                      "--set", "name=none"])
    assert result.exit_code != 0 and "the data labels ['arousal']" in result.output
    saved = json.loads((tmp_path / "runs" / "none" / "config.json").read_text())
    assert saved["data"]["label_source"] == SOURCE
