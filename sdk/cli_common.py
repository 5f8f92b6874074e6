"""What every ``emotionkd-sdk`` command shares: the typer app, errors to exit codes, messages
for the person, the source options and the one source URL they name, output formats.

The commands live in :mod:`emotionkd.sdk.cli` (stream, demo, record) and
:mod:`emotionkd.sdk.cli_tools` (plot, devices, simulate, bench, info, version).
"""

from __future__ import annotations

import logging
import sys
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
TimeoutOption = Annotated[float | None, typer.Option(
    "--timeout", help="Serial/BLE: seconds to wait for the first sample before giving up (default: the URL's, 10).",
    show_default=False)]
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


def _check_source_options(protocol: str, baud: int | None, speed: float, timeout_s: float | None, unit: str | None,
                          duration_s: float | None) -> None:
    """The options every source takes, checked before a port, file or model is touched."""
    from emotionkd.firmware_bridge.devices import PROTOCOLS
    from emotionkd.firmware_bridge.units import normalise_unit

    known = ("auto", *PROTOCOLS)
    _require(protocol.lower() in known, f"unknown --protocol {protocol!r}; use one of {', '.join(known)}")
    _require(baud is None or baud > 0, f"--baud must be a positive number of bits per second, got {baud}")
    _require(speed >= 0, f"--speed must be 0 (as fast as possible) or positive, got {speed:g}")
    _require(timeout_s is None or timeout_s > 0, f"--timeout must be a positive number of seconds, got {timeout_s or 0:g}")
    _require(duration_s is None or duration_s > 0,
             f"--duration must be a positive number of seconds, got {duration_s:g}" if duration_s is not None else "")
    if unit is not None:
        normalise_unit(unit)  # raises a ConfigError naming the known units


def _source_url(port: str | None, baud: int | None, protocol: str, ble: str | None, ble_name: str | None,
                replay: Path | None, simulate: bool, source: str | None, speed: float,
                timeout_s: float | None = None, unit: str | None = None, *, column: str | None = None,
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
    # what the options leave out, the URL leaves out: its parser's defaults apply
    device = {**({"timeout": f"{timeout_s:g}"} if timeout_s is not None else {}), **({"unit": unit} if unit else {}),
              **({"rate": f"{rate_hz:g}"} if rate_hz is not None else {})}
    if port:
        return f"serial://{quote(port)}?" + urlencode({"protocol": protocol, **({"baud": baud} if baud else {}), **device})
    if ble:
        return f"ble://{ble}?" + urlencode({"protocol": protocol, **device})  # parse_ble resolves auto
    if ble_name:
        return "ble://?" + urlencode({"name": ble_name, "protocol": protocol, **device})
    if replay:
        extra = {k: v for k, v in (("unit", unit), ("column", column),
                                   ("rate", None if rate_hz is None else f"{rate_hz:g}")) if v is not None}
        return f"replay://{quote(str(replay))}?" + urlencode({"speed": f"{speed:g}", **extra})
    if simulate:
        return f"sim://?speed={speed:g}"  # the simulator's own rate (SimSpec)
    return str(source)


def _open_output(fmt: str, output: Path | None, header: str, status: Any = None, window_s: float = 4.0) -> Any:
    from emotionkd.sdk import live_view, outputs

    stream = sys.stdout if output is None else open(output, "w", encoding="utf-8", newline="")  # noqa: SIM115
    if fmt == "table":
        return live_view.TableOutput(stream, header=header, status=status, window_s=window_s)
    if fmt == "jsonl":
        return outputs.JsonlOutput(stream)
    if fmt == "csv":
        return outputs.CsvOutput(stream)
    from emotionkd.firmware_bridge.errors import ConfigError

    raise ConfigError(f"unknown --format {fmt!r}; use table, jsonl or csv")


def _note_synthetic(classifier: Any) -> None:
    """Say once, at start, that a model trained on synthetic data measures nothing."""
    if classifier.trained_on_synthetic_data:
        _say(f"note: model {classifier.model.path.name} was trained on synthetic data only; "
             "its outputs demonstrate the pipeline, they do not measure emotion")
    elif classifier.contract.provenance_note():  # heads of mixed origin: say which met real skin
        _say(f"note: model {classifier.model.path.name}: {classifier.contract.provenance_note()}")


class _SayHandler(logging.Handler):
    """The library's warnings (an unverified model, a dropped block) reach the person as
    :func:`_say` lines: wrapped at word breaks, so a live view below keeps its place."""

    def emit(self, record: logging.LogRecord) -> None:
        _say(f"warning: {record.getMessage()}")


class CollectOutput:
    """An output that keeps the predictions (for the demo's summary)."""

    def __init__(self, into: list[Any]) -> None:
        self.into = into

    def write(self, prediction: Any, status: Any) -> None:
        self.into.append(prediction)

    def close(self) -> None:
        pass


def demo_summary(predictions: list[Any], status: Any, change_s: float, device: Any, wall_s: float) -> str:
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
