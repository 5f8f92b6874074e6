"""Benchmark: prepare a full DEAP-size synthetic set (32 subjects x 40 trials x 63 s) from files.

Target: <= 30 s on 2 cores (cold: no cache), printed, never asserted. Also times the cached
load, and TorchEEG's DEAPDataset on the same files when a Python with torcheeg is available.

    .venv/bin/python tests/benchmarks/prepare_deap.py [--subjects 32] [--trials 40] [--workers 2]
        [--data DIR] [--keep] [--torcheeg-python PATH]

TorchEEG is optional and never a dependency of emotionkd (it pins scipy <= 1.10.1 and numpy < 2,
which this project's environment does not use). To include it, make a separate environment:

    python3 -m venv /tmp/teeg && /tmp/teeg/bin/pip install --only-binary scipy,numpy \\
        -c constraints.txt torch==2.13.0 "numpy<2" "scipy==1.10.1" torcheeg
    .venv/bin/python tests/benchmarks/prepare_deap.py --torcheeg-python /tmp/teeg/bin/python

(the variable EMOTIONKD_TORCHEEG_PYTHON works as well). The full synthetic set takes ~3.3 GB
of disk (float64, as DEAP ships it); it is written to a temporary folder and deleted afterwards
unless ``--data``/``--keep`` say otherwise.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from emotionkd.training.datasets import DatasetConfig, generate, load_dataset

TORCHEEG_SCRIPT = textwrap.dedent("""
    import sys, time, tempfile
    from torcheeg.datasets import DEAPDataset
    from torcheeg import transforms
    root, workers = sys.argv[1], int(sys.argv[2])
    io = tempfile.mkdtemp(prefix="torcheeg-") + "/io"  # torcheeg wants a folder it creates itself
    started = time.perf_counter()
    dataset = DEAPDataset(root_path=root, io_path=io, chunk_size=512, overlap=0, num_channel=32,
                          num_baseline=3, baseline_chunk_size=128,
                          label_transform=transforms.Compose([transforms.Select("arousal"), transforms.Binary(5.0)]),
                          num_worker=workers, verbose=False)
    elapsed = time.perf_counter() - started
    x, y = dataset[0]
    print(f"TORCHEEG {elapsed:.2f} {len(dataset)} {tuple(x.shape)}")
    import shutil
    shutil.rmtree(io.rsplit("/", 1)[0], ignore_errors=True)
""")


def _cpu_s() -> tuple[float, float]:
    """User + system CPU seconds of this process and of its finished children (the workers)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def _torcheeg_python(explicit: str | None) -> tuple[str | None, str]:
    if explicit:
        return explicit, "given"
    if os.environ.get("EMOTIONKD_TORCHEEG_PYTHON"):
        return os.environ["EMOTIONKD_TORCHEEG_PYTHON"], "EMOTIONKD_TORCHEEG_PYTHON"
    try:
        import torcheeg  # noqa: F401
    except ImportError:
        return None, ("torcheeg is not installed in this environment (it needs scipy <= 1.10.1 and "
                      "numpy < 2); see this script's docstring for a separate environment")
    return sys.executable, "this environment"


def run_torcheeg(python: str, root: Path, workers: int) -> str:
    try:
        proc = subprocess.run([python, "-c", TORCHEEG_SCRIPT, str(root), str(workers)],
                              capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"TorchEEG DEAPDataset: could not run ({exc})"
    for line in proc.stdout.splitlines():
        if line.startswith("TORCHEEG "):
            _, seconds, n, shape = line.split(" ", 3)
            return f"TorchEEG DEAPDataset (EEG only, arousal labels, io to lmdb): {float(seconds):.1f} s, {n} windows of {shape}"
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return "TorchEEG DEAPDataset: failed: " + " | ".join(tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=32)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=None, help="existing/target folder for the synthetic set")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--torcheeg-python", default=None)
    parser.add_argument("--torcheeg-subjects", type=int, default=4,
                        help="subjects given to TorchEEG (it takes ~0.5 s per trial; 0 = all)")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="emotionkd-bench-"))
    root = args.data or scratch / "deap"
    try:
        files = list((root / "data_preprocessed_python").glob("s*.dat")) if root.exists() else []
        if len(files) < args.subjects:
            started = time.perf_counter()
            generate("deap", root, subjects=args.subjects, trials=args.trials, seed=0, workers=args.workers)
            seconds = time.perf_counter() - started
            size_gb = sum(p.stat().st_size for p in (root / "data_preprocessed_python").glob("*.dat")) / 1e9
            print(f"generate: {args.subjects} x {args.trials} trials x 63 s synthetic DEAP ({size_gb:.2f} GB) "
                  f"in {seconds:.1f} s with {args.workers} workers")
        cache = scratch / "cache"
        main_before, workers_before = _cpu_s()
        started = time.perf_counter()
        data = load_dataset("deap", root, DatasetConfig(), cache, workers=args.workers, progress=False)
        cold = time.perf_counter() - started
        main_after, workers_after = _cpu_s()
        main_cpu, workers_cpu = main_after - main_before, workers_after - workers_before
        print(f"prepare (cold, {args.workers} workers): {cold:.1f} s for {len(data)} windows "
              f"(EEG {data.eeg.shape if data.eeg is not None else None}, GSR {data.gsr.shape}); target <= 30 s: "
              f"{'met' if cold <= 30 else 'MISSED'}")
        # On a shared machine the wall time depends on the neighbours; the CPU time does not.
        print(f"  CPU time: workers {workers_cpu:.1f} s, main process {main_cpu:.1f} s -> about "
              f"{workers_cpu / args.workers + main_cpu:.1f} s wall on {args.workers} idle cores (main process "
              f"counted as serial); load average now {os.getloadavg()[0]:.1f}")
        started = time.perf_counter()
        again = load_dataset("deap", root, DatasetConfig(), cache, workers=args.workers, progress=False)
        print(f"prepare (cached): {time.perf_counter() - started:.1f} s for {len(again)} windows")
        python, why = _torcheeg_python(args.torcheeg_python)
        if python is None:
            print(f"TorchEEG DEAPDataset: skipped: {why}")
        else:
            # the same subject files for both, linked into a folder of their own
            chosen = sorted((root / "data_preprocessed_python").glob("s*.dat"))
            chosen = chosen[: args.torcheeg_subjects or len(chosen)]
            subset = scratch / "subset" / "data_preprocessed_python"
            subset.mkdir(parents=True, exist_ok=True)
            for path in chosen:
                (subset / path.name).symlink_to(path.resolve())
            started = time.perf_counter()
            ours = load_dataset("deap", subset, DatasetConfig(), None, workers=args.workers, progress=False)
            print(f"on {len(chosen)} subjects: emotionkd prepare (EEG+GSR, no cache): "
                  f"{time.perf_counter() - started:.1f} s, {len(ours)} windows")
            print(f"on {len(chosen)} subjects: " + run_torcheeg(python, subset, args.workers))
    finally:
        if args.keep and args.data is None:
            print(f"kept {root}")
            shutil.rmtree(scratch / "cache", ignore_errors=True)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
