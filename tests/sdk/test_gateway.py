"""Gateway: many streams batched into one model call give each stream exactly what
EmotionClassifier.push gives that stream alone."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, GsrSynthesizer
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag
from emotionkd.sdk.classifier import EmotionClassifier, Prediction
from emotionkd.sdk.gateway import Gateway


def _same(a: list[Prediction], b: list[Prediction]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        dx, dy = x.to_dict(), y.to_dict()
        for key in ("arousal", "valence"):  # batched vs single BLAS calls may differ in the last bit
            px, py = dx.pop(key), dy.pop(key)
            assert (px is None) == (py is None)
            if px is not None:
                assert math.isclose(px, py, abs_tol=1e-6)
        assert dx == dy


def _streams(seed: int) -> dict[str, list[SampleBlock | tuple[np.ndarray, float]]]:
    """Per stream a list of chunks: arrays at several rates, blocks with lost samples and flags."""
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {}
    for k, rate in enumerate((4.0, 32.0, 128.0, 128.0, 15.5, 64.0)):
        x = GsrSynthesizer(GsrSynthConfig(rate_hz=rate), seed=seed + k).read(int(rate * 25))
        if k == 2:
            x[int(rate * 7):int(rate * 9)] = np.nan  # a two-second dropout
        chunks: list = []
        i = 0
        while i < x.size:
            n = int(rng.integers(1, max(2, int(rate * 2.5))))
            if k in (3, 5):  # device blocks: skip some samples (lost packets), flag some
                flags = np.zeros(min(n, x.size - i), np.uint8)
                if rng.random() < 0.2:
                    flags[:] = SampleFlag.ELECTRODE_OFF
                chunks.append(SampleBlock(i, x[i:i + n].copy(), flags, rate))
                i += n + (int(rng.integers(1, 20)) if rng.random() < 0.15 else 0)
            else:
                chunks.append((x[i:i + n], rate))
                i += n
        out[f"s{k}"] = chunks
    return out


def _feed(push, chunk):  # noqa: ANN001, ANN202 - a classifier's or a gateway stream's push
    if isinstance(chunk, SampleBlock):
        return push(chunk)
    return push(chunk[0], sample_rate_hz=chunk[1])


@pytest.mark.parametrize(("max_batch", "workers"), [(256, 1), (3, 1), (2, 3)])
def test_gateway_matches_classifier_per_stream(test_model: Path, max_batch: int, workers: int) -> None:
    streams = _streams(seed=4)
    alone: dict[str, list[Prediction]] = {}
    for sid, chunks in streams.items():
        clf = EmotionClassifier(test_model)
        got: list[Prediction] = []
        for chunk in chunks:
            got += _feed(clf.push, chunk)
        alone[sid] = got + clf.flush()
    assert all(any(p.ok for p in ps) for ps in alone.values())
    assert any(not p.ok for ps in alone.values() for p in ps)  # the gate was exercised too

    gateway = Gateway(test_model, max_batch=max_batch, workers=workers)
    heard: dict[str, list[Prediction]] = {sid: [] for sid in streams}
    gateway.add_callback(lambda sid, p: heard[sid].append(p))
    returned: dict[str, list[Prediction]] = {sid: [] for sid in streams}
    for sid in streams:
        gateway.add_stream(sid)
    rng = np.random.default_rng(0)
    cursors = dict.fromkeys(streams, 0)
    batches = 0
    while any(cursors[s] < len(c) for s, c in streams.items()):
        for sid, chunks in streams.items():  # interleaved, uneven progress per stream
            for _ in range(int(rng.integers(0, 4))):
                if cursors[sid] < len(chunks):
                    _feed(lambda *a, s=sid, **k: gateway.push(s, *a, **k), chunks[cursors[sid]])  # noqa: B023
                    cursors[sid] += 1
        if rng.random() < 0.5:
            for sid, ps in gateway.run_batch().items():
                returned[sid] += ps
            batches += 1
    for sid, ps in gateway.run_batch().items():
        returned[sid] += ps
    for sid in streams:
        returned[sid] += gateway.remove_stream(sid)
    gateway.close()
    assert batches > 3 and gateway.streams == []
    for sid in streams:
        _same(returned[sid], alone[sid])
    for sid in streams:  # every prediction returned (ticks and remove_stream) was announced too
        _same(heard[sid], returned[sid])


def _counting_gateway(model: Path, streams: int, **options: int) -> tuple[Gateway, list[int]]:
    """A gateway whose model records each call's batch size, fed 6 s of every stream."""
    gateway = Gateway(model, **options)
    sizes: list[int] = []
    real_run = gateway.model.run
    gateway.model.run = lambda x: sizes.append(x.shape[0]) or real_run(x)  # type: ignore[method-assign,func-returns-value]
    for k in range(streams):
        gateway.add_stream(f"wrist-{k}")
        gateway.push(f"wrist-{k}", GsrSynthesizer(seed=k).read(128 * 6), sample_rate_hz=128.0)
    return gateway, sizes


def test_one_model_call_per_tick(test_model: Path) -> None:
    gateway, calls = _counting_gateway(test_model, 20, max_batch=1000)
    assert gateway.pending_windows > 20
    out = gateway.run_batch()
    assert len(calls) == 1 and calls[0] == sum(len(ps) for ps in out.values()) and len(out) == 20
    assert gateway.pending_windows == 0 and gateway.run_batch() == {}
    # default: batches of at most 8 windows (cache-sized), all windows once
    small, sizes = _counting_gateway(test_model, 5)
    n = small.pending_windows
    assert sum(len(ps) for ps in small.run_batch().values()) == n == sum(sizes) and max(sizes) == 8


def test_stream_errors_are_clear(test_model: Path) -> None:
    gateway = Gateway(test_model)
    gateway.add_stream("a")
    with pytest.raises(ConfigError, match="already open"):
        gateway.add_stream("a")
    with pytest.raises(ConfigError, match="no stream 'b'"):
        gateway.push("b", np.ones(10), sample_rate_hz=4.0)
    with pytest.raises(ConfigError, match="sample_rate_hz"):
        gateway.push("a", np.ones(10))
    with pytest.raises(ConfigError, match="max_batch"):
        Gateway(test_model, max_batch=0)
    with pytest.raises(ConfigError, match="workers"):
        Gateway(test_model, workers=0)
    with pytest.raises(ConfigError, match="hop_s"):
        Gateway(test_model, hop_s=0.0)
    # a raising callback is logged, the others still hear
    heard: list[str] = []
    gateway.add_callback(lambda sid, p: 1 / 0)
    gateway.add_callback(lambda sid, p: heard.append(sid))
    gateway.push("a", GsrSynthesizer(seed=1).read(128 * 5), sample_rate_hz=128.0)
    assert gateway.run_batch()["a"] and heard and set(heard) == {"a"}
