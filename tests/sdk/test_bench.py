"""emotionkd-sdk bench with tiny settings: it runs every measurement and reports sane numbers.

Timings are never asserted against budgets here (benchmarks print numbers); the tests check
that each figure is measured, positive, consistent with the others and JSON-ready.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.sdk.bench import BenchConfig, render, run_bench, streaming, synthetic_features
from emotionkd.sdk.bench_startup import RSS_STEPS, probe_env
from emotionkd.sdk.cli import app
from emotionkd.sdk.contract import ModelContract

TINY = BenchConfig(threads=(1,), latency_runs=5, batch=4, stream_hours=0.005, gateway_streams=3,
                   gateway_ticks=1, gateway_verify=False, startup_runs=1)


@pytest.fixture(scope="module")
def int8_flagged(test_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test model with a contract that says INT8 (the bench pairs FP32 and INT8 files)."""
    model = onnx.load(str(test_model))
    metadata = {p.key: p.value for p in model.metadata_props}
    contract = ModelContract.from_onnx_metadata(metadata)
    contract = replace(contract, export={**dict(contract.export), "int8": True})
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, contract.to_onnx_metadata())
    path = tmp_path_factory.mktemp("int8") / "test.int8.onnx"
    onnx.save(model, str(path))
    return path


def _check_model_entry(entry: dict) -> None:
    for lat in entry["latency_batch1"].values():
        assert 0 < lat["p50_ms"] <= lat["p99_ms"] and lat["runs"] == TINY.latency_runs
    assert all(tp["windows_per_s"] > 0 and tp["batch"] == TINY.batch for tp in entry["throughput"].values())
    s = entry["streaming"]
    for mode in ("live", "batched"):
        # 18 s of signal at 1 s hop: the windows 4 s long that fit (flush included)
        assert s[mode]["windows"] == 15
        assert s[mode]["x_real_time"] == pytest.approx(18.0 / s[mode]["wall_s"])
    st = entry["startup"]
    assert 0 < st["import_s"] < st["model_loaded_s"] <= st["first_prediction_s"]
    assert 20 < st["peak_rss_mb"] < 2000
    steps = st["rss_steps_mb"]  # where the memory goes: each import adds, the peak comes last
    assert list(steps) == list(RSS_STEPS) and steps["python"] < steps["numpy"] < steps["onnxruntime"]
    assert steps["model loaded"] <= st["peak_rss_mb"]
    assert 0 < st["bare_onnxruntime_peak_rss_mb"] < st["peak_rss_mb"]  # the SDK's modules cost something
    # three SDK processes, each beside a floor process; the headline figures are the worst of each
    assert len(st["peak_rss_runs_mb"]) == len(st["bare_onnxruntime_runs_mb"]) == 3
    assert st["peak_rss_mb"] == max(st["peak_rss_runs_mb"])
    assert st["bare_onnxruntime_peak_rss_mb"] == max(st["bare_onnxruntime_runs_mb"])
    for key, peak in (("rss_anon_file_mb", "peak_rss_mb"), ("bare_onnxruntime_anon_file_mb", "bare_onnxruntime_peak_rss_mb")):
        anon, files = st[key]  # what is resident after the window, split; at most the peak
        assert anon > 0 and files > 0 and anon + files <= st[peak] + 0.01
    g = entry["gateway"]
    tick = g["measured"][0]
    assert tick["streams"] == 3 and tick["windows_per_tick"] == 3 and tick["real_time"]
    assert g["capacity_streams"] == int(3 / tick["tick_s_median"]) > 3 and g["capacity_streams_by_cpu"] > 3
    assert 0 < tick["push_s_median"] <= tick["tick_s_median"] <= tick["tick_s_max"]


def test_bench_measures_every_figure(test_model: Path, int8_flagged: Path) -> None:
    report = run_bench([test_model, int8_flagged], TINY)
    data = report.to_dict()
    json.dumps(data, allow_nan=True)
    assert [m["int8"] for m in data["models"]] == [False, True]
    for entry in data["models"]:
        _check_model_entry(entry)
    speedup = data["comparisons"]["int8_vs_fp32_speedup_batch1"]["1"]
    fp32, int8 = (m["latency_batch1"]["1"]["p50_ms"] for m in data["models"])
    assert speedup == pytest.approx(fp32 / int8)
    assert data["machine"]["cores"] >= 1 and data["machine"]["fp32_gemm_gflops_one_core"] > 0
    assert data["targets"]["gateway_streams_real_time_2_cores"] == 2000 and data["targets"]["peak_rss_mb"] == 64
    for entry in data["models"]:  # the cohort path measured beside the per-stream one
        assert entry["gateway"]["cohort"]["windows_per_tick"] > 0 and entry["gateway"]["capacity_streams_by_cpu_cohort"] > 0
    text = render(report)
    assert text.count("latency batch 1") == 2 and text.count("x real time") == 2 and "int8_vs_fp32" in text
    assert text.count("resident MB after each step") == 2


def test_cli_bench_json(test_model: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "--model", str(test_model), "--threads", "1", "--runs", "5",
                                      "--batch", "4", "--hours", "0.005", "--streams", "3", "--ticks", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["models"]) == 1 and data["config"]["stream_hours"] == 0.005
    assert set(data["models"][0]["latency_batch1"]) == {"1"}
    assert data["models"][0]["streaming"]["live"]["windows"] == 15


def test_cli_bench_errors_are_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "--model", str(tmp_path / "missing.onnx"), "--runs", "5"])
    assert result.exit_code == 2 and "does not exist" in result.stderr
    result = CliRunner().invoke(app, ["bench", "--model", str(tmp_path / "missing.onnx"), "--hours", "0"])
    assert result.exit_code == 2 and "--hours" in result.stderr
    with pytest.raises(ConfigError, match="threads"):
        BenchConfig(threads=(0,))


def test_streaming_live_and_batched_give_the_same_windows(test_model: Path) -> None:
    out = streaming(test_model, hours=0.01)
    assert out["live"]["windows"] == out["batched"]["windows"] == 33
    assert math.isfinite(out["live"]["ms_per_window"])
    assert 0 < out["pipeline_cpu_ms_per_push"] < 1e3
    assert synthetic_features(5).shape == (5, 512)


def test_start_up_probes_read_compiled_bytecode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed SDK has its bytecode compiled (pip does it at install); a probe that compiled
    every module from source (PYTHONDONTWRITEBYTECODE=1, as on this project's machines) would
    count the compiler's memory in the SDK's peak."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = probe_env(tmp_path / "pycache", optimize=2)
    assert "PYTHONDONTWRITEBYTECODE" not in env and env["PYTHONOPTIMIZE"] == "2"
    subprocess.run([sys.executable, "-c", "import emotionkd.sdk.classifier"], env=env, check=True)
    assert list((tmp_path / "pycache").rglob("classifier.*.opt-2.pyc"))  # the next process reads it
