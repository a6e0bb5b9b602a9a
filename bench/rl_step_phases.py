"""Where an RL step's time goes: generate / decode / score / update, per task and system, from a results folder.

    python bench/rl_step_phases.py results        # after `make run` (or any suite run)

Reads every ``rl/<task>/<system>/s<seed>/summary.json`` (its ``phase_seconds``: the mean seconds per step of each
phase the RL loop measures, speechrl.training.rl) and prints them and their shares. Wall
times: they include the load of the jobs running beside it (Snakemake runs two at a time on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

PHASES = ("generate", "decode", "score", "update")


def phases(results: Path) -> dict[tuple[str, str], dict[str, float]]:
    """(task, system) -> mean seconds per step of each phase, averaged over seeds (each seed's ``phase_seconds``)."""
    acc: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for f in sorted(results.glob("rl/*/*/s*/summary.json")):
        task, system = f.parts[-4], f.parts[-3]
        for k, v in json.loads(f.read_text()).get("phase_seconds", {}).items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                acc[(task, system)][k].append(float(v))
    return {key: {k: sum(v) / len(v) for k, v in d.items() if v} for key, d in acc.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", type=Path, nargs="?", default=Path("results"))
    table = phases(ap.parse_args().results)
    if not table:
        raise SystemExit("no RL summary with phase timings under the results folder")
    print(f"{'task':6} {'system':28} " + " ".join(f"{p:>16}" for p in PHASES) + f" {'total s':>8}")
    for (task, system), d in sorted(table.items()):
        total = sum(d.get(p, 0.0) for p in PHASES)
        cells = " ".join(f"{d.get(p, math.nan):7.2f} s ({100 * d.get(p, 0.0) / total:3.0f}%)" if total else f"{'-':>16}"
                         for p in PHASES)
        print(f"{task:6} {system:28} {cells} {total:8.2f}")


if __name__ == "__main__":
    main()
