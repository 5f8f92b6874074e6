"""``emotionkd-sdk``: the edge runtime's command line (thin typer commands).

Errors become one clear line and an exit code here, and only here.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

import typer

from emotionkd.firmware_bridge.errors import EmotionKDError

app = typer.Typer(
    name="emotionkd-sdk",
    help="Real-time arousal and valence from skin conductance (GSR/EDA) sensors.",
    no_args_is_help=True,
    add_completion=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def _flags_without_metavar() -> None:
    """Show flags in ``--help`` without a value placeholder: typer 0.2x labels every option,
    flags included, with its type (``--simulate <bool>``), which reads as if a flag took a value.
    Applied once, to typer's option class, so every emotionkd CLI gets it."""
    from typer import core

    option = getattr(core, "TyperOption", None)
    original = getattr(option, "display_type_rich", None)
    if option is None or original is None or getattr(original, "flags_plain", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if getattr(self, "is_flag", False) else original(self, ctx)

    display_type_rich.flags_plain = True  # type: ignore[attr-defined]
    option.display_type_rich = display_type_rich


_flags_without_metavar()


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


def _say(text: str) -> None:
    """A message for the person on stderr; on a terminal, wrapped to its width at word breaks
    (so that the terminal never wraps it mid-word and a live view below keeps its place)."""
    import shutil
    import textwrap

    stream = sys.stderr
    if stream.isatty():
        width = shutil.get_terminal_size().columns
        text = "\n".join(textwrap.fill(line, width=max(20, width - 1),
                                        subsequent_indent=" " * (len(line) - len(line.lstrip()) + 2))
                          for line in text.splitlines())
    typer.echo(text, err=True)


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
    "--unit", help="ASCII protocol or --replay: unit of the numbers (adc for Grove, uS, kOhm, …).")]
ColumnOption = Annotated[str | None, typer.Option(
    "--column", help="--replay of a multi-column CSV: the column to stream (header name or 1-based number).")]
NoVerifyOption = Annotated[bool, typer.Option(
    "--no-verify", help="Load a model whose integrity hash does not match (an edited or damaged file).")]
RateOption = Annotated[float | None, typer.Option(
    "--rate", help="Sampling rate (Hz) of a --replay file without a time column, or of an ASCII device.")]


def _require(ok: bool, message: str) -> None:
    """Refuse a bad option value before anything opens (one line, exit code 2)."""
    if not ok:
        from emotionkd.firmware_bridge.errors import ConfigError

        raise ConfigError(message)


def _check_source_options(protocol: str, baud: int | None, speed: float, timeout_s: float, unit: str | None,
                          duration_s: float | None) -> None:
    """The options every source takes, checked before a port, file or model is touched."""
    from emotionkd.firmware_bridge.sources import PROTOCOLS
    from emotionkd.firmware_bridge.units import normalise_unit

    known = ("auto", *PROTOCOLS)
    _require(protocol.lower() in known, f"unknown --protocol {protocol!r}; use one of {', '.join(known)}")
    _require(baud is None or baud > 0, f"--baud must be a positive number of bits per second, got {baud}")
    _require(speed >= 0, f"--speed must be 0 (as fast as possible) or positive, got {speed:g}")
    _require(timeout_s > 0, f"--timeout must be a positive number of seconds, got {timeout_s:g}")
    _require(duration_s is None or duration_s > 0,
             f"--duration must be a positive number of seconds, got {duration_s:g}" if duration_s is not None else "")
    if unit is not None:
        normalise_unit(unit)  # raises a ConfigError naming the known units


def _source_url(port: str | None, baud: int | None, protocol: str, ble: str | None, ble_name: str | None,
                replay: Path | None, simulate: bool, source: str | None, speed: float,
                timeout_s: float = 10.0, unit: str | None = None, *, column: str | None = None,
                rate_hz: float | None = None) -> str:
    """The one source URL the options name (exactly one source must be chosen)."""
    from urllib.parse import quote, urlencode

    protocol = protocol.lower()

    chosen = [name for name, given in (("--port", port), ("--ble", ble), ("--ble-name", ble_name),
                                       ("--replay", replay), ("--simulate", simulate), ("--source", source)) if given]
    if len(chosen) != 1:
        from emotionkd.firmware_bridge.errors import ConfigError

        raise ConfigError(
            ("choose one source, not " + " and ".join(chosen)) if chosen else
            "choose a source: --port /dev/ttyUSB0, --ble ADDRESS, --ble-name NAME, --replay FILE, "
            "--simulate or --source URL (emotionkd-sdk devices lists what is connected)")
    device = {"timeout": f"{timeout_s:g}", **({"unit": unit} if unit else {}),
              **({"rate": f"{rate_hz:g}"} if rate_hz is not None else {})}
    if port:
        return f"serial://{quote(port)}?" + urlencode({"protocol": protocol, **({"baud": baud} if baud else {}), **device})
    if ble:
        return f"ble://{ble}?" + urlencode({"protocol": "ekd" if protocol == "auto" else protocol, **device})
    if ble_name:
        return "ble://?" + urlencode({"name": ble_name, "protocol": "ekd" if protocol == "auto" else protocol, **device})
    if replay:
        extra = {k: v for k, v in (("unit", unit), ("column", column),
                                   ("rate", None if rate_hz is None else f"{rate_hz:g}")) if v is not None}
        return f"replay://{quote(str(replay))}?" + urlencode({"speed": f"{speed:g}", **extra})
    if simulate:
        return f"sim://?rate=128&speed={speed:g}"
    return str(source)


def _open_output(fmt: str, output: Path | None, header: str, status: Any = None, window_s: float = 4.0) -> Any:
    from emotionkd.sdk import outputs

    stream = sys.stdout if output is None else open(output, "w", encoding="utf-8", newline="")  # noqa: SIM115
    if fmt == "table":
        return outputs.TableOutput(stream, header=header, status=status, window_s=window_s)
    if fmt == "jsonl":
        return outputs.JsonlOutput(stream)
    if fmt == "csv":
        return outputs.CsvOutput(stream)
    from emotionkd.firmware_bridge.errors import ConfigError

    raise ConfigError(f"unknown --format {fmt!r}; use table, jsonl or csv")


def _source_label(url: str, device: str) -> str:
    """What the live view calls the source: a replay names its file (and what recorded it), not
    the serial port the recording once came from."""
    from emotionkd.sdk.sources import SourceUrl

    parsed = SourceUrl.parse(url)
    if parsed.scheme == "replay":
        return f"replay of {Path(parsed.location).name} (recorded from {device})"
    return device


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
    dashboard: Annotated[bool, typer.Option("--dashboard", help="Serve a live web page: GSR trace, arousal/valence history, model card.")] = False,
    bind: Annotated[str, typer.Option("--bind", help="Dashboard address HOST:PORT (port 0: any free one).")] = "127.0.0.1:8765",
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Let --bind name an address other than loopback.")] = False,
    duration_s: DurationOption = None,
    speed: SpeedOption = 1.0,
    timeout_s: TimeoutOption = 10.0,
    unit: UnitOption = None,
    column: ColumnOption = None,
    rate_hz: RateOption = None,
    no_verify: NoVerifyOption = False,
    baseline: Annotated[Path | None, typer.Option("--baseline", help="A 2-5 min rest recording (emotionkd-sdk record CSV or E4 EDA.csv) that seeds a v2 model's baseline.")] = None,
    hysteresis: Annotated[float, typer.Option("--hysteresis", help="Label hysteresis: a label turns high at P >= 0.5 + H/2 and low below 0.5 - H/2 (0: every window at 0.5).")] = 0.0,
) -> None:
    """Stream arousal and valence from a GSR sensor, a recording or a simulation."""
    from emotionkd.sdk.classifier import EmotionClassifier
    from emotionkd.sdk.model import OnnxEmotionModel, bundled_model_path
    from emotionkd.sdk.prediction import LabelRule

    _check_source_options(protocol, baud, speed, timeout_s, unit, duration_s)
    _require(hop_s > 0, f"--hop must be a positive number of seconds, got {hop_s:g}")
    LabelRule(hysteresis=hysteresis)  # a bad --hysteresis is refused before anything opens
    _require(rate_hz is None or rate_hz > 0, f"--rate must be a positive number of Hz, got {rate_hz}")
    if dashboard:
        from emotionkd.sdk.dashboard import parse_bind

        host, bind_port = parse_bind(bind, allow_remote=allow_remote)
    url = _source_url(port, baud, protocol, ble, ble_name, replay, simulate, source, speed, timeout_s, unit,
                      column=column, rate_hz=rate_hz)
    classifier = EmotionClassifier(OnnxEmotionModel(model or bundled_model_path(), verify=not no_verify), hop_s=hop_s,
                                   baseline=baseline, hysteresis=hysteresis)
    if classifier.baseline_us is not None:
        _say(f"baseline: seeded at {classifier.baseline_us:.3f} uS from {baseline}")
    _note_synthetic(classifier)
    server = _start_dashboard(classifier, host, bind_port) if dashboard else None

    def open_outputs(status: Any) -> list[Any]:
        outputs = [_open_output(fmt, output, header="", status=status, window_s=classifier.window_s)]
        if lsl:
            from emotionkd.sdk.lsl import PredictionOutlet

            outputs.append(PredictionOutlet(classifier.contract, hop_s=classifier.hop_s))
        if server is not None:
            outputs.append(server.hub)
        return outputs

    try:
        status = _stream_predictions(url, classifier, open_outputs, duration_s=duration_s, record=record,
                                     on_block=server.hub.add_block if server is not None else None)
    finally:
        if server is not None:
            server.stop()
    _say(f"{status.predictions} predictions ({status.not_ok} failed the quality gate) from "
               f"{status.samples} samples")


def _start_dashboard(classifier: Any, host: str, port: int) -> Any:
    """Serve the dashboard for ``classifier``'s stream; says where (the caller stops it)."""
    from emotionkd.sdk.dashboard import DashboardHub, DashboardServer
    from emotionkd.sdk.model_card import read_model_info, render_model_card

    details = read_model_info(classifier.model.path)
    hub = DashboardHub({"text": render_model_card(details), "facts": details.to_dict()})
    server = DashboardServer(hub, host, port).start()
    _say(f"dashboard: {server.url} (open it in a browser; it stops with the stream)")
    return server


def _note_synthetic(classifier: Any) -> None:
    """Say once, at start, that a model trained on synthetic data measures nothing."""
    if classifier.trained_on_synthetic_data:
        _say(f"note: model {classifier.model.path.name} was trained on synthetic data only; "
             "its outputs demonstrate the pipeline, they do not measure emotion")
    elif classifier.contract.provenance_note():  # heads of mixed origin: say which met real skin
        _say(f"note: model {classifier.model.path.name}: {classifier.contract.provenance_note()}")


def _stream_predictions(url: str, classifier: Any, open_outputs: Callable[[Any], list[Any]], *,
                        duration_s: float | None = None, record: Path | None = None,
                        on_block: Callable[[Any, Any], None] | None = None) -> Any:
    """Stream ``url`` through ``classifier`` into the outputs ``open_outputs(status)`` makes once the
    source is open (closed at the end): the loop of ``stream`` and ``demo``. ``on_block(block,
    status)`` runs before each block is classified.

    Returns:
        the final :class:`~emotionkd.sdk.outputs.StreamStatus` (samples, predictions, counters).
    """
    from emotionkd.sdk.outputs import StreamStatus
    from emotionkd.sdk.recording import RecordingWriter
    from emotionkd.sdk.sources import open_source

    recorder: RecordingWriter | None = None
    outputs: list[Any] = []
    status = StreamStatus(source=url)

    def emit(predictions: list[Any]) -> None:
        for prediction in predictions:
            status.count(prediction)
            for out in outputs:
                out.write(prediction, status)

    def shown(src: Any) -> Iterator[Any]:
        """The source's blocks, each shown, recorded and counted before it is classified."""
        nonlocal recorder
        for block in src.blocks():
            if status.samples == 0:  # said now: a device names itself in its first frames
                info = src.info
                status.source = _source_label(url, info.device)
                status.nominal_rate_hz = block.rate_hz
                _say(f"streaming {status.source} ({info.protocol}, {block.rate_hz:g} Hz) -> "
                     f"{classifier.window_s:g} s windows every {classifier.hop_s:g} s")
            if record is not None and recorder is None:
                recorder = RecordingWriter(record, device=src.info.device, protocol=src.info.protocol,
                                           rate_hz=block.rate_hz)
            if recorder is not None:
                recorder.write(block)
            status.received(len(block))
            status.counters = src.counters()
            if on_block is not None:
                on_block(block, status)
            yield block

    try:
        with open_source(url) as src:
            status.source = _source_label(url, src.info.device)
            outputs.extend(open_outputs(status))
            classifier.reset()
            # the classifier's own loop (duration, flush at the source's end); the CLI only shows
            for prediction in classifier.classify_blocks(shown(src), duration_s=duration_s):
                emit([prediction])
    finally:
        for out in outputs:
            out.close()
        if recorder is not None:
            recorder.close()
    return status


# --- demo: the main job in one command (make demo) --------------------------------------------
#: arousal of the emulated wearer before and after the demo's mid-run change (0-1)
DEMO_AROUSAL: Final = (0.1, 0.95)
#: when the change happens, as a fraction of the demo's duration (but never before one whole
#: window plus 4 s, so that some windows lie wholly before it)
DEMO_CHANGE_AT: Final = 0.4


def demo_timing(window_s: float, duration_s: float | None) -> tuple[float, float]:
    """(duration, change time) of the demo, in seconds of signal, for a model's window.

    Default duration: 20 s, or two windows + 12 s when that is longer (v2's 32 s windows: 76 s),
    so windows lie wholly before and wholly after the change. The change comes at 40 % of the
    run, or one window + 4 s when that is later and still leaves a window after it.
    """
    if duration_s is None:
        duration_s = max(20.0, 2 * window_s + 12.0)
    change_s = DEMO_CHANGE_AT * duration_s
    if window_s + 4.0 > change_s and window_s + 4.0 + window_s <= duration_s:
        change_s = window_s + 4.0
    return duration_s, change_s


@app.command()
@friendly_errors
def demo(
    duration_s: Annotated[float | None, typer.Option(
        "--duration", help="Seconds of sensor signal to stream (default: 20, or 2 windows + 12 s: 76 for 32 s windows).",
        show_default=False)] = None,
    rate_hz: Annotated[float, typer.Option("--rate", help="Sampling rate of the emulated sensor (Hz).")] = 128.0,
    model: Annotated[Path | None, typer.Option("--model", help="An .onnx model (default: the bundled model).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table (live view), jsonl or csv.")] = "table",
    faults: Annotated[bool, typer.Option("--faults/--no-faults", help="Inject a burst of line noise.")] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the emulated skin conductance.")] = 7,
) -> None:
    """Live arousal and valence from an emulated EKD sensor, then a summary (make demo).

    The sensor is emulated on a pseudo-terminal and streamed exactly as `emotionkd-sdk stream
    --port /dev/pts/N --protocol ekd` does; the wearer's arousal rises at 40 % of the run (or one
    window + 4 s in, when later: see :func:`demo_timing`), and a
    burst of line noise shows the decoder resynchronising. The summary gives windows, quality,
    mean arousal and valence, and frames lost or bad.
    """
    from emotionkd.firmware_bridge.emulators import EkdEmulator, EmulatorConfig, require_pty
    from emotionkd.sdk.classifier import EmotionClassifier

    _require(duration_s is None or duration_s > 0, f"--duration must be positive, got {duration_s or 0:g}")
    _require(rate_hz > 0, f"--rate must be a positive number of Hz, got {rate_hz:g}")
    require_pty()
    started = time.monotonic()
    classifier = EmotionClassifier(model)
    default_s, _ = demo_timing(classifier.window_s, None)
    _require(duration_s is None or duration_s >= classifier.window_s,
             f"--duration {duration_s or 0:g} s is shorter than the model's {classifier.window_s:g} s window, so no "
             f"prediction could be made; use at least {classifier.window_s:g} (default for this model: {default_s:g})")
    duration_s, change_s = demo_timing(classifier.window_s, duration_s)
    _note_synthetic(classifier)
    low, high = DEMO_AROUSAL
    emulator = EkdEmulator(EmulatorConfig(rate_hz=rate_hz, seed=seed, arousal=low), name="EKD-DEMO")
    predictions: list[Any] = []
    table: list[Any] = []
    # the emulator's own schedule, on the signal's time axis: (time_s, what happens, action)
    # (the change comes before half-way: the synthesizer applies it within 4 s, then windows fill)
    events: list[tuple[float, str, Callable[[], None]]] = [
        (change_s, f"-- the wearer's arousal rises ({low:g} -> {high:g}) --", lambda: emulator.set_arousal(high))]
    if faults:  # garbage on the line: the decoder resynchronises, the frame it hit counts as lost
        events.append((duration_s * 0.25, "-- line noise: 48 garbage bytes --", lambda: emulator.inject_garbage(48)))
    events.sort(key=lambda event: event[0])

    def open_outputs(status: Any) -> list[Any]:
        out = _open_output(fmt, None, header=f"EKD sensor emulated on {emulator.pts_path} at {rate_hz:g} Hz "
                           f"({classifier.window_s:g} s windows every {classifier.hop_s:g} s)",
                           status=status, window_s=classifier.window_s)
        table.append(out)
        return [out, _Collect(predictions)]

    def on_block(block: Any, status: Any) -> None:
        while events and block.start_s >= events[0][0]:
            _, text, action = events.pop(0)
            action()
            if hasattr(table[0], "note"):
                table[0].note(text)
            else:
                _say(text)

    with emulator:
        _say(f"EKD sensor emulator on {emulator.pts_path}; streaming it as "
                   f"`emotionkd-sdk stream --port {emulator.pts_path} --protocol ekd` would")
        url = _source_url(emulator.pts_path, None, "ekd", None, None, None, False, None, 1.0, timeout_s=10.0)
        status = _stream_predictions(url, classifier, open_outputs, duration_s=duration_s, on_block=on_block)
        sent = emulator.counters
    _say(_demo_summary(predictions, status, change_s, sent, time.monotonic() - started))


class _Collect:
    """An output that keeps the predictions (for the demo's summary)."""

    def __init__(self, into: list[Any]) -> None:
        self.into = into

    def write(self, prediction: Any, status: Any) -> None:
        self.into.append(prediction)

    def close(self) -> None:
        pass


def _demo_summary(predictions: list[Any], status: Any, change_s: float, device: Any, wall_s: float) -> str:
    """The demo's closing lines: windows, quality, mean probabilities before/after the change."""
    from collections import Counter

    def mean(values: list[float | None]) -> str:
        present = [v for v in values if v is not None]  # None: a head the model lacks
        return f"{sum(present) / len(present):.2f}" if present else "-"

    ok = [p for p in predictions if p.ok]
    flagged = Counter(p.quality for p in predictions if not p.ok)
    before = [p for p in ok if p.end_s <= change_s]
    after = [p for p in ok if p.start_s >= change_s]
    reasons = ", ".join(f"{n} {q}" for q, n in sorted(flagged.items()))
    return "\n".join([
        "summary",
        f"  windows         {len(predictions)}: {len(ok)} ok, {sum(flagged.values())} flagged"
        + (f" ({reasons})" if reasons else ""),
        f"  mean arousal    {mean([p.arousal for p in ok])} (before the rise {mean([p.arousal for p in before])}, "
        f"after {mean([p.arousal for p in after])})",
        f"  mean valence    {mean([p.valence for p in ok])}",
        f"  frames          {status.counters.get('data_frames', 0)} received, {status.lost} lost, {status.bad} bad "
        f"(device: {device.frames_dropped} dropped, {device.garbage_bytes} garbage bytes sent)",
        f"  samples         {status.samples} in {wall_s:.1f} s wall time",
    ])


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
    from emotionkd.sdk.pipeline import block_reaches
    from emotionkd.sdk.recording import RecordingWriter
    from emotionkd.sdk.sources import open_source

    _check_source_options(protocol, baud, speed, timeout_s, unit, duration_s)
    url = _source_url(port, baud, protocol, ble, ble_name, None, simulate, source, speed, timeout_s, unit)
    writer: RecordingWriter | None = None
    stale = 0
    with open_source(url) as src:
        started = time.time()
        _say(f"recording {src.info.device} to {path} (Ctrl-C stops)")
        try:
            for block in src.blocks():
                if writer is None and block.host_time_s < started:
                    stale += len(block)  # arrived before the recording started (probe, OS buffer)
                    continue
                if writer is None:
                    info = src.info
                    writer = RecordingWriter(path, device=info.device, protocol=info.protocol, rate_hz=block.rate_hz)
                writer.write(block)
                if block_reaches(block, duration_s):
                    break
        finally:
            if writer is not None:
                writer.close()
    count = writer.samples_written if writer else 0
    _say(f"{count} samples written to {path}"
         + (f" ({stale} that arrived before the recording started were left out)" if stale else ""))


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
    _require(duration_s >= 0, f"--duration must be 0 (until Ctrl-C) or a positive number of seconds, got {duration_s:g}")
    _require(rate_hz > 0, f"--rate must be a positive number of Hz, got {rate_hz:g}")
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


class _SayHandler(logging.Handler):
    """The library's warnings (an unverified model, a dropped block) reach the person as
    :func:`_say` lines: wrapped at word breaks, so a live view below keeps its place."""

    def emit(self, record: logging.LogRecord) -> None:
        _say(f"warning: {record.getMessage()}")


def main() -> None:
    """Console-script entry point."""
    package_logger = logging.getLogger("emotionkd")
    if not package_logger.handlers:
        package_logger.addHandler(_SayHandler(logging.WARNING))
        package_logger.propagate = False
    app(prog_name="emotionkd-sdk")


if __name__ == "__main__":  # pragma: no cover
    main()
