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
