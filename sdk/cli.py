"""``emotionkd-sdk``: the edge runtime's command line (thin typer commands).

Errors become one clear line and an exit code here, and only here.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

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
) -> None:
    """Stream a simulated GSR sensor through the preprocessing core and show each 4 s window."""
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
