"""The edge promise: the SDK streams with torch unimportable (DESIGN.md)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

CODE = textwrap.dedent(
    """
    import sys
    for name in ("torch", "scipy", "matplotlib"):
        sys.modules[name] = None  # any import of them now raises ImportError
    from emotionkd.sdk import EmotionClassifier
    clf = EmotionClassifier(sys.argv[1])
    predictions = list(clf.stream("sim://?speed=0&duration=10&faults=gap@3:1"))
    assert len(predictions) == 7, len(predictions)
    assert {p.quality for p in predictions} == {"ok", "gap"}, predictions
    from emotionkd.sdk.cli import main
    sys.argv = ["emotionkd-sdk", "stream", "--simulate", "--speed", "0", "--duration", "6",
                "--format", "jsonl", "--model", sys.argv[1]]
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, exc.code
    loaded = {m.split(".")[0] for m, v in sys.modules.items() if v is not None}
    assert not loaded & {"torch", "scipy", "matplotlib"}
    print("streamed")
    """
)


def test_sdk_streams_with_torch_blocked(test_model: Path) -> None:
    out = subprocess.run([sys.executable, "-c", CODE, str(test_model)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("streamed")
