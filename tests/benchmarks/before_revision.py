"""An earlier revision's SDK beside this checkout's, for benchmarks that compare the two on the
same machine in the same minutes (``live_push.py``, ``startup_budget.py``).

``sdk`` and ``firmware_bridge`` of the revision are taken with ``git archive`` into a folder as
the package ``emotionkd_before`` (imports renamed), so both import side by side: in this process
(the folder is put on ``sys.path``) or in a child process (``PYTHONPATH=<folder>``).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "emotionkd_before"


def before_package(revision: str, into: Path) -> str:
    """``sdk`` and ``firmware_bridge`` of ``revision`` as the package ``emotionkd_before`` under
    ``into`` (which is also put on this process's ``sys.path``); returns the package's name."""
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "sdk", "firmware_bridge"],
                         capture_output=True, check=True).stdout
    package = into / PACKAGE
    with tarfile.open(fileobj=BytesIO(tar)) as archive:
        archive.extractall(package, filter="data")
    (package / "__init__.py").write_text("")
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"\bemotionkd\.(sdk|firmware_bridge)\b", rf"{PACKAGE}.\1", text), encoding="utf-8")
    sys.path.insert(0, str(into))
    return PACKAGE
