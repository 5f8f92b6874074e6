"""Wearers sharded across two gateway processes through a local mosquitto broker (127.0.0.1
only, bounded traffic): each wearer is served by exactly one shard and gets the predictions an
EmotionClassifier fed the same blocks gives."""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from onnx_test_models import build_test_model

from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, GsrSynthesizer
from emotionkd.firmware_bridge.samples import SampleBlock
from emotionkd.sdk.classifier import EmotionClassifier
from emotionkd.sdk.preprocessing import DEFAULT_PREPROCESSING
from emotionkd.sdk.sharding import Broker, decode_block, encode_block, samples_topic, shard_of

RATE_HZ = 16.0


def test_blocks_round_trip_and_bad_payloads_are_clear() -> None:
    values = np.array([1.5, np.nan, 2.25])
    block = SampleBlock(42, values, np.array([0, 1, 0], np.uint8), 16.0)
    back = decode_block(encode_block(block))
    assert back.first_index == 42 and back.rate_hz == 16.0 and np.array_equal(back.flags, block.flags)
    assert np.array_equal(back.conductance_us, values, equal_nan=True)
    with pytest.raises(DataError, match="shorter than"):
        decode_block(b"abc")
    with pytest.raises(DataError, match="announces"):
        decode_block(encode_block(block)[:-1])
    with pytest.raises(DataError, match="announces"):  # a header claiming 2**32-1 samples allocates nothing
        decode_block(encode_block(block)[:16] + b"\xff\xff\xff\xff" + b"\x00" * 15)


def test_shards_are_stable_and_spread() -> None:
    ids = [f"wearer-{k}" for k in range(2000)]
    counts = np.bincount([shard_of(i, 4) for i in ids], minlength=4)
    assert counts.min() > 400  # roughly even
    assert shard_of("bed-3", 7) == shard_of("bed-3", 7) == 4178349060 % 7  # CRC-32, not Python's salted hash
    assert samples_topic("bed-3", 7) == f"emotionkd/gsr/{shard_of('bed-3', 7)}/bed-3"
    with pytest.raises(ConfigError, match="without '/'"):
        samples_topic("a/b", 2)
    with pytest.raises(ConfigError, match="HOST:PORT"):
        Broker.parse("localhost")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@pytest.mark.skipif(shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(),
                    reason="mosquitto is not installed (make system-deps)")
def test_two_gateway_processes_share_the_wearers(tmp_path: Path) -> None:
    mqtt = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (the mqtt extra)")
    model = build_test_model(tmp_path / "v2.onnx", preprocessing=DEFAULT_PREPROCESSING)
    port = _free_port()
    (tmp_path / "mosquitto.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(tmp_path / "mosquitto.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        _wait_port(port)
        received: dict[str, list[dict]] = {}
        online: set[str] = set()
        lock = threading.Lock()

        def on_message(client, userdata, message) -> None:  # noqa: ANN001
            with lock:
                if message.topic.startswith("emotionkd/status/"):
                    if message.payload == b"online":
                        online.add(message.topic)
                else:
                    received.setdefault(message.topic.rsplit("/", 1)[-1], []).append(json.loads(message.payload))

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-publisher")
        client.on_message = on_message
        client.connect("127.0.0.1", port)
        client.subscribe([("emotionkd/pred/#", 0), ("emotionkd/status/#", 1)])
        client.loop_start()
        workers = [subprocess.Popen([sys.executable, "-m", "emotionkd.sdk.sharding", "--broker", f"127.0.0.1:{port}",
                                     "--shard", str(k), "--shards", "2", "--model", str(model), "--tick-s", "0.2"])
                   for k in range(2)]
        deadline = time.monotonic() + 60
        while len(online) < 2 and time.monotonic() < deadline:
            assert all(w.poll() is None for w in workers), "a gateway worker died"
            time.sleep(0.05)
        assert len(online) == 2

        wearers = [f"wearer-{k}" for k in range(6)]
        assert {shard_of(w, 2) for w in wearers} == {0, 1}  # both processes get work
        expected = {}
        for k, wearer in enumerate(wearers):
            x = GsrSynthesizer(GsrSynthConfig(rate_hz=RATE_HZ), seed=k).read(int(45 * RATE_HZ))
            blocks = [SampleBlock(i, x[i:i + 16], np.zeros(16, np.uint8), RATE_HZ) for i in range(0, x.size, 16)]
            if k == 1:
                del blocks[10]  # a lost message: a gap, not a stitched window
            clf = EmotionClassifier(model, hop_s=1.0)
            expected[wearer] = [p for b in blocks for p in clf.push(b)]
            for b in blocks:
                client.publish(samples_topic(wearer, 2), encode_block(b), qos=0)
        total = sum(len(v) for v in expected.values())
        while time.monotonic() < deadline:
            with lock:
                if sum(len(v) for v in received.values()) >= total:
                    break
            time.sleep(0.1)
        client.loop_stop()
        client.disconnect()
        for wearer in wearers:
            got = received.get(wearer, [])
            assert {g["shard"] for g in got} == {shard_of(wearer, 2)}  # one process per wearer
            assert len(got) == len(expected[wearer])
            for g, e in zip(got, expected[wearer], strict=True):
                assert (g["start_s"], g["quality"]) == (e.start_s, e.quality)
                assert (g["arousal"] is None) == (e.arousal is None)
                if e.arousal is not None:
                    assert math.isclose(g["arousal"], e.arousal, abs_tol=1e-6)
        assert any(g["quality"] == "gap" for g in received["wearer-1"])
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            assert w.wait(timeout=20) == 0
        broker.terminate()
        broker.wait(timeout=10)
