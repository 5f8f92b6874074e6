"""One entry point: ``load_dataset(kind, root, config)`` → :class:`WindowedDataset`.

Finds the input files, looks the result up in the cache, otherwise prepares subjects in
parallel (with a progress bar) and stores the result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.sdk.preprocessing import PREPROCESSING_NAME
from emotionkd.training.datasets import cache
from emotionkd.training.datasets.channels import EEG_28
from emotionkd.training.datasets.config import DatasetConfig
from emotionkd.training.datasets.synth_files import read_manifest, run_jobs
from emotionkd.training.datasets.trials import SubjectWindows, assemble
from emotionkd.training.windowed import TARGETS, WindowedDataset

logger = logging.getLogger(__name__)

KINDS: Final = ("deap", "mahnob", "recordings")
#: below this much input, worker processes cost more to start than they save
PARALLEL_MIN_BYTES: Final = 64 * 1024 * 1024


@dataclass(frozen=True)
class Plan:
    """What to prepare: one job per unit (subject file, session folder, recording)."""

    inputs: list[Path]  # every file the result depends on (for the cache key)
    jobs: list[tuple[Callable[..., SubjectWindows], tuple[Any, ...]]]
    meta: dict[str, Any]
    has_eeg: bool


def _plan_deap(root: Path, config: DatasetConfig, options: dict[str, Any]) -> Plan:
    from emotionkd.training.datasets.deap import (
        deap_meta,
        find_deap_files,
        prepare_deap_subject,
        subject_id,
    )

    files = find_deap_files(root, options.get("file_format", "auto"))
    if config.subjects is not None:
        wanted = set(config.subjects)
        files = [f for f in files if subject_id(f) in wanted]
        missing = wanted - {subject_id(f) for f in files}
        if missing:
            raise DataError(f"{root}: subjects {sorted(missing)} not found", path=str(root))
    return Plan(files, [(prepare_deap_subject, (f, config)) for f in files], deap_meta(files), True)


_PLANNERS: dict[str, Callable[[Path, DatasetConfig, dict[str, Any]], Plan]] = {"deap": _plan_deap}


def register_kind(kind: str, planner: Callable[[Path, DatasetConfig, dict[str, Any]], Plan]) -> None:
    """Add a dataset kind (used by this package's MAHNOB-HCI and recordings modules)."""
    _PLANNERS[kind] = planner


def load_dataset(
    kind: str,
    root: str | Path,
    config: DatasetConfig | None = None,
    cache_dir: str | Path | None = None,
    *,
    workers: int = 2,
    progress: bool = True,
    content_hash: bool = False,
    **options: Any,
) -> WindowedDataset:
    """Prepare (or fetch from the cache) a windowed dataset.

    Args:
        kind: ``deap``, ``mahnob`` or ``recordings`` (labelled GSR CSV files / Empatica E4 folders).
        root: the dataset folder (see README "Training data").
        config: windowing, label and normalisation options.
        cache_dir: where prepared datasets are cached (None: no cache).
        workers: processes preparing subjects in parallel (inputs under 64 MiB: one).
        progress: show a progress bar on a terminal (stderr).
        content_hash: key the cache on file contents instead of size + modification time.
        options: kind-specific: ``file_format`` (deap: auto/python/matlab), ``gsr_unit``
            (recordings CSV without a unit in the header).

    Returns:
        The windows; ``meta`` records the dataset, config, preprocessing, label rule, EEG
        normalisation, data kind (synthetic/real), cache key and code version.

    Raises:
        DataError: missing/invalid files (named); ConfigError: invalid options.
    """
    config = config or DatasetConfig()
    if kind not in KINDS:
        raise ConfigError(f"unknown dataset kind {kind!r}; use one of {', '.join(KINDS)}")
    if kind not in _PLANNERS:  # modules register themselves on import
        import importlib

        importlib.import_module(f"emotionkd.training.datasets.{kind}")
    root = Path(root)
    plan = _PLANNERS[kind](root, config, options)
    key_config = {"dataset": config.to_dict(), "options": options}
    key = cache.cache_key(kind, plan.inputs, key_config, content_hash=content_hash)
    entry = cache.cache_path(cache_dir, kind, key) if cache_dir is not None else None
    if entry is not None:
        cached = cache.load_cached(entry)
        if cached is not None:
            logger.info("prepared %s dataset from cache %s", kind, entry)
            return cached
    started = time.perf_counter()
    if sum(p.stat().st_size for p in plan.inputs) < PARALLEL_MIN_BYTES:
        workers = 1
    parts = _run(plan, workers, progress, kind)
    manifest = read_manifest(root)
    meta = {
        **plan.meta,
        "data_kind": "synthetic" if manifest else "real",  # the contract's DATA_KINDS
        "synthetic": manifest,
        "source_root": str(root.resolve()),
        "config": config.to_dict(),
        "preprocessing": {"name": PREPROCESSING_NAME, "version": config.preprocessing.version,
                          "params": config.preprocessing.to_params()},
        "rate_hz": config.preprocessing.rate_hz,
        "window_samples": config.preprocessing.window_samples,
        "hop_samples": config.hop,
        "eeg_window_samples": config.eeg_window_samples if plan.has_eeg else None,
        "eeg_rate_hz": config.eeg_rate_hz if plan.has_eeg else None,
        "label_rule": config.label_meta(),
        "eeg_normalisation": {"method": config.eeg_normalisation, "floor_uv": config.eeg_zscore_floor_uv}
        if plan.has_eeg else None,
        "targets": list(TARGETS),  # narrowed below to the labelled ones
        "cache_key": key,
        "code_version": cache.code_version(),
    }
    if plan.has_eeg:
        meta.setdefault("eeg_channels", list(EEG_28))
    dataset = assemble(parts, has_eeg=plan.has_eeg, window_samples=config.preprocessing.window_samples,
                       eeg_channels=len(EEG_28), meta=meta, eeg_window_samples=config.eeg_window_samples)
    # a target no window is labelled for (e.g. valence of stress labels) is absent, not "low"
    labelled = [t for i, t in enumerate(TARGETS) if len(dataset) and (dataset.labels[:, i] >= 0).all()]
    dataset.meta["targets"] = labelled
    if len(dataset) == 0:
        raise DataError(f"{root}: no usable windows (all {dataset.meta['windows_dropped']} windows had gaps "
                        "or invalid samples, or the recordings are shorter than one window)", path=str(root))
    logger.info("prepared %d %s windows in %.1f s", len(dataset), kind, time.perf_counter() - started)
    if entry is not None:
        cache.store(dataset, entry)
    return dataset


def _run(plan: Plan, workers: int, progress: bool, kind: str) -> list[SubjectWindows]:
    from tqdm.auto import tqdm

    # disable=None: a bar on a terminal only, so logs and test output stay clean
    with tqdm(total=len(plan.jobs), desc=f"preparing {kind}", unit="subject",
              disable=None if progress else True) as bar:
        return run_jobs(plan.jobs, workers, bar.update)


__all__ = ["KINDS", "load_dataset", "register_kind"]
