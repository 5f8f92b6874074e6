"""The dependency rule of DESIGN.md: exporters → training → sdk → firmware_bridge, one way only;
the edge (sdk, firmware_bridge) never imports torch.

The rule itself is import-linter's contracts in pyproject.toml ([tool.importlinter]), which
`make lint` runs; the tests here prove that those contracts catch a violation, that the tree keeps
them, and (by running it with torch blocked) that the SDK works without torch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["firmware_bridge", "sdk", "training", "exporters"]  # lowest first
LINT_IMPORTS = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                "sys.exit(lint_imports_command())", "--no-cache", "--no-logo"]


def _lint_imports(root: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LINT_IMPORTS, str(root / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_the_import_contracts() -> None:
    out = _lint_imports(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    assert layers == [f"emotionkd.{p}" for p in reversed(LAYERS)]


def _copy_sources(tmp_path: Path) -> Path:
    """The four packages' .py files under tmp_path/emotionkd/, with pyproject.toml beside them:
    a private tree to break on purpose (the real one is shared with running tests)."""
    for package in LAYERS:
        shutil.copytree(ROOT / package, tmp_path / "emotionkd" / package,
                        ignore=lambda d, names: [n for n in names if not (n.endswith(".py") or (Path(d) / n).is_dir())])
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(
    ("where", "source", "broken"),
    [
        ("sdk", "import torch\n", "emotionkd.sdk.probe -> torch"),
        ("firmware_bridge", "from scipy import signal\n", "emotionkd.firmware_bridge.probe -> scipy"),
        ("sdk", "import onnx.helper\n", "emotionkd.sdk.probe -> onnx"),
        ("sdk", "from emotionkd.training import cli\n", "emotionkd.sdk.probe -> emotionkd.training.cli"),
        ("training", "from emotionkd.exporters import onnx_export\n",
         "emotionkd.training.probe -> emotionkd.exporters.onnx_export"),
        ("firmware_bridge", "from emotionkd.sdk import contract\n",
         "emotionkd.firmware_bridge.probe -> emotionkd.sdk.contract"),
        ("sdk", "from sdk import contract\n", "emotionkd.sdk.probe -> sdk"),
    ],
)
def test_the_contracts_catch_a_violation(tmp_path: Path, where: str, source: str, broken: str) -> None:
    tree = _copy_sources(tmp_path)
    (tree / "emotionkd" / where / "probe.py").write_text(source)
    # the copy comes first on the path, ahead of the editable install's finder
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = _lint_imports(tree, env)
    assert out.returncode != 0 and broken in out.stdout, out.stdout + out.stderr


def test_a_decoder_that_does_io_breaks_the_sans_io_contract(tmp_path: Path) -> None:
    tree = _copy_sources(tmp_path)
    with (tree / "emotionkd" / "firmware_bridge" / "cobs.py").open("a") as f:
        f.write("\nimport threading\n")
    out = _lint_imports(tree, {**os.environ, "PYTHONPATH": str(tree)})
    assert out.returncode != 0 and "emotionkd.firmware_bridge.cobs -> threading" in out.stdout, out.stdout


def test_every_package_folder_is_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        "emotionkd." + ".".join(p.parent.relative_to(ROOT).parts)
        for layer in LAYERS
        for p in (ROOT / layer).rglob("__init__.py")
    }
    assert on_disk <= listed, f"add to pyproject [tool.setuptools] packages: {sorted(on_disk - listed)}"
    for name in listed:
        assert config["package-dir"].get(".".join(name.split(".")[:2])), name


def test_sdk_imports_and_preprocesses_with_torch_blocked() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        import numpy as np
        import emotionkd.sdk as sdk
        from emotionkd.firmware_bridge.gsr_synth import synthesize_gsr
        w = sdk.preprocess_recording(synthesize_gsr(30, seed=1), 128.0, hop_samples=128)
        assert len(w) == 27 and w.usable.all(), len(w)
        assert "torch" not in {m.split(".")[0] for m, v in sys.modules.items() if v is not None}
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("module", ["emotionkd.sdk", "emotionkd.firmware_bridge"])
def test_edge_import_does_not_load_heavy_modules(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in ('torch','scipy','onnxruntime','matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
