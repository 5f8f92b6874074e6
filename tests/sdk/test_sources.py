"""Sources by URL: parsing, sim (faults, determinism), replay of recordings, E4 exports, CSV."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.firmware_bridge.gsr_synth import synthesize_gsr
from emotionkd.firmware_bridge.samples import SampleFlag
from emotionkd.sdk.sources import open_source
from emotionkd.sdk.sources.replay import load_signal


def _all(url: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
    with open_source(url) as src:
        blocks = list(src.blocks())
    firsts = [b.first_index for b in blocks]
    return np.concatenate([b.conductance_us for b in blocks]), np.concatenate([b.flags for b in blocks]), firsts


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("/dev/ttyUSB0", "not a source URL"),
        ("ftp://x", "unknown source scheme"),
        ("sim://?rate=abc", "must be a number"),
        ("sim://?colour=red", "unknown parameter"),
        ("sim://?faults=boom@1:1", "unknown fault kind"),
        ("sim://?faults=gap@1", "kind@start:length"),
        ("sim://?rate=-3", "positive"),
        ("replay://?speed=0", "needs a file"),
    ],
)
def test_bad_urls_are_refused_clearly(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        open_source(url)


def test_sim_is_the_synthesizer_on_a_continuous_axis_with_faults() -> None:
    values, flags, firsts = _all("sim://?rate=32&seed=3&arousal=0.3&speed=0&duration=20&faults=gap@5:1,electrode_off@10:2")
    assert values.size == 640 and firsts == list(range(0, 640, 4))
    expected = synthesize_gsr(20.0, arousal=0.3, seed=3, config=__import__(
        "emotionkd.firmware_bridge.gsr_synth", fromlist=["GsrSynthConfig"]).GsrSynthConfig(rate_hz=32.0))
    clean = flags == 0
    np.testing.assert_allclose(values[clean], expected[clean])
    assert np.isnan(values[160:192]).all() and (flags[160:192] == SampleFlag.GAP).all()
    assert (flags[320:384] == SampleFlag.ELECTRODE_OFF).all()


def test_sim_runs_at_real_time_when_asked() -> None:
    started = time.monotonic()
    _all("sim://?rate=64&duration=0.5")
    assert time.monotonic() - started >= 0.4


def test_async_blocks_are_the_same_blocks() -> None:
    url = "sim://?rate=16&speed=0&duration=5&seed=9"

    async def collect() -> np.ndarray:
        src = open_source(url)
        src.open()
        return np.concatenate([b.conductance_us async for b in src.ablocks()])

    np.testing.assert_array_equal(asyncio.run(collect()), _all(url)[0])


def test_replay_of_an_e4_export_at_4_hz(tmp_path) -> None:
    eda = tmp_path / "EDA.csv"
    values = np.round(synthesize_gsr(30.0, seed=1, config=__import__(
        "emotionkd.firmware_bridge.gsr_synth", fromlist=["GsrSynthConfig"]).GsrSynthConfig(rate_hz=4.0)), 6)
    eda.write_text("1495437325.000000\n4.000000\n" + "".join(f"{v:.6f}\n" for v in values))
    with open_source(f"replay://{eda}?speed=0") as src:
        assert src.info.rate_hz == 4.0 and src.info.protocol == "replay-e4"
        got = np.concatenate([b.conductance_us for b in src.blocks()])
    np.testing.assert_allclose(got, values)


def test_generic_csv_places_samples_on_a_grid_and_converts_units(tmp_path) -> None:
    path = tmp_path / "gsr.csv"
    times = np.arange(0, 10, 0.1)
    times = np.delete(times, [30, 31, 32])  # three samples missing
    jitter = np.where(np.arange(times.size) % 2, 0.002, -0.002)
    rows = "".join(f"{t + j:.4f},{200.0 + t:.3f}\n" for t, j in zip(times, jitter, strict=True))
    path.write_text("time,gsr_kohm\n" + rows)
    sig = load_signal(path, unit="kOhm")
    assert sig.rate_hz == 10.0 and sig.format == "csv" and sig.conductance_us.size == 100
    assert np.isnan(sig.conductance_us[30:33]).all() and (sig.flags[30:33] == SampleFlag.GAP).all()
    assert sig.conductance_us[0] == pytest.approx(1000.0 / 200.0, rel=1e-3)  # resistance inverted
    one_column = tmp_path / "one.csv"
    one_column.write_text("5.0\n5.1\n5.2\n5.3\n")
    with pytest.raises(DataError, match="rate=32"):
        load_signal(one_column)
    assert load_signal(one_column, rate_hz=8.0).rate_hz == 8.0


def test_replay_refuses_unreadable_files(tmp_path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        open_source(f"replay://{tmp_path}/none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("t,v\n0,1\n0.1,oops\n0.2,3\n")
    with pytest.raises(DataError, match="line 3"):
        open_source(f"replay://{bad}")
    backwards = tmp_path / "back.csv"
    backwards.write_text("0,1\n0.2,1\n0.1,1\n")
    with pytest.raises(DataError, match="increasing"):
        open_source(f"replay://{backwards}")
