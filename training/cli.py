"""``emotionkd-train``: command line (thin typer commands; errors become exit codes only here)."""

from __future__ import annotations

import typer

app = typer.Typer(name="emotionkd-train", no_args_is_help=True, add_completion=False)


@app.command()
def version() -> None:
    """Print the emotionkd version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("emotionkd"))


def main() -> None:
    """Console-script entry point."""
    app(prog_name="emotionkd-train")
