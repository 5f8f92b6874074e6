"""student.pt: the shared format, weights-only loading and the errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emotionkd.sdk.contract import ModelContract, Provenance
from emotionkd.training.checkpoint import (
    StudentCheckpoint,
    load_student_checkpoint,
    load_training_state,
    save_student_checkpoint,
    save_training_state,
)
from emotionkd.training.errors import CheckpointError
from emotionkd.training.models import EmotionNetStudent, StudentConfig

TINY = StudentConfig(window_samples=64, kernel_samples=8, stride_samples=4, filters=8, heads=2,
                     head_dim=4, ff_dim=8, hidden=8, max_positions=16)


def _checkpoint() -> tuple[StudentCheckpoint, dict[str, EmotionNetStudent]]:
    torch.manual_seed(0)
    students = {t: EmotionNetStudent(TINY).eval() for t in ("arousal", "valence")}
    contract = ModelContract(provenance=Provenance(method="kd+feedback", protocol="loso"),
                             metrics={"arousal": {"accuracy": 0.6}})
    ckpt = StudentCheckpoint(contract=contract, student_config=TINY,
                             state_dicts={t: s.state_dict() for t, s in students.items()},
                             metrics={"arousal": {"accuracy": 0.6}}, train_config={"seed": 1})
    return ckpt, students


def test_round_trip_is_the_shared_format_and_weights_only(tmp_path: Path) -> None:
    ckpt, students = _checkpoint()
    path = save_student_checkpoint(ckpt, tmp_path / "student.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "emotionkd-student" and raw["format_version"] == 1
    assert set(raw) == {"format", "format_version", "contract", "student_config", "state_dicts",
                        "metrics", "train_config"}
    assert set(raw["state_dicts"]) == {"arousal", "valence"}
    loaded = load_student_checkpoint(path)
    assert loaded.contract == ckpt.contract and loaded.student_config == TINY
    x = torch.randn(3, 64)
    for target, model in loaded.build_all().items():
        torch.testing.assert_close(model(x), students[target](x))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_student_checkpoint(tmp_path / "nope.pt")


def test_not_a_checkpoint(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_student_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not an emotionkd-student"):
        load_student_checkpoint(other)


def test_newer_format_version(tmp_path: Path) -> None:
    ckpt, _ = _checkpoint()
    data = ckpt.to_dict()
    data["format_version"] = 99
    torch.save(data, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load_student_checkpoint(tmp_path / "new.pt")


class _Payload:
    """A pickle that runs code when unpickled: it would create a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (str(self.marker), "w"))


def test_code_running_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "emotionkd-student", "format_version": 1, "x": _Payload(marker)}, evil)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="not a safe") as info:
        load_student_checkpoint(evil)
    assert not marker.exists()
    # torch's own message suggests an unsafe load; a user must never be told that
    assert "weights_only" not in str(info.value) and "likely succeed" not in str(info.value)


def test_wrong_weights_for_config(tmp_path: Path) -> None:
    ckpt, _ = _checkpoint()
    data = ckpt.to_dict()
    data["student_config"]["hidden"] = 16
    torch.save(data, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_student_checkpoint(tmp_path / "bad.pt").build("arousal")


def test_training_state_round_trip(tmp_path: Path) -> None:
    model = EmotionNetStudent(TINY)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 64)).sum().backward()
    optimizer.step()
    save_training_state({"epoch": 3, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "history": [{"loss": 0.5}]}, tmp_path / "state.pt")
    state = load_training_state(tmp_path / "state.pt")
    assert state["epoch"] == 3 and state["history"] == [{"loss": 0.5}]
    fresh = torch.optim.Adam(EmotionNetStudent(TINY).parameters())
    fresh.load_state_dict(state["optimizer"])
