"""``emotionkd-sdk``: the edge runtime's command line (thin typer commands).

Errors become one clear line and an exit code here, and only here.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from emotionkd.firmware_bridge.errors import EmotionKDError

app = typer.Typer(
    name="emotionkd-sdk",
    help="Real-time arousal and valence from skin conductance (GSR/EDA) sensors.",
    no_args_is_help=True,
    add_completion=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn emotionkd errors into one line on stderr and exit code 2 (KeyboardInterrupt: 130)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EmotionKDError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@friendly_errors
def demo(
    duration_s: float = typer.Option(20.0, "--duration", help="Seconds of simulated sensor to stream."),
    rate_hz: float = typer.Option(32.0, "--rate", help="Simulated sensor rate (Hz); resampled to 128 Hz."),
    realtime: bool = typer.Option(True, help="Pace the simulated sensor at real time."),
    model: Annotated[Path | None, typer.Option("--model", help="An .onnx model (default: the bundled model).")] = None,
) -> None:
    """Stream a simulated GSR sensor whose arousal rises half-way through EmotionClassifier."""
    from emotionkd.firmware_bridge.errors import ModelError
    from emotionkd.sdk.classifier import EmotionClassifier

    try:
        classifier = EmotionClassifier(model)
    except ModelError as exc:
        if model is not None:
            raise
        typer.echo(f"note: {exc}\nshowing the preprocessing only (no model to run)", err=True)
        _preprocessing_demo(duration_s, rate_hz, realtime)
        return
    from emotionkd.sdk.outputs import StreamStatus, TableOutput
    from emotionkd.sdk.sources.sim import SimSource

    if classifier.trained_on_synthetic_data:
        typer.echo(f"note: model {classifier.model.path.name} was trained on synthetic data only; "
                   "its outputs demonstrate the pipeline, they do not measure emotion", err=True)
    source = SimSource(f"sim://?rate={rate_hz:g}&speed={1 if realtime else 0}&duration={duration_s:g}&arousal=0.2&seed=7")
    table = TableOutput(sys.stdout, header=f"simulated sensor at {rate_hz:g} Hz, "
                        f"{classifier.window_s:g} s windows every {classifier.hop_s:g} s")
    status = StreamStatus(source=source.url)
    with source:
        for block in source.blocks():
            if block.start_s >= duration_s / 2 and source.synth.arousal < 0.9:
                source.set_arousal(0.95)
                typer.echo("-- simulated arousal rises --", err=True)
            status.samples += len(block)
            for prediction in classifier.push(block):
                status.count(prediction)
                table.write(prediction, status)


def _preprocessing_demo(duration_s: float, rate_hz: float, realtime: bool) -> None:
    """The windows the model would get (the demo when there is no model to run)."""
    from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, GsrSynthesizer
    from emotionkd.sdk.preprocessing import GsrPreprocessor, PreprocessingConfig

    config = PreprocessingConfig()
    synth = GsrSynthesizer(GsrSynthConfig(rate_hz=rate_hz), seed=7, arousal=0.2)
    pre = GsrPreprocessor(rate_hz, "uS", config, hop_samples=int(config.rate_hz))
    typer.echo(f"simulated sensor at {rate_hz:g} Hz -> {config.rate_hz:g} Hz, 4 s windows every 1 s "
               f"(filter latency {pre.latency_s:.2f} s)")
    typer.echo(f"{'window (s)':>14}  {'SCL (µS)':>8}  {'range':>6}  quality")
    chunk = max(1, int(rate_hz / 4))
    started = time.monotonic()
    sent = 0
    total = int(duration_s * rate_hz)
    while sent < total:
        if sent >= total / 2 and synth.arousal < 0.9:
            synth.set_arousal(0.95)
            typer.echo("-- simulated arousal rises --")
        windows = pre.push(synth.read(chunk))
        sent += chunk
        for i in range(len(windows)):
            level = windows.conductance_us[i]
            quality = "ok" if windows.usable[i] else f"gap ({windows.samples_missing[i]} missing)"
            typer.echo(f"{windows.start_s[i]:6.1f}-{windows.end_s[i]:6.1f}  {level.mean():8.3f}  "
                       f"{level.max() - level.min():6.3f}  {quality}")
        if realtime:
            delay = started + sent / rate_hz - time.monotonic()
            if delay > 0:
                time.sleep(delay)


# --- stream, record, devices (the SDK as a person at a terminal meets it) ---------------------
PortOption = Annotated[str | None, typer.Option(
    "--port", "--serial-port", help="Serial port of the sensor (e.g. /dev/ttyUSB0, COM3).")]
BaudOption = Annotated[int | None, typer.Option("--baud", help="Serial baud rate (default: the protocol's usual one).")]
ProtocolOption = Annotated[str, typer.Option(
    "--protocol", help="Wire protocol: auto, ekd, ascii, shimmer3 or bitalino.")]
BleOption = Annotated[str | None, typer.Option("--ble", help="BLE address of an EKD sensor.")]
BleNameOption = Annotated[str | None, typer.Option("--ble-name", help="BLE name of an EKD sensor (scans for it).")]
ReplayOption = Annotated[Path | None, typer.Option(
    "--replay", help="Replay a file: an emotionkd recording, an Empatica E4 EDA.csv or a time,value CSV.")]
SimulateOption = Annotated[bool, typer.Option("--simulate", help="Use a simulated sensor (sim://).")]
SourceOption = Annotated[str | None, typer.Option(
    "--source", help="Any source URL (serial://, ble://, replay://, sim://, lsl://NAME).")]
SpeedOption = Annotated[float, typer.Option(
    "--speed", help="Replay/simulation pace: 1 = real time, 0 = as fast as possible.")]
DurationOption = Annotated[float | None, typer.Option("--duration", help="Stop after this many seconds of signal.")]
TimeoutOption = Annotated[float, typer.Option(
    "--timeout", help="Serial/BLE: seconds to wait for the first sample before giving up.")]
UnitOption = Annotated[str | None, typer.Option(
    "--unit", help="ASCII protocol: unit of the numbers (adc for Grove, uS, kOhm, …).")]


def _source_url(port: str | None, baud: int | None, protocol: str, ble: str | None, ble_name: str | None,
                replay: Path | None, simulate: bool, source: str | None, speed: float,
                timeout_s: float = 10.0, unit: str | None = None) -> str:
    """The one source URL the options name (exactly one source must be chosen)."""
    from urllib.parse import quote, urlencode

    chosen = [name for name, given in (("--port", port), ("--ble", ble), ("--ble-name", ble_name),
                                       ("--replay", replay), ("--simulate", simulate), ("--source", source)) if given]
    if len(chosen) != 1:
        from emotionkd.firmware_bridge.errors import ConfigError

        raise ConfigError(
            ("choose one source, not " + " and ".join(chosen)) if chosen else
            "choose a source: --port /dev/ttyUSB0, --ble ADDRESS, --ble-name NAME, --replay FILE, "
            "--simulate or --source URL (emotionkd-sdk devices lists what is connected)")
    device = {"timeout": f"{timeout_s:g}", **({"unit": unit} if unit else {})}
    if port:
        return f"serial://{quote(port)}?" + urlencode({"protocol": protocol, **({"baud": baud} if baud else {}), **device})
    if ble:
        return f"ble://{ble}?" + urlencode({"protocol": "ekd" if protocol == "auto" else protocol, **device})
    if ble_name:
        return "ble://?" + urlencode({"name": ble_name, "protocol": "ekd" if protocol == "auto" else protocol, **device})
    if replay:
        return f"replay://{quote(str(replay))}?speed={speed:g}"
    if simulate:
        return f"sim://?rate=128&speed={speed:g}"
    return str(source)


def _open_output(fmt: str, output: Path | None, header: str) -> Any:
    from emotionkd.sdk import outputs

    stream = sys.stdout if output is None else open(output, "w", encoding="utf-8", newline="")  # noqa: SIM115
    if fmt == "table":
        return outputs.TableOutput(stream, header=header)
    if fmt == "jsonl":
        return outputs.JsonlOutput(stream)
    if fmt == "csv":
        return outputs.CsvOutput(stream)
    from emotionkd.firmware_bridge.errors import ConfigError

    raise ConfigError(f"unknown --format {fmt!r}; use table, jsonl or csv")


def _reached(block: Any, duration_s: float | None) -> bool:
    return duration_s is not None and block.start_s + len(block) / block.rate_hz >= duration_s


@app.command()
@friendly_errors
def stream(
    port: PortOption = None,
    baud: BaudOption = None,
    protocol: ProtocolOption = "auto",
    ble: BleOption = None,
    ble_name: BleNameOption = None,
    replay: ReplayOption = None,
    simulate: SimulateOption = False,
    source: SourceOption = None,
    model: Annotated[Path | None, typer.Option("--model", help="An .onnx model from emotionkd-export (default: the bundled model).")] = None,
    hop_s: Annotated[float, typer.Option("--hop", help="Seconds between predictions.")] = 1.0,
    fmt: Annotated[str, typer.Option("--format", help="table (live view), jsonl or csv.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", help="Write predictions to this file instead of stdout.")] = None,
    record: Annotated[Path | None, typer.Option("--record", help="Also record the raw samples to this CSV file.")] = None,
    lsl: Annotated[bool, typer.Option("--lsl", help="Publish predictions as an LSL stream (needs pylsl).")] = False,
    duration_s: DurationOption = None,
    speed: SpeedOption = 1.0,
    timeout_s: TimeoutOption = 10.0,
    unit: UnitOption = None,
) -> None:
    """Stream arousal and valence from a GSR sensor, a recording or a simulation."""
    from emotionkd.sdk.classifier import EmotionClassifier
    from emotionkd.sdk.outputs import StreamStatus
    from emotionkd.sdk.recording import RecordingWriter
    from emotionkd.sdk.sources import open_source

    url = _source_url(port, baud, protocol, ble, ble_name, replay, simulate, source, speed, timeout_s, unit)
    classifier = EmotionClassifier(model, hop_s=hop_s)
    if classifier.trained_on_synthetic_data:
        typer.echo(f"note: model {classifier.model.path.name} was trained on synthetic data only; "
                   "its outputs demonstrate the pipeline, they do not measure emotion", err=True)
    src = open_source(url)
    outputs: list[Any] = []
    recorder: RecordingWriter | None = None
    status = StreamStatus(source=url)
    try:
        with src:
            outputs.append(_open_output(fmt, output, header=""))
            if lsl:
                from emotionkd.sdk.lsl import PredictionOutlet

                outputs.append(PredictionOutlet(classifier.contract, hop_s=classifier.hop_s))
            def emit(predictions: list[Any]) -> None:
                for prediction in predictions:
                    status.count(prediction)
                    for out in outputs:
                        out.write(prediction, status)

            for block in src.blocks():
                if status.samples == 0:  # said now: a device names itself in its first frames
                    status.started = time.monotonic()
                    info = src.info
                    typer.echo(f"streaming {info.device} ({info.protocol}, {block.rate_hz:g} Hz) -> "
                               f"{classifier.window_s:g} s windows every {classifier.hop_s:g} s", err=True)
                if record is not None and recorder is None:
                    recorder = RecordingWriter(record, device=src.info.device, protocol=src.info.protocol,
                                               rate_hz=block.rate_hz)
                if recorder is not None:
                    recorder.write(block)
                status.samples += len(block)
                status.counters = src.counters()
                emit(classifier.push(block))
                if _reached(block, duration_s):
                    break
            else:  # the source ended (a replayed file): its last windows too
                emit(classifier.flush())
    finally:
        for out in outputs:
            out.close()
        if recorder is not None:
            recorder.close()
    typer.echo(f"{status.predictions} predictions ({status.not_ok} failed the quality gate) from "
               f"{status.samples} samples", err=True)


@app.command()
@friendly_errors
def record(
    path: Annotated[Path, typer.Argument(help="CSV file to write (time_s,conductance_us,flags).")],
    port: PortOption = None,
    baud: BaudOption = None,
    protocol: ProtocolOption = "auto",
    ble: BleOption = None,
    ble_name: BleNameOption = None,
    simulate: SimulateOption = False,
    source: SourceOption = None,
    duration_s: DurationOption = None,
    speed: SpeedOption = 1.0,
    timeout_s: TimeoutOption = 10.0,
    unit: UnitOption = None,
) -> None:
    """Record raw samples (µS and flags, no model) to a CSV file that replay:// reads back."""
    from emotionkd.sdk.recording import RecordingWriter
    from emotionkd.sdk.sources import open_source

    url = _source_url(port, baud, protocol, ble, ble_name, None, simulate, source, speed, timeout_s, unit)
    writer: RecordingWriter | None = None
    with open_source(url) as src:
        typer.echo(f"recording {src.info.device} to {path} (Ctrl-C stops)", err=True)
        try:
            for block in src.blocks():
                if writer is None:
                    info = src.info
                    writer = RecordingWriter(path, device=info.device, protocol=info.protocol, rate_hz=block.rate_hz)
                writer.write(block)
                if _reached(block, duration_s):
                    break
        finally:
            if writer is not None:
                writer.close()
    count = writer.samples_written if writer else 0
    typer.echo(f"{count} samples written to {path}", err=True)


@app.command()
@friendly_errors
def devices(
    ble_timeout_s: Annotated[float, typer.Option("--ble-timeout", help="Seconds to scan for BLE devices (0: skip).")] = 5.0,
) -> None:
    """List serial ports and nearby BLE devices that could be GSR sensors."""
    from emotionkd.sdk.discovery import list_serial_ports, scan_ble

    ports = list_serial_ports()
    typer.echo("serial ports:" if ports else "serial ports: none found")
    for port in ports:
        typer.echo(f"  {port.device:<20} {port.description}  ->  emotionkd-sdk stream --port {port.device}")
    if ble_timeout_s <= 0:
        return
    try:
        found = scan_ble(ble_timeout_s)
    except EmotionKDError as exc:
        typer.echo(f"BLE: {exc}")
        return
    typer.echo(f"BLE devices ({ble_timeout_s:g} s scan):" if found else f"BLE devices: none seen in {ble_timeout_s:g} s")
    for dev in found:
        mark = "  [EKD sensor]" if dev.ekd else ""
        typer.echo(f"  {dev.address:<20} {dev.name or '(no name)'}  rssi {dev.rssi}{mark}")

# --- simulate: device emulators on a pseudo-terminal (firmware_bridge) ------------------------
@app.command()
@friendly_errors
def simulate(
    device: str = typer.Option("ekd", "--device", help="Protocol to emulate: ekd, ascii, shimmer3 or bitalino."),
    rate_hz: float = typer.Option(128.0, "--rate", help="Sampling rate (Hz); BITalino: 1, 10, 100 or 1000."),
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
        typer.echo(f"{device} emulator at {rate_hz:g} Hz on {emulator.pts_path} "
                   f"(stable link across unplugs: {emulator.port_path})", err=True)
        typer.echo(f"source URL: serial://{emulator.port_path}?protocol={device}&rate={rate_hz:g}", err=True)
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
    hours: float = typer.Option(0.1, "--hours", help="Hours of 128 Hz GSR replayed for the real-time factor (the issue's figure: 1)."),
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
    model: str = typer.Argument(..., help="An ONNX model written by emotionkd-export."),
    as_json: bool = typer.Option(False, "--json", help="Print the file facts and the full contract as JSON."),
) -> None:
    """Show a model's card: what it expects, what it was trained on, its metrics, INT8 or not."""
    import json

    from emotionkd.sdk.model_card import read_model_info, render_model_card

    details = read_model_info(model)
    typer.echo(json.dumps(details.to_dict(), indent=2, sort_keys=True) if as_json else render_model_card(details))


@app.command()
def version() -> None:
    """Print the emotionkd version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("emotionkd"))


def main() -> None:
    """Console-script entry point."""
    app(prog_name="emotionkd-sdk")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
