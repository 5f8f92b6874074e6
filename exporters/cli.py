"""``emotionkd-export student.pt``: command line (thin typer command; errors become exit codes
only here, as one line, never a traceback)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from emotionkd.sdk.cli import friendly_errors

app = typer.Typer(name="emotionkd-export", add_completion=False)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version as dist_version

        typer.echo(dist_version("emotionkd"))
        raise typer.Exit()


@app.command()
@friendly_errors
def export(
    checkpoint: Annotated[Path, typer.Argument(help="Student checkpoint (student.pt) written by emotionkd-train.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="ONNX file to write (default: next to the checkpoint, .onnx or .int8.onnx).")] = None,
    int8: bool = typer.Option(False, "--int8", help="Quantise to INT8 with onnxruntime; accuracy and speed change are measured and stored."),
    int8_mode: str = typer.Option("auto", "--int8-mode", help="auto (measure dynamic and static, keep the better) | dynamic | static."),
    int8_min_agreement: float = typer.Option(0.9, "--int8-min-agreement", help="Refuse an INT8 model agreeing with FP32 on fewer held-out windows than this (0-1)."),
    opset: int = typer.Option(18, "--opset", help="ONNX opset (17 or newer)."),
    windows: Annotated[Path | None, typer.Option("--windows", help=".npz of preprocessed windows to check on (a prepared dataset, or gsr (N, W) + optional 0/1 labels (N, 2)); default: synthetic recordings.")] = None,
    tolerance: float = typer.Option(1e-4, "--tolerance", help="Largest accepted |onnxruntime - PyTorch| probability difference."),
    torch_exporter: str = typer.Option("dynamo", "--torch-exporter", help="dynamo (torch.export) | torchscript (legacy tracer)."),
    inference_twin: bool = typer.Option(True, "--inference-twin/--plain-graph", help="Export the students' inference twin (BatchNorm folded, fused Q/K/V: same outputs, faster graph) or the training modules as they are."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the emotionkd version and exit."),
) -> None:
    """Export a student checkpoint to ONNX (arousal + valence in one graph, contract inside),
    checked against PyTorch before it is written."""
    from emotionkd.exporters.onnx_export import ExportOptions, export_checkpoint

    # The torch.export-based exporter logs notes about optional packages (torchvision) that do
    # not concern this graph; torch sets its loggers up on import, so quieten them after it.
    for noisy in ("torch.onnx", "onnxscript"):  # e.g. "conversion falls back to the onnx C API"
        logging.getLogger(noisy).setLevel(logging.ERROR)
    options = ExportOptions(opset=opset, int8=int8, int8_mode=int8_mode, int8_min_agreement=int8_min_agreement,
                            parity_tolerance=tolerance, torch_exporter=torch_exporter,
                            inference_twin=inference_twin)
    report = export_checkpoint(checkpoint, output, options, windows=windows)
    parity = report.contract.export["parity"]
    typer.echo(f"wrote {report.path} ({report.size_bytes / 1e6:.2f} MB, opset {report.contract.export['opset']}, "
               f"{'INT8' if int8 else 'FP32'})")
    typer.echo(f"parity FP32 onnxruntime vs PyTorch: max |diff| {report.parity_max_abs_diff:.2e} "
               f"(tolerance {tolerance:g}) on {parity['windows']} windows from {parity['reference']}")
    q = report.quantization
    if q is not None:
        agreement = ", ".join(f"{t} {v:.1%}" for t, v in q["agreement"].items())
        typer.echo(f"INT8 ({q['mode']}): class agreement with FP32 on {q['held_out_windows']} held-out "
                   f"windows: {agreement}; max |prob diff| {q['max_abs_prob_diff']:.3f}")
        if "macro_f1" in q:
            f1 = ", ".join(f"{t} {q['macro_f1']['fp32'][t]:.3f} -> {q['macro_f1']['int8'][t]:.3f}"
                           for t in q["macro_f1"]["int8"])
            typer.echo(f"macro-F1 FP32 -> INT8: {f1}")
        lat = q["latency_ms"]
        typer.echo(f"latency per window (1 thread, batch 1): FP32 {lat['fp32']:.2f} ms -> INT8 "
                   f"{lat['int8']:.2f} ms (x{q['speedup']:.2f}); size {q['size_bytes']['fp32'] / 1e6:.2f} "
                   f"-> {q['size_bytes']['int8'] / 1e6:.2f} MB")
        for name, c in q["candidates"].items():
            agreement = ", ".join(f"{t} {v:.1%}" for t, v in c["agreement"].items())
            typer.echo(f"  candidate {name}: agreement {agreement}, {c['latency_ms']:.2f} ms")
    typer.echo(f"model card: emotionkd-sdk info {report.path}")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="emotionkd-export")


if __name__ == "__main__":  # pragma: no cover
    main()
