"""``emotionkd-sdk``: the edge runtime's command line (thin typer commands).

Errors become one clear line and an exit code here, and only here. This module holds the
commands that stream (``stream``, ``demo``, ``record``); the shared parts are in
:mod:`emotionkd.sdk.cli_common`, the other commands in :mod:`emotionkd.sdk.cli_tools`. The
classifier owns the stream loop (:meth:`~emotionkd.sdk.classifier.EmotionClassifier.classify_blocks`);
these commands add only presentation: what is said, shown, recorded and written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from emotionkd.sdk.cli_common import (
    BaudOption,
    BleNameOption,
    BleOption,
    CollectOutput,
    ColumnOption,
    DurationOption,
    NoVerifyOption,
    PortOption,
    ProtocolOption,
    RateOption,
    ReplayOption,
    SimulateOption,
    SourceOption,
    SpeedOption,
    TimeoutOption,
    UnitOption,
    _check_source_options,
    _note_synthetic,
    _open_output,
    _require,
    _say,
    _SayHandler,
    _source_url,
    app,
    demo_summary,
    friendly_errors,
)


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
    timeout_s: TimeoutOption = None,
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
    elif classifier.contract.preprocessing_config().wants_rest_baseline:
        _say("note: this model learned from streams whose baseline started at the wearer's rest; give it a "
             "rest recording too (--baseline REST.csv: 2-5 min sitting still, e.g. from emotionkd-sdk record), "
             "else its baseline starts at the first samples, which should then be rest")
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
    from emotionkd.sdk.sources import open_source, parse_source

    spec = parse_source(url)  # parsed once; the source is made from the spec
    recorder: RecordingWriter | None = None
    outputs: list[Any] = []
    status = StreamStatus(source=spec.describe())

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
                status.source = info.device  # the spec's describe(), with the device's own name
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
        with open_source(spec) as src:
            status.source = src.info.device
            outputs.extend(open_outputs(status))
            for out in outputs:  # outputs that stamp predictions with the source's clock (LSL)
                if hasattr(out, "bind_source"):
                    out.bind_source(src)
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
#: default seconds of signal: skin conductance answers a stressor over minutes (the emulated
#: wearer follows Stress-Predict: about +4 % of level in 30 s, +12-33 % over 1-5 min), so a demo
#: that should show a reaction needs minutes of wearer, not seconds
DEMO_DURATION_S: Final = 360.0
#: the emulator plays the wearer this many times faster than real time by default (6 min in 1)
DEMO_SPEED: Final = 6.0


def demo_timing(window_s: float, duration_s: float | None) -> tuple[float, float]:
    """(duration, change time) of the demo, in seconds of signal, for a model's window.

    Default duration: :data:`DEMO_DURATION_S`, or two windows + 12 s when that is longer, so
    windows lie wholly before and after the change. The change comes at 40 % of the run, or one
    window + 4 s when that is later and still leaves a window after it.
    """
    if duration_s is None:
        duration_s = max(DEMO_DURATION_S, 2 * window_s + 12.0)
    change_s = DEMO_CHANGE_AT * duration_s
    if window_s + 4.0 > change_s and window_s + 4.0 + window_s <= duration_s:
        change_s = window_s + 4.0
    return duration_s, change_s


@app.command()
@friendly_errors
def demo(
    duration_s: Annotated[float | None, typer.Option(
        "--duration", help="Seconds of sensor signal to stream (default: 360, played in ~60 s at --speed 6).",
        show_default=False)] = None,
    speed: Annotated[float, typer.Option(
        "--speed", help="Seconds of signal the emulated sensor sends per second (1: real time).")] = DEMO_SPEED,
    rate_hz: Annotated[float | None, typer.Option(
        "--rate", help="Sampling rate of the emulated sensor (Hz; default: the EKD device's own).",
        show_default=False)] = None,
    model: Annotated[Path | None, typer.Option("--model", help="An .onnx model (default: the bundled model).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table (live view), jsonl or csv.")] = "table",
    faults: Annotated[bool, typer.Option("--faults/--no-faults", help="Inject a burst of line noise.")] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the emulated skin conductance.")] = 7,
) -> None:
    """Live arousal and valence from an emulated EKD sensor, then a summary (make demo).

    The sensor is emulated on a pseudo-terminal and streamed exactly as `emotionkd-sdk stream
    --port /dev/pts/N --protocol ekd` does, played ``--speed`` times faster than real time (a
    wearer's skin conductance answers over minutes); the wearer's arousal rises at 40 % of the run (or one
    window + 4 s in, when later: see :func:`demo_timing`), and a
    burst of line noise shows the decoder resynchronising. The summary gives windows, quality,
    mean arousal and valence, and frames lost or bad.
    """
    from emotionkd.firmware_bridge.emulators import (
        MAX_SPEED,
        EkdEmulator,
        EmulatorConfig,
        require_pty,
    )
    from emotionkd.sdk.classifier import EmotionClassifier

    _require(duration_s is None or duration_s > 0, f"--duration must be positive, got {duration_s or 0:g}")
    _require(rate_hz is None or rate_hz > 0, f"--rate must be a positive number of Hz, got {rate_hz or 0:g}")
    _require(0 < speed <= MAX_SPEED, f"--speed must be in (0, {MAX_SPEED:g}] seconds of signal per second, got {speed:g}")
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
    emulator = EkdEmulator(EmulatorConfig(rate_hz=rate_hz, seed=seed, arousal=low, speed=speed), name="EKD-DEMO")
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
        played = f", played at {speed:g}x real time" if speed != 1 else ""
        out = _open_output(fmt, None, header=f"EKD sensor emulated on {emulator.pts_path} at {emulator.rate_hz:g} Hz{played} "
                           f"({classifier.window_s:g} s windows every {classifier.hop_s:g} s)",
                           status=status, window_s=classifier.window_s)
        table.append(out)
        return [out, CollectOutput(predictions)]

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
        url = _source_url(emulator.pts_path, None, "ekd", None, None, None, False, None, 1.0)
        status = _stream_predictions(url, classifier, open_outputs, duration_s=duration_s, on_block=on_block)
        sent = emulator.counters
    _say(demo_summary(predictions, status, change_s, sent, time.monotonic() - started))


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
    timeout_s: TimeoutOption = None,
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


# the other commands register themselves on the same app
from emotionkd.sdk import cli_tools  # noqa: E402,F401


def main() -> None:
    """Console-script entry point."""
    package_logger = logging.getLogger("emotionkd")
    if not package_logger.handlers:
        package_logger.addHandler(_SayHandler(logging.WARNING))
        package_logger.propagate = False
    app(prog_name="emotionkd-sdk")


if __name__ == "__main__":  # pragma: no cover
    main()
