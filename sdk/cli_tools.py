"""``emotionkd-sdk`` commands around the stream: plot, devices, simulate, bench, info, version
(registered on the one app of :mod:`emotionkd.sdk.cli_common`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emotionkd.firmware_bridge.errors import EmotionKDError
from emotionkd.sdk.cli_common import (
    NoVerifyOption,
    UnitOption,
    _check_source_options,
    _note_synthetic,
    _require,
    _say,
    app,
    friendly_errors,
)


@app.command()
@friendly_errors
def plot(
    recording: Annotated[Path, typer.Argument(help="A recording (emotionkd-sdk record), an E4 EDA.csv or a time,value CSV.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Image to write (.png, .svg or .pdf).")] = Path("session.png"),
    predictions: Annotated[Path | None, typer.Option("--predictions", help="Predictions from stream --format jsonl/csv (default: predict the recording now).")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="Model for predicting when --predictions is not given (default: the bundled model).")] = None,
    unit: UnitOption = None,
    rate_hz: Annotated[float | None, typer.Option("--rate", help="Sampling rate of a one-column CSV (Hz).")] = None,
) -> None:
    """Plot a session: conductance with gaps and flags shaded, arousal/valence P(high) underneath."""
    from emotionkd.sdk.session_plot import plot_session, read_predictions
    from emotionkd.sdk.sources.replay import load_signal

    _require(output.suffix.lower() in (".png", ".svg", ".pdf"), f"-o {output}: write a .png, .svg or .pdf")
    _require(rate_hz is None or rate_hz > 0, f"--rate must be a positive number of Hz, got {rate_hz}")
    if unit is not None:
        _check_source_options("auto", None, 0.0, 1.0, unit, None)
    signal = load_signal(recording, unit=unit or "uS", rate_hz=rate_hz)
    if predictions is not None:
        rows = read_predictions(predictions)
        source = f"predictions from {predictions.name}"
    else:
        from emotionkd.sdk.classifier import EmotionClassifier

        classifier = EmotionClassifier(model)
        _note_synthetic(classifier)
        rows = [p.to_dict() for p in classifier.predict(signal.conductance_us, signal.rate_hz, flags=signal.flags)]
        source = f"predicted by {classifier.model.path.name}"
    title = (f"{recording.name} · {signal.device} · {signal.conductance_us.size / signal.rate_hz:.0f} s at "
             f"{signal.rate_hz:g} Hz · {source}")
    written = plot_session(signal.conductance_us, signal.flags, signal.rate_hz, rows, output, title=title)
    flagged = sum(r["quality"] != "ok" for r in rows)
    _say(f"wrote {written} ({len(rows)} windows, {flagged} failed the quality gate)")


@app.command()
@friendly_errors
def devices(
    ble_timeout_s: Annotated[float, typer.Option("--ble-timeout", help="Seconds to scan for BLE devices (0: skip).")] = 5.0,
) -> None:
    """List serial ports and nearby BLE devices that could be GSR sensors."""
    from emotionkd.firmware_bridge.discovery import list_serial_ports, scan_ble_sync

    ports = list_serial_ports()
    typer.echo("serial ports:" if ports else "serial ports: none found")
    for port in ports:
        typer.echo(f"  {port.address:<20} {port.name}  ->  emotionkd-sdk stream --source '{port.url}'")
    if ble_timeout_s <= 0:
        return
    try:
        found = scan_ble_sync(ble_timeout_s)
    except EmotionKDError as exc:
        typer.echo(f"BLE: {exc}")
        return
    typer.echo(f"BLE devices ({ble_timeout_s:g} s scan):" if found else f"BLE devices: none seen in {ble_timeout_s:g} s")
    for dev in found:
        mark = "  [EKD sensor]" if dev.protocol == "ekd" else ""
        typer.echo(f"  {dev.address:<20} {dev.name or '(no name)'}  rssi {dev.rssi}{mark}  ->  {dev.url}")

# --- simulate: device emulators on a pseudo-terminal (firmware_bridge) ------------------------
@app.command()
@friendly_errors
def simulate(
    device: str = typer.Option("ekd", "--device", help="Protocol to emulate: ekd, ascii, shimmer3 or bitalino."),
    rate_hz: float | None = typer.Option(
        None, "--rate", help="Sampling rate (Hz; default: the emulated device's own, from the device "
        "registry); BITalino: 1, 10, 100 or 1000.", show_default=False),
    duration_s: float = typer.Option(0.0, "--duration", help="Seconds to run; 0 = until Ctrl-C."),
    seed: int = typer.Option(0, help="Seed of the synthetic skin conductance."),
    arousal: float = typer.Option(0.3, help="Arousal of the synthetic signal, 0..1."),
    garbage_per_s: float = typer.Option(0.0, "--garbage-per-s", help="Mean random garbage bursts per second."),
    drop_probability: float = typer.Option(0.0, "--drop", help="Chance that a frame is lost on the device."),
    electrode_off_after_s: float = typer.Option(-1.0, "--electrode-off-after", help="Report open electrodes after this many seconds (<0: never)."),
    unplug_every_s: float = typer.Option(0.0, "--unplug-every", help="Unplug the port every N seconds (0: never)."),
    unplug_for_s: float = typer.Option(1.0, "--unplug-for", help="How long each unplug lasts (s)."),
    sample_format: str = typer.Option("ns", "--format", help="EKD sample format: ns, u16 or u24."),
    unit: str = typer.Option("adc", help="ASCII: print Grove ADC values ('adc') or 'uS'."),
    autostart: bool = typer.Option(False, help="Stream without waiting for the host's start command."),
) -> None:
    """Emulate a GSR device on a pseudo-terminal; prints the /dev/pts/N to connect to."""
    _require(duration_s >= 0, f"--duration must be 0 (until Ctrl-C) or a positive number of seconds, got {duration_s:g}")
    _require(rate_hz is None or rate_hz > 0, f"--rate must be a positive number of Hz, got {rate_hz or 0:g}")
    from emotionkd.firmware_bridge.emulators import (
        EmulatorConfig,
        make_emulator,
        require_pty,
        run_emulator,
    )

    require_pty()
    config = EmulatorConfig(rate_hz=rate_hz, seed=seed, arousal=arousal, garbage_per_s=garbage_per_s,
                            drop_probability=drop_probability, sample_format=sample_format, unit=unit,
                            autostart=autostart)
    emulator = make_emulator(device, config)
    with emulator:
        typer.echo(emulator.pts_path)
        typer.echo(f"{device} emulator at {emulator.rate_hz:g} Hz on {emulator.pts_path} "
                   f"(stable link across unplugs: {emulator.port_path})", err=True)
        typer.echo(f"source URL: serial://{emulator.port_path}?protocol={device}&rate={emulator.rate_hz:g}", err=True)
        try:
            run_emulator(
                emulator,
                duration_s if duration_s > 0 else None,
                unplug_every_s=unplug_every_s or None,
                unplug_for_s=unplug_for_s,
                electrode_off_after_s=electrode_off_after_s if electrode_off_after_s >= 0 else None,
                report=lambda line: typer.echo(line, err=True),
            )
        except KeyboardInterrupt:
            typer.echo("stopped", err=True)

# --- bench: speed on this device (perf engineer) -------------------------------------------
@app.command()
@friendly_errors
def bench(
    model: Annotated[list[Path] | None, typer.Option(
        "--model", help="An .onnx model; repeat to compare (e.g. FP32 and INT8). Default: the bundled model.")] = None,
    threads: Annotated[list[int] | None, typer.Option(
        "--threads", help="onnxruntime threads for the latency figures; repeat for several (default 1 and 2). "
                          "The gateway runs as many one-thread workers as the largest.")] = None,
    hours: float = typer.Option(0.1, "--hours", help="Hours of 128 Hz GSR replayed for the real-time factor (1 gives the figure in docs/performance.md)."),
    runs: int = typer.Option(200, "--runs", help="Timed batch-1 runs per model and thread count."),
    batch: int = typer.Option(8, "--batch", help="Windows per call for the throughput figure."),
    streams: int = typer.Option(200, "--streams", help="Streams the gateway capacity is first measured with."),
    ticks: int = typer.Option(5, "--ticks", help="Timed one-second gateway ticks."),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
) -> None:
    """Measure latency, throughput, streaming real-time factor, start-up, RSS and gateway capacity."""
    import json

    from emotionkd.sdk.bench import BenchConfig, render, run_bench
    from emotionkd.sdk.model import bundled_model_path

    config = BenchConfig(threads=tuple(threads or (1, 2)), latency_runs=runs, batch=batch, stream_hours=hours,
                         gateway_streams=streams, gateway_ticks=ticks)
    paths: list[str | Path] = list(model or [bundled_model_path()])
    report = run_bench(paths, config, progress=lambda line: typer.echo(f"bench: {line}", err=True))
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else render(report))


# --- info: the model card (export engineer) ------------------------------------------------
@app.command()
@friendly_errors
def info(
    model: str | None = typer.Argument(None, help="An ONNX model written by emotionkd-export (default: the bundled model)."),
    as_json: bool = typer.Option(False, "--json", help="Print the file facts and the full contract as JSON."),
    no_verify: NoVerifyOption = False,
) -> None:
    """Show a model's card: what it expects, what it was trained on, its metrics, INT8 or not."""
    import json

    from emotionkd.sdk.model import bundled_model_path
    from emotionkd.sdk.model_card import read_model_info, render_model_card

    details = read_model_info(model if model is not None else bundled_model_path(), verify=not no_verify)
    typer.echo(json.dumps(details.to_dict(), indent=2, sort_keys=True) if as_json else render_model_card(details))


@app.command()
def version() -> None:
    """Print the emotionkd version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("emotionkd"))
