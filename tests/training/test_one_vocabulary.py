"""Training speaks the model contract's vocabulary (sdk/contract.py): targets, label rules, data kinds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.sdk.contract import DATA_KINDS, LABEL_RULE_WORDS, TARGETS
from emotionkd.training.config import load_config
from emotionkd.training.datasets.config import DatasetConfig
from emotionkd.training.windowed import TARGETS as LABEL_COLUMNS
from emotionkd.training.windowed import WindowedDataset


def test_a_prepared_file_from_before_one_data_kind_vocabulary_reads_as_real(tmp_path: Path) -> None:
    data = WindowedDataset(gsr=np.zeros((1, 512), np.float32), eeg=None, labels=np.zeros((1, 2), np.int64),
                           ratings=np.zeros((1, 2), np.float32), subject=np.zeros(1, np.int64),
                           trial=np.zeros(1, np.int64), start_s=np.zeros(1, np.float32),
                           meta={"data_kind": "recorded", "dataset": "recordings"})
    data.save_npz(tmp_path / "old.npz")
    meta = WindowedDataset.load_npz(tmp_path / "old.npz").meta
    assert meta == {"data_kind": "real", "dataset": "recordings"} and meta["data_kind"] in DATA_KINDS


def test_training_checks_targets_and_label_rules_against_the_contract() -> None:
    assert LABEL_COLUMNS is TARGETS
    assert DatasetConfig(label_rule="ge").label_meta()["description"].startswith(f"rating {LABEL_RULE_WORDS['ge']} ")
    with pytest.raises(ConfigError, match=r"label_rule must be one of \['gt', 'ge'\]"):
        DatasetConfig(label_rule=">=")
    with pytest.raises(ConfigError, match=r"targets must be a non-empty subset of \('arousal', 'valence'\)"):
        load_config(overrides={"targets": ["stress"]})
