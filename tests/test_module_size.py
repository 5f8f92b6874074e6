"""Small explicit modules on the edge: no module under sdk/ or firmware_bridge/ grows past
MAX_LINES unless it says why, in a line ``# size: <reason>`` within its first REASON_WITHIN lines
(the reviewer reads the reason before the code; a module with no reason to be long gets split)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EDGE = ("sdk", "firmware_bridge")
MAX_LINES = 400
REASON_WITHIN = 30
SIZE_REASON = re.compile(r"^# size: \S")


def oversized_without_reason(root: Path) -> list[str]:
    """Each ``path (N lines)`` under the edge packages of ``root`` that is over MAX_LINES and
    states no ``# size:`` reason in its first REASON_WITHIN lines."""
    problems = []
    for package in EDGE:
        for path in sorted((root / package).rglob("*.py")):
            lines = path.read_text(encoding="utf-8").splitlines()
            if len(lines) > MAX_LINES and not any(SIZE_REASON.match(line) for line in lines[:REASON_WITHIN]):
                problems.append(f"{path.relative_to(root)} ({len(lines)} lines)")
    return problems


def test_edge_modules_are_small_or_say_why() -> None:
    problems = oversized_without_reason(ROOT)
    assert problems == [], (
        f"over {MAX_LINES} lines: split them, or state the reason in a line '# size: <reason>' "
        f"within the first {REASON_WITHIN} lines: {problems}"
    )


def test_the_rule_sees_a_long_module_and_reads_its_reason(tmp_path: Path) -> None:
    (tmp_path / "sdk").mkdir()
    (tmp_path / "firmware_bridge" / "deep").mkdir(parents=True)
    body = "x = 1\n" * MAX_LINES
    (tmp_path / "sdk" / "at_limit.py").write_text(body)
    (tmp_path / "sdk" / "long.py").write_text('"""Doc."""\n' + body)
    (tmp_path / "sdk" / "empty_reason.py").write_text("# size:\n" + body)
    (tmp_path / "sdk" / "late_reason.py").write_text("\n" * REASON_WITHIN + "# size: one protocol\n" + body)
    (tmp_path / "sdk" / "reasoned.py").write_text('"""Doc."""\n# size: one protocol\n' + body)
    (tmp_path / "firmware_bridge" / "deep" / "long.py").write_text(body + "y = 2\n")
    assert oversized_without_reason(tmp_path) == [
        f"sdk/empty_reason.py ({MAX_LINES + 1} lines)",
        f"sdk/late_reason.py ({MAX_LINES + REASON_WITHIN + 1} lines)",
        f"sdk/long.py ({MAX_LINES + 1} lines)",
        f"firmware_bridge/deep/long.py ({MAX_LINES + 1} lines)",
    ]
