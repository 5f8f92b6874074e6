"""More wearers than one hub serves: streams sharded across gateway processes through MQTT.

Why MQTT (an existing broker such as mosquitto) and not home-made networking or LSL:

* a gateway process holds **one** TCP connection to the broker whatever the number of wearers;
  the broker does the fan-in. LSL opens one inlet (a TCP connection and liblsl threads) per
  stream and discovers by multicast: made for a lab's few synchronised streams, not thousands;
* wearables, phones and hospital IoT already speak MQTT; brokers are in every distribution
  (Debian ``mosquitto``), cluster, authenticate and bridge sites without code here;
* the stream state (causal preprocessing, windows) must stay with one process, so sharding is
  by **topic**, with a stable hash of the wearer id (:func:`shard_of`) that publishers and
  gateways compute alike. (MQTT 5 shared subscriptions balance *messages*, which would split a
  wearer's stream across processes; they are not used.)

Topics (``prefix`` = ``emotionkd``)::

    emotionkd/gsr/<shard>/<wearer>   samples: :func:`encode_block` (index, rate, float32 µS, flags)
    emotionkd/pred/<wearer>          predictions: JSON (``Prediction.to_dict()`` + ``shard``)
    emotionkd/status/<shard>         retained ``online`` once subscribed, ``offline`` (last will)

QoS 0: a lost message is a gap in the sample index, which the gateway fills with missing
samples (windows over it are reported as ``gap``, never stitched). A worker is
``python -m emotionkd.sdk.sharding --broker HOST:PORT --shard I --shards N [--model M.onnx]``
or :class:`ShardWorker` in an app. Needs the ``mqtt`` extra (``pip install emotionkd[mqtt]``).
"""

from __future__ import annotations

import argparse
import json
import logging
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from emotionkd.firmware_bridge.errors import ConfigError, DataError, EmotionKDError
from emotionkd.firmware_bridge.samples import SampleBlock

logger = logging.getLogger(__name__)

PREFIX: Final = "emotionkd"
#: samples per message at most (bounded memory whatever a publisher claims)
MAX_BLOCK_SAMPLES: Final = 65536
_HEADER = struct.Struct("<QdI")  # first_index, rate_hz, n


def shard_of(wearer_id: str, shards: int) -> int:
    """The shard (0 … shards-1) that serves ``wearer_id``: CRC-32 of the UTF-8 id modulo
    ``shards``, the same in every process and language (Python's ``hash`` is salted)."""
    if not (isinstance(shards, int) and shards >= 1):
        raise ConfigError(f"shards must be a positive integer, got {shards!r}")
    return zlib.crc32(wearer_id.encode("utf-8")) % shards


def samples_topic(wearer_id: str, shards: int, prefix: str = PREFIX) -> str:
    """Where a wearer's samples are published."""
    if not wearer_id or any(c in wearer_id for c in "/+#"):
        raise ConfigError(f"wearer id {wearer_id!r} must be non-empty without '/', '+' or '#'")
    return f"{prefix}/gsr/{shard_of(wearer_id, shards)}/{wearer_id}"


def encode_block(block: SampleBlock) -> bytes:
    """Samples as bytes: header (first index uint64, rate float64, n uint32), n float32 µS
    (NaN = missing), n uint8 flags; little-endian."""
    n = len(block)
    if n > MAX_BLOCK_SAMPLES:
        raise ConfigError(f"a message carries at most {MAX_BLOCK_SAMPLES} samples, got {n}; send smaller blocks")
    return (_HEADER.pack(block.first_index, block.rate_hz, n)
            + np.asarray(block.conductance_us, "<f4").tobytes() + np.asarray(block.flags, np.uint8).tobytes())


def decode_block(payload: bytes) -> SampleBlock:
    """Inverse of :func:`encode_block`.

    Raises:
        DataError: a payload of the wrong size or with an impossible header.
    """
    if len(payload) < _HEADER.size:
        raise DataError(f"sample message of {len(payload)} bytes is shorter than its {_HEADER.size}-byte header")
    first, rate, n = _HEADER.unpack_from(payload)
    if n > MAX_BLOCK_SAMPLES or len(payload) != _HEADER.size + 5 * n or not (np.isfinite(rate) and rate > 0):
        raise DataError(f"sample message of {len(payload)} bytes does not hold the {n} samples at {rate} Hz it "
                        "announces; check the publisher's encoder")
    values = np.frombuffer(payload, "<f4", n, _HEADER.size).astype(np.float64)
    flags = np.frombuffer(payload, np.uint8, n, _HEADER.size + 4 * n).copy()
    return SampleBlock(int(first), values, flags, float(rate))


@dataclass(frozen=True)
class Broker:
    """An MQTT broker address (``host:port``)."""

    host: str = "127.0.0.1"
    port: int = 1883

    @classmethod
    def parse(cls, text: str) -> Broker:
        host, _, port = text.rpartition(":")
        try:
            return cls(host or "127.0.0.1", int(port))
        except ValueError as exc:
            raise ConfigError(f"broker must be HOST:PORT, got {text!r}") from exc


def _client(client_id: str) -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError as exc:
        raise ConfigError("MQTT needs paho-mqtt: pip install 'emotionkd[mqtt]'") from exc
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)


class ShardWorker:
    """One gateway process's share of the wearers: subscribes to its shard, ticks the gateway,
    publishes predictions.

    Args:
        broker: the MQTT broker.
        shard / shards: this worker's shard and how many there are.
        gateway_factory: makes the :class:`~emotionkd.sdk.gateway.Gateway` (model, workers …).
        tick_s: seconds between model batches.
        prefix: topic prefix.
    """

    def __init__(self, broker: Broker, shard: int, shards: int, gateway_factory: Callable[[], Any],
                 tick_s: float = 1.0, prefix: str = PREFIX) -> None:
        if not (0 <= shard < shards):
            raise ConfigError(f"shard must be in 0..{shards - 1}, got {shard}")
        self.broker, self.shard, self.shards, self.tick_s, self.prefix = broker, shard, shards, tick_s, prefix
        self.gateway = gateway_factory()
        self.rejected = 0  # messages that could not be decoded or belong to another shard
        self._stop = threading.Event()
        self._client = _client(f"emotionkd-gateway-{shard}-of-{shards}")
        self._client.on_message = self._on_message
        self._client.on_connect = lambda client, *_: client.subscribe(f"{prefix}/gsr/{shard}/+", qos=0)
        # Who serves a shard is visible on the broker: retained online once subscribed,
        # offline by the broker's last will when the process dies.
        status = f"{prefix}/status/{shard}"
        self._client.will_set(status, "offline", qos=1, retain=True)
        self._client.on_subscribe = lambda client, *_: client.publish(status, "online", qos=1, retain=True)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        wearer = message.topic.rsplit("/", 1)[-1]
        try:
            if shard_of(wearer, self.shards) != self.shard:
                raise DataError(f"wearer {wearer!r} belongs to shard {shard_of(wearer, self.shards)}")
            block = decode_block(message.payload)
            if wearer not in self.gateway.streams:
                self.gateway.add_stream(wearer)
            self.gateway.push(wearer, block)
        except Exception as exc:  # one bad message never stops the worker
            self.rejected += 1
            logger.warning("message on %s rejected: %s", message.topic, exc)

    def run(self, duration_s: float | None = None) -> None:
        """Serve until :meth:`stop` (or ``duration_s``): tick, publish, repeat."""
        self._client.connect(self.broker.host, self.broker.port)
        self._client.loop_start()
        started = time.monotonic()
        try:
            while not self._stop.is_set() and (duration_s is None or time.monotonic() - started < duration_s):
                tick = time.monotonic()
                self.publish(self.gateway.run_batch())
                self._stop.wait(max(0.0, self.tick_s - (time.monotonic() - tick)))
        finally:
            self._client.publish(f"{self.prefix}/status/{self.shard}", "offline", qos=1, retain=True).wait_for_publish(2.0)
            self._client.loop_stop()
            self._client.disconnect()
            self.gateway.close()

    def publish(self, results: dict[str, list[Any]]) -> None:
        for wearer, predictions in results.items():
            for prediction in predictions:
                payload = json.dumps({**prediction.to_dict(), "shard": self.shard})
                self._client.publish(f"{self.prefix}/pred/{wearer}", payload, qos=0)

    def stop(self) -> None:
        self._stop.set()


def main(argv: list[str] | None = None) -> int:
    """``python -m emotionkd.sdk.sharding``: one shard worker until SIGTERM/Ctrl-C."""
    import signal

    from emotionkd.sdk.gateway import Gateway

    parser = argparse.ArgumentParser(description="emotionkd gateway worker for one shard of MQTT wearers")
    parser.add_argument("--broker", default="127.0.0.1:1883", help="MQTT broker HOST:PORT")
    parser.add_argument("--shard", type=int, required=True)
    parser.add_argument("--shards", type=int, required=True)
    parser.add_argument("--model", type=Path, default=None, help=".onnx model (default: the bundled model)")
    parser.add_argument("--tick-s", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=1, help="parallel onnxruntime calls")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s shard %(process)d %(levelname)s %(message)s")
    try:
        worker = ShardWorker(Broker.parse(args.broker), args.shard, args.shards,
                             lambda: Gateway(args.model, workers=args.workers), tick_s=args.tick_s)
        signal.signal(signal.SIGTERM, lambda *_: worker.stop())
        worker.run()
    except KeyboardInterrupt:
        return 0
    except (EmotionKDError, OSError) as exc:
        logger.error("%s", exc)
        return 2
    return 0


__all__ = ["PREFIX", "Broker", "ShardWorker", "decode_block", "encode_block", "samples_topic", "shard_of"]

if __name__ == "__main__":
    raise SystemExit(main())
