"""The live dashboard: bounded state, a loopback-only server, and the page in a real browser."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from headless_chromium import HeadlessChromium, find_chromium
from typer.testing import CliRunner

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag
from emotionkd.sdk.classifier import Prediction
from emotionkd.sdk.cli import app
from emotionkd.sdk.dashboard import DashboardHub, DashboardServer, parse_bind
from emotionkd.sdk.dashboard.hub import TRACE_RATE_HZ
from emotionkd.sdk.dashboard.server import MAX_CLIENTS, STATIC_FILES
from emotionkd.sdk.outputs import StreamStatus


def _block(first: int, n: int, rate: float = 128.0, flag: int = 0) -> SampleBlock:
    values = np.full(n, np.nan if flag & SampleFlag.GAP else 5.0)
    return SampleBlock(first, values, np.full(n, flag, dtype=np.uint8), rate)


def _prediction(end_s: float, ok: bool = True) -> Prediction:
    return Prediction(end_s - 4, end_s, 0.61 if ok else None, 0.3 if ok else None, "high" if ok else None,
                      "low" if ok else None, "ok" if ok else "electrode_off", "" if ok else "electrodes off",
                      0, 5.0)


@pytest.mark.parametrize(("bind", "allowed"), [("127.0.0.1:8765", True), ("localhost:0", True), ("[::1]:80", True),
                                               ("0.0.0.0:8765", False), ("192.168.1.4:80", False)])
def test_bind_is_loopback_unless_allowed(bind: str, allowed: bool) -> None:
    if allowed:
        assert parse_bind(bind)[1] == int(bind.rsplit(":", 1)[1])
    else:
        with pytest.raises(ConfigError, match="--allow-remote"):
            parse_bind(bind)
        assert parse_bind(bind, allow_remote=True)[0] == bind.rsplit(":", 1)[0]


@pytest.mark.parametrize("bind", ["8765", "host:", "127.0.0.1:99999", ":80"])
def test_a_malformed_bind_is_one_clear_error(bind: str) -> None:
    with pytest.raises(ConfigError, match="is not HOST:PORT"):
        parse_bind(bind)


def test_the_cli_refuses_a_public_bind_before_opening_anything(test_model: Path) -> None:
    result = CliRunner().invoke(app, ["stream", "--replay", "/no/such/file.csv", "--model", str(test_model),
                                      "--dashboard", "--bind", "0.0.0.0:8765"])
    assert result.exit_code == 2 and "--allow-remote" in result.stderr and "does not exist" not in result.stderr


def test_hub_decimates_marks_and_stays_bounded() -> None:
    hub = DashboardHub({"text": "card", "facts": {}}, history_s=10.0)
    status = StreamStatus(source="sim")
    hub.add_block(_block(0, 128), status)  # 1 s -> 8 points
    hub.add_block(_block(128, 64, flag=SampleFlag.ELECTRODE_OFF), status)
    hub.add_block(_block(192, 64, flag=SampleFlag.GAP), status)
    seq, snap = hub.snapshot()
    assert len(snap["trace"]["t"]) == 2 * TRACE_RATE_HZ and seq == 3
    assert snap["trace"]["flag"][8:] == ["electrode off"] * 4 + ["gap"] * 4
    assert snap["trace"]["us"][-1] is None  # a gap is no value, not NaN (JSON has none)
    for i in range(200):  # 200 s of signal into a 10 s history
        hub.add_block(_block(256 + i * 128, 128), status)
    assert len(hub.snapshot()[1]["trace"]["t"]) == 10 * TRACE_RATE_HZ


def test_hub_events_reach_a_waiting_reader_and_end() -> None:
    hub = DashboardHub({"text": "card", "facts": {}})
    seq, _ = hub.snapshot()
    threading.Timer(0.1, hub.write, (_prediction(4.0), StreamStatus())).start()
    events, closed = hub.events_after(seq, timeout_s=5.0)
    assert [e.name for e in events] == ["prediction"] and not closed
    assert json.loads(events[0].data)["prediction"]["arousal"] == 0.61
    hub.close()
    events, closed = hub.events_after(events[-1].seq, timeout_s=5.0)
    assert [e.name for e in events] == ["end"] and closed


def test_server_serves_the_page_snapshot_and_events_on_loopback() -> None:
    hub = DashboardHub({"text": "the card", "facts": {}})
    hub.write(_prediction(4.0), StreamStatus(source="sim"))
    with DashboardServer(hub, "127.0.0.1", 0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        for path in STATIC_FILES:
            with urllib.request.urlopen(server.url + path.lstrip("/"), timeout=5) as response:
                assert response.status == 200 and len(response.read()) > 100
        with urllib.request.urlopen(server.url + "snapshot", timeout=5) as response:
            snap = json.load(response)
        assert snap["model"]["text"] == "the card" and snap["predictions"][0]["quality_word"] == "ok"
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(server.url + "../pyproject.toml", timeout=5)
        rebound = urllib.request.Request(server.url + "snapshot", headers={"Host": "evil.example:80"})
        with pytest.raises(urllib.error.HTTPError, match="421"):
            urllib.request.urlopen(rebound, timeout=5)
        threading.Timer(0.2, hub.close).start()
        with urllib.request.urlopen(server.url + "events", timeout=10) as response:
            stream = response.read().decode()  # ends when the hub closes
        assert stream.startswith("event: snapshot\n") and "event: end" in stream


def test_server_holds_a_bounded_number_of_event_connections() -> None:
    hub = DashboardHub({"text": "", "facts": {}})
    with DashboardServer(hub, "127.0.0.1", 0) as server:
        held = [urllib.request.urlopen(server.url + "events", timeout=10) for _ in range(MAX_CLIENTS)]
        try:
            for r in held:
                r.readline()  # each connection is being served
            with pytest.raises(urllib.error.HTTPError, match="503"):
                urllib.request.urlopen(server.url + "events", timeout=10)
        finally:
            hub.close()
            for r in held:
                r.close()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="needs chromium (make system-deps)")
def test_the_page_in_headless_chromium_charts_a_simulated_stream(test_model: Path, tmp_path: Path) -> None:
    predictions = tmp_path / "predictions.jsonl"
    stream = subprocess.Popen(
        [sys.executable, "-m", "emotionkd.sdk.cli", "stream", "--model", str(test_model),
         "--source", "sim://?rate=128&speed=2&faults=electrode_off@6:4", "--duration", "120",
         "--format", "jsonl", "--output", str(predictions), "--dashboard", "--bind", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        # Ctrl-C as in a terminal: a test run started in the background (`pytest &`, nohup) has
        # SIGINT ignored, which a child inherits, and Python then installs no KeyboardInterrupt
        preexec_fn=_default_sigint)
    try:
        assert stream.stderr is not None
        url = None
        for line in stream.stderr:
            if match := re.match(r"dashboard: (http://127\.0\.0\.1:\d+/)", line):
                url = match.group(1)
                break
        assert url, "the stream never said where its dashboard is"
        with HeadlessChromium(tmp_path / "profile") as browser:
            browser.open(url)
            # past the electrode-off stretch (6-10 s), windows pass the gate again
            browser.wait_for("document.body && Number(document.body.dataset.predictions) >= 12 && "
                             "Number(document.body.dataset.flaggedPoints) > 0 && "
                             "document.getElementById('quality-now').textContent === 'ok'", timeout_s=60)
            shown = browser.evaluate(
                "({arousal: document.getElementById('arousal-now').textContent,"
                " label: document.getElementById('arousal-label').textContent,"
                " quality: document.getElementById('quality-now').textContent,"
                " points: Number(document.body.dataset.gsrPoints),"
                " flagged: Number(document.body.dataset.flaggedPoints),"
                " state: document.body.dataset.state,"
                " card: document.getElementById('model-card').textContent,"
                " canvases: document.querySelectorAll('.chart canvas').length})")
            shot = browser.screenshot(tmp_path / "dashboard.png")
        rows = [json.loads(line) for line in predictions.read_text().splitlines()]
        assert shown["state"] == "streaming" and shown["canvases"] == 2
        assert shown["points"] >= 8 * TRACE_RATE_HZ and shown["flagged"] >= 3 * TRACE_RATE_HZ
        assert "emotionkd model: test-linear.onnx" in shown["card"]
        # the arousal on the page is the stream's current window (found by its span), to 2 decimals
        span = re.search(r"window ([\d.]+)–([\d.]+) s", shown["label"])
        assert span and shown["quality"] == "ok", shown
        row = next(r for r in rows if r["end_s"] == float(span.group(2)))
        assert shown["arousal"] == f"{row['arousal']:.2f}"
        assert sum(r["quality"] == "electrode_off" for r in rows) >= 3  # and the page lived through them
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    finally:
        stream.send_signal(signal.SIGINT)
        try:
            stream.wait(timeout=20)
        except subprocess.TimeoutExpired:
            stream.kill()
            stream.wait(timeout=10)
    assert stream.returncode in (0, 130)  # Ctrl-C ends the stream as a person would
