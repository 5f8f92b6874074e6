"""The dependency rule of DESIGN.md, checked on the source: exporters → training → sdk →
firmware_bridge, one way only; the edge (sdk, firmware_bridge) never imports torch."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["firmware_bridge", "sdk", "training", "exporters"]  # lowest first
EDGE_FORBIDDEN = {"torch", "torchvision", "torchaudio", "tensorflow", "scipy", "sklearn", "matplotlib"}
#: an optional extra's one module may import it, inside a function (tests/sdk/test_plot.py checks
#: that importing the SDK and its CLI loads no matplotlib)
OPTIONAL_EXTRA_IMPORTS = {("sdk/session_plot.py", "matplotlib")}  # the `plot` extra


def _imports(path: Path, package: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module_parts = ["emotionkd", package, *path.relative_to(ROOT / package).with_suffix("").parts]
    if module_parts[-1] == "__init__":
        module_parts = module_parts[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_parts[: len(module_parts) - node.level + (path.name == "__init__.py")]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def _violations() -> list[str]:
    problems = []
    for rank, package in enumerate(LAYERS):
        allowed_internal = {f"emotionkd.{p}" for p in LAYERS[: rank + 1]}
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, name in _imports(path, package):
                where = f"{path.relative_to(ROOT)}:{line} imports {name}"
                if name.startswith("emotionkd.") or name == "emotionkd":
                    top = ".".join(name.split(".")[:2])
                    if top not in allowed_internal:
                        problems.append(f"{where} (layer {package} may import only {sorted(allowed_internal)})")
                elif (package in ("sdk", "firmware_bridge") and name.split(".")[0] in EDGE_FORBIDDEN
                      and (str(path.relative_to(ROOT)), name.split(".")[0]) not in OPTIONAL_EXTRA_IMPORTS):
                    problems.append(f"{where} (the edge runtime must not depend on it)")
                elif name in LAYERS or name.split(".")[0] in LAYERS:
                    problems.append(f"{where} (import it as emotionkd.{name})")
    return problems


def test_layers_import_one_way_only() -> None:
    assert _violations() == []


def test_the_checker_sees_a_violation(tmp_path, monkeypatch) -> None:
    bad = ROOT / "sdk" / "_layer_probe_tmp.py"
    bad.write_text("import torch\nfrom emotionkd.training import cli\n")
    try:
        problems = _violations()
    finally:
        bad.unlink()
    assert any("import torch" in p or "imports torch" in p for p in problems)
    assert any("imports emotionkd.training" in p for p in problems)


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
