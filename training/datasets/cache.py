"""The prepared-dataset cache: ``.npz`` files keyed by what went into them.

The key is a SHA-256 over (a) every input file's path, size and modification time (or its
content, with ``content_hash=True``), (b) the :class:`DatasetConfig`, and (c) the *code*: the
source bytes of the modules that read, preprocess and window the data, and of every emotionkd
module they import, plus the preprocessing version. Changing a file, an option or the code
gives a new key, so a stale cache is never used silently; old entries are simply not read again.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import logging
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any, Final

from emotionkd.firmware_bridge.errors import DataError
from emotionkd.sdk.preprocessing import PREPROCESSING_NAME, PREPROCESSING_VERSION
from emotionkd.training.atomic_io import atomic_path
from emotionkd.training.windowed import WindowedDataset

logger = logging.getLogger(__name__)

#: bump when the cache layout or the meaning of the prepared arrays changes
CACHE_FORMAT_VERSION: Final = 1

#: the modules that read, preprocess and window the data (and write its meta); every emotionkd
#: module they import counts too (:func:`code_modules`), so a module split off one of them later
#: (say, the normalisations out of the preprocessing) still invalidates the cache
_CODE_ROOTS: Final = (
    "emotionkd.firmware_bridge.units",
    "emotionkd.sdk.preprocessing",
    "emotionkd.sdk.resampling",
    "emotionkd.sdk.windowing",
    "emotionkd.training.windowed",
    "emotionkd.training.datasets.config",
    "emotionkd.training.datasets.channels",
    "emotionkd.training.datasets.trials",
    "emotionkd.training.datasets.safe_pickle",
    "emotionkd.training.datasets.deap",
    "emotionkd.training.datasets.mahnob",
    "emotionkd.training.datasets.recordings",
    "emotionkd.training.datasets.loading",
)


def _source_path(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:  # pragma: no cover - every name comes from our own imports
        raise DataError(f"cannot find the source of {name} to key the dataset cache")
    return Path(spec.origin)


def _imported_modules(name: str) -> set[str]:
    """The emotionkd modules ``name`` imports anywhere in its source (also inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(_source_path(name).read_bytes())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("emotionkd.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("emotionkd."):
            package = importlib.util.find_spec(node.module or "")
            is_package = package is not None and package.submodule_search_locations is not None
            for alias in node.names:  # `from package import module` names a module
                module = f"{node.module}.{alias.name}"
                found.add(module if is_package and importlib.util.find_spec(module) is not None else node.module or "")
    return found


@functools.cache
def code_modules() -> tuple[str, ...]:
    """The roots above and every emotionkd module they import, transitively (sorted; found once
    per process, while the sources are hashed on every call)."""
    seen: set[str] = set()
    todo = list(_CODE_ROOTS)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _imported_modules(name)
    return tuple(sorted(seen))


def code_version() -> str:
    """A short hash of the data-preparation code (module sources + versions)."""
    digest = hashlib.sha256()
    try:
        digest.update(dist_version("emotionkd").encode())
    except PackageNotFoundError:  # running from a source tree
        digest.update(b"source")
    digest.update(f"{PREPROCESSING_NAME}/{PREPROCESSING_VERSION}/{CACHE_FORMAT_VERSION}".encode())
    for name in code_modules():
        digest.update(name.encode())
        digest.update(_source_path(name).read_bytes())
    return digest.hexdigest()[:16]


def file_fingerprint(path: Path, content_hash: bool) -> dict[str, Any]:
    try:
        stat = path.stat()
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found", path=str(path)) from exc
    entry: dict[str, Any] = {"path": str(path.resolve()), "size": stat.st_size}
    if content_hash:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
        entry["sha256"] = digest.hexdigest()
    else:
        entry["mtime_ns"] = stat.st_mtime_ns
    return entry


def cache_key(kind: str, files: Iterable[Path], config: dict[str, Any], *, content_hash: bool = False) -> str:
    """The cache key of preparing ``files`` with ``config`` by the current code."""
    description = {
        "kind": kind,
        "code": code_version(),
        "config": config,
        "files": [file_fingerprint(Path(p), content_hash) for p in sorted(files, key=str)],
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:24]


def cache_path(cache_dir: str | Path, kind: str, key: str) -> Path:
    return Path(cache_dir) / f"{kind}-{key}.npz"


def load_cached(path: Path) -> WindowedDataset | None:
    """The cached dataset, or None when absent or unreadable (then it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        return WindowedDataset.load_npz(path)
    except DataError as exc:
        logger.warning("ignoring unreadable cache entry %s (%s); rebuilding", path, exc)
        return None


def store(dataset: WindowedDataset, path: Path) -> None:
    """Write atomically (a crash never leaves a half-written entry under the final name)."""
    with atomic_path(path) as tmp:
        dataset.save_npz(tmp)


__all__ = ["CACHE_FORMAT_VERSION", "cache_key", "cache_path", "code_version", "load_cached", "store"]
