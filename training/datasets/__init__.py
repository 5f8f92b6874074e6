"""Training data: DEAP, MAHNOB-HCI and labelled GSR recordings → :class:`WindowedDataset`,
a synthetic generator writing the real file formats, and the preparation cache.

The one call a trainer needs::

    from emotionkd.training.datasets import DatasetConfig, load_dataset
    data = load_dataset("deap", "/data/DEAP", DatasetConfig(), cache_dir=".cache/datasets")
"""

from __future__ import annotations

from emotionkd.training.datasets.config import DatasetConfig, ratings_to_labels
from emotionkd.training.datasets.loading import KINDS, load_dataset
from emotionkd.training.datasets.synth_files import generate
from emotionkd.training.datasets.synthetic import SynthConfig

__all__ = ["KINDS", "DatasetConfig", "SynthConfig", "generate", "load_dataset", "ratings_to_labels"]
