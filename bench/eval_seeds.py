"""Benchmark one evaluate job per system covering all its seeds against one job per seed (what the suite
did before), on a finished suite's data and models:

    python bench/eval_seeds.py results [--task sqa] [--system sft] [--seeds 0 1 2]

Runs ``speechrl evaluate --seeds 0 1 2`` once, then ``speechrl evaluate --seed N`` once per seed, each a fresh
process as Snakemake starts it, into a temporary folder (the suite's results are not touched), and prints both wall
times and their ratio (no MLflow run: that would cost each process more). The difference is what each extra process pays: imports (torch, transformers, MLflow), the
model and test split, the scorers' models (WordNet for METEOR, BERTScore, DNSMOS, the ASR). Printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def evaluate(results: Path, task: str, system: str, out: str, seed_args: list[str]) -> float:
    model = results / ("sft" if system == "sft" else "rl") / task / ("" if system == "sft" else system + "/s{seed}") / "model"
    cmd = [sys.executable, "-m", "speechrl.cli", "evaluate", "--config", str(results / "config" / task / "evaluate.yaml"),
           "--task", task, "--system", system, "--data", str(results / "data" / task), "--model", str(model), "--out", out,
           *seed_args]
    if (results / "tokens" / task).is_dir():
        cmd += ["--tokens", str(results / "tokens" / task)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path, help="a finished suite's results folder")
    ap.add_argument("--task", default="sqa")
    ap.add_argument("--system", default="sft", help="sft or an RL system of the suite")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-eval-seeds-") as tmp:
        one = evaluate(a.results, a.task, a.system, f"{tmp}/one/s{{seed}}", ["--seeds", *map(str, a.seeds)])
        each = sum(evaluate(a.results, a.task, a.system, f"{tmp}/each/s{s}", ["--seed", str(s)]) for s in a.seeds)
    print(f"evaluate {a.task} {a.system}, seeds {' '.join(map(str, a.seeds))}: one process {one:.1f} s, "
          f"one process per seed {each:.1f} s (x{each / one:.2f})")


if __name__ == "__main__":
    main()
