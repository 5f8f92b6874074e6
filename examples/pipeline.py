"""The whole mission on synthetic DEAP-format data, one stage after another (``make pipeline``).

1. **synth**    write a synthetic dataset in DEAP's own file format (``emotionkd-train synth``);
2. **teacher**  train the EEG+GSR teachers, arousal and valence (``emotionkd-train teacher``);
3. **distill**  distil them into GSR-only students with the adaptive feedback loop
                (``emotionkd-train distill --feedback --teacher …``);
4. **evaluate** train the GSR-only baseline student without a teacher on the same split
                (``emotionkd-train student``) and compare teacher, baseline and distilled
                student on the held-out subject; ``--loso-folds N`` adds N folds of the full
                leave-one-subject-out comparison (``emotionkd-train evaluate``, which retrains
                all four methods per fold: minutes per fold);
5. **export**   ONNX, FP32 and INT8, each checked against PyTorch (``emotionkd-export``);
6. **stream**   the INT8 model on an EKD device emulated on a pseudo-terminal, through the
                SDK (what ``emotionkd-sdk stream --port /dev/pts/N`` does), the wearer's arousal
                rising half-way.

Every stage is the project's own command line, run as a subprocess with its progress bars, so
each can be repeated by hand (the commands are printed). The run ends with a report
(``OUT/report.md``): stage times, held-out metrics, model sizes, INT8 agreement, streaming.

    python examples/pipeline.py                         # the `pipeline` preset, ~5-10 min on 2 cores
    python examples/pipeline.py --out runs/mine --stream-s 20
    python examples/pipeline.py --stages synth,teacher,distill,export --bundle sdk/models/emotionkd-student.onnx
                                                        # `make bundled-model`

Options after ``--set`` go to every training command (``--set teacher_optim.epochs=2``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

STAGES = ("synth", "teacher", "distill", "evaluate", "export", "stream")
BIN = Path(sys.executable).parent


def run(stage: str, argv: list[str], timings: dict[str, float]) -> None:
    """Run one stage's command (inheriting the terminal, so its progress bars show)."""
    exe = BIN / argv[0]
    command = [str(exe) if exe.exists() else argv[0], *argv[1:]]
    print(f"\n== {stage}: {shlex.join(argv)}", flush=True)
    started = time.monotonic()
    done = subprocess.run(command, check=False)
    timings[stage] = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"pipeline: stage {stage} failed (exit code {done.returncode}); see the output above")
    print(f"== {stage} done in {timings[stage]:.0f} s", flush=True)


def stream_stage(model: Path, seconds: float) -> dict[str, Any]:
    """Stream an emulated EKD device through the model; the wearer's arousal rises half-way."""
    from emotionkd.firmware_bridge.emulators import EkdEmulator, EmulatorConfig
    from emotionkd.sdk import EmotionClassifier

    clf = EmotionClassifier(model)
    # The first prediction needs one whole window (32 s for an ekd-gsr v2 model): stream at
    # least that plus a few hops, so the report always has predictions to show.
    window_s = clf.contract.window_samples / clf.contract.sample_rate_hz
    seconds = max(seconds, window_s + 6.0)
    rows: list[Any] = []
    with EkdEmulator(EmulatorConfig(rate_hz=128, seed=7, arousal=0.1), name="EKD-PIPELINE") as emu:
        url = f"serial://{emu.pts_path}?protocol=ekd"
        print(f"streaming {url} through {model.name} for {seconds:g} s", flush=True)
        for p in clf.stream(url, duration_s=seconds):
            if p.end_s >= seconds / 2:
                emu.set_arousal(0.95)
            rows.append(p)
            what = f"arousal {p.arousal:.2f}  valence {p.valence:.2f}" if p.ok else f"{p.quality}"
            print(f"  {p.start_s:5.1f}-{p.end_s:5.1f} s  {what}", flush=True)
    ok = [p for p in rows if p.ok]

    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 3) if values else None

    return {"url": url, "seconds": seconds, "windows": len(rows), "ok": len(ok),
            "mean_arousal_first_half": mean([p.arousal for p in ok if p.end_s < seconds / 2]),
            "mean_arousal_second_half": mean([p.arousal for p in ok if p.end_s >= seconds / 2 + 4]),
            "mean_valence": mean([p.valence for p in ok])}


def held_out_metrics(run_dir: Path, baseline: Path) -> dict[str, Any]:
    """Held-out-subject metrics the training commands stored in their checkpoints."""
    from emotionkd.training.checkpoint import load_student_checkpoint, load_teacher_checkpoint

    found: dict[str, Any] = {}
    if (run_dir / "teacher.pt").exists():
        found["teacher (EEG+GSR)"] = load_teacher_checkpoint(run_dir / "teacher.pt")[2].get("metrics", {})
    if baseline.exists():
        found["student, no teacher (GSR)"] = load_student_checkpoint(baseline).metrics
    if (run_dir / "student.pt").exists():
        found["student, KD + feedback (GSR)"] = load_student_checkpoint(run_dir / "student.pt").metrics
    return {k: v for k, v in found.items() if v}


def model_facts(path: Path) -> dict[str, Any]:
    from emotionkd.sdk.model_card import read_model_info

    facts = read_model_info(path).to_dict()
    contract = facts.get("contract", {})
    export = contract.get("export") or {}
    return {"file": str(path), "bytes": path.stat().st_size, "int8": export.get("int8"),
            "export": export, "provenance": contract.get("provenance"), "metrics": contract.get("metrics")}


def report(out: Path, timings: dict[str, float], wall_s: float, facts: dict[str, Any]) -> str:
    lines = ["# emotionkd pipeline report", "",
             f"Synthetic DEAP-format data, preset `{facts['preset']}`, seed {facts['seed']}; "
             f"wall time **{wall_s / 60:.1f} min** on {os.cpu_count()} CPU(s).", "",
             "| stage | seconds |", "|---|---|"]
    lines += [f"| {stage} | {seconds:.0f} |" for stage, seconds in timings.items()]
    held_out = facts.get("held_out") or {}
    if held_out:
        lines += ["", "Held-out subject (never seen in training):", "",
                  "| model | target | accuracy | macro-F1 | majority rate |", "|---|---|---|---|---|"]
        for method, by_target in held_out.items():
            lines += [f"| {method} | {t} | {m['accuracy']:.3f} | {m.get('macro_f1', float('nan')):.3f} | "
                      f"{m['majority_rate']:.3f} |" for t, m in by_target.items()]
    if facts.get("evaluation"):
        lines += ["", "Leave-one-subject-out (first folds; mean over folds):", "", facts["evaluation"]]
    for kind in ("fp32", "int8"):
        model = facts.get(kind)
        if not model:
            continue
        export = model["export"]
        line = (f"\n{kind.upper()} model: `{model['file']}`, {model['bytes'] / 1024:.0f} KiB, max |ONNX - PyTorch| "
                f"{export.get('parity', {}).get('max_abs_diff', float('nan')):.1e}")
        q = export.get("quantization") or {}
        if q:
            agreement = ", ".join(f"{t} {v:.1%}" for t, v in q.get("agreement", {}).items())
            latency = q.get("latency_ms", {})
            line += (f"; {q.get('mode')} INT8, label agreement with FP32 on {q.get('held_out_windows')} held-out "
                     f"windows: {agreement}; 1-thread latency {latency.get('fp32', float('nan')):.2f} ms FP32 -> "
                     f"{latency.get('int8', float('nan')):.2f} ms INT8")
        lines.append(line)
    if facts.get("stream"):
        s = facts["stream"]
        lines += ["", f"Streaming the INT8 model from an emulated EKD device ({s['url']}): {s['windows']} windows, "
                  f"{s['ok']} ok; mean arousal {s['mean_arousal_first_half']} before the rise, "
                  f"{s['mean_arousal_second_half']} after; mean valence {s['mean_valence']}."]
    lines += ["", "Trained on synthetic data: these numbers check that the pipeline works end to end; "
              "they say nothing about emotion recognition from real skin conductance.", ""]
    text = "\n".join(lines)
    (out / "report.md").write_text(text, encoding="utf-8")
    (out / "report.json").write_text(json.dumps({"timings_s": timings, "wall_s": wall_s, **facts},
                                                indent=1, default=str) + "\n", encoding="utf-8")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/pipeline"), help="output folder")
    parser.add_argument("--preset", default="pipeline", help="emotionkd-train preset (default: pipeline)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the training")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    parser.add_argument("--loso-folds", type=int, default=0,
                        help="evaluate: also run this many leave-one-subject-out folds of all four methods")
    parser.add_argument("--stream-s", type=float, default=12.0,
                        help="seconds to stream at the end (at least one model window + 6 s)")
    parser.add_argument("--bundle", type=Path, default=None, help="copy the INT8 model here (the bundled model)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs, CI)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="section.key=value for every training command (repeatable)")
    args = parser.parse_args()
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage(s) {unknown}; choose from {','.join(STAGES)}")

    from emotionkd.training.config import load_config, parse_override

    out = args.out  # relative paths: they end up in the model's provenance notes
    data_dir = out / "data" / "synthetic-deap"
    overrides = [f"data.path={json.dumps(str(data_dir))}", f"data.seed={args.seed}",
                 f"name={json.dumps('run')}", *args.overrides]
    config = load_config(preset=args.preset, overrides=dict(parse_override(o) for o in overrides))
    run_dir = out / "run"
    common = ["--preset", args.preset, "--seed", str(args.seed), "--out", str(out),
              *[a for o in overrides for a in ("--set", o)], *(["--no-progress"] if args.no_progress else [])]
    timings: dict[str, float] = {}
    facts: dict[str, Any] = {"preset": args.preset, "seed": args.seed}
    started = time.monotonic()

    if "teacher" in stages and run_dir.exists():
        shutil.rmtree(run_dir)  # a fresh run: training would otherwise resume from the saved states
    if "synth" in stages:
        if data_dir.exists():
            shutil.rmtree(data_dir)  # the same seed gives the same bytes: regenerate, never reuse stale files
        d = config.data
        run("synth", ["emotionkd-train", "synth", "--format", "deap", "--subjects", str(d.subjects),
                      "--trials", str(d.trials), "--trial-s", f"{d.trial_s:g}", "--seed", str(d.seed),
                      "--workers", str(d.workers), "--out", str(data_dir)], timings)
    if "teacher" in stages:
        run("teacher", ["emotionkd-train", "teacher", *common], timings)
    if "distill" in stages:
        run("distill", ["emotionkd-train", "distill", "--feedback", "--teacher", str(run_dir / "teacher.pt"),
                        *common], timings)
    student_pt = run_dir / "student.pt"
    if "evaluate" in stages:
        baseline = [f"name={json.dumps('baseline')}" if a == f"name={json.dumps('run')}" else a for a in common]
        shutil.rmtree(out / "baseline", ignore_errors=True)  # fresh, not resumed from old states
        run("evaluate: baseline student", ["emotionkd-train", "student", *baseline], timings)
        if args.loso_folds > 0:
            run("evaluate: LOSO", ["emotionkd-train", "evaluate", *common, "--protocol", "loso",
                                   "--set", f"evaluation.max_folds={args.loso_folds}"], timings)
            facts["evaluation"] = (run_dir / "results.md").read_text(encoding="utf-8").strip()
    facts["held_out"] = held_out_metrics(run_dir, out / "baseline" / "student.pt")
    fp32, int8 = run_dir / "student.onnx", run_dir / "student.int8.onnx"
    if "export" in stages:
        run("export fp32", ["emotionkd-export", str(student_pt), "-o", str(fp32)], timings)
        run("export int8", ["emotionkd-export", str(student_pt), "--int8", "-o", str(int8)], timings)
    for kind, path in (("fp32", fp32), ("int8", int8)):
        if path.exists():
            facts[kind] = model_facts(path)
    if "stream" in stages:
        print("\n== stream", flush=True)
        t0 = time.monotonic()
        facts["stream"] = stream_stage(int8 if int8.exists() else fp32, args.stream_s)
        timings["stream"] = time.monotonic() - t0
    if args.bundle is not None:
        args.bundle.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(int8, args.bundle)
        print(f"\nbundled model: {args.bundle} ({args.bundle.stat().st_size / 1024:.0f} KiB)")
    text = report(out, timings, time.monotonic() - started, facts)
    print("\n" + text)
    print(f"wrote {out / 'report.md'}")


if __name__ == "__main__":
    main()
