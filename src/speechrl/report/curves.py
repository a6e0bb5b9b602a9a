"""Training-curve figures from the RL jobs' ``summary.json`` histories (matplotlib, PNG).

Each RL summary holds ``task``, ``system``, ``seed`` and ``history``: one dict per step with
``reward/mean``, ``actor/kl``, ``response/length`` and ``actor/entropy``. One figure per task:
four panels, one line per system (mean over seeds, shaded min-max band when there are several).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from speechrl.io import atomic_path, read_json
from speechrl.report.tables import system_name, task_name

PANELS = (("reward/mean", "reward (train rollouts)"), ("actor/kl", "KL to reference"),
          ("response/length", "completion length (tokens)"), ("actor/entropy", "entropy (nats/token)"))


def load_histories(paths: list[Path]) -> dict[str, dict[str, list[list[dict[str, Any]]]]]:
    """``task -> system -> [history per seed]``; a file without those keys is a ``ValueError`` naming it."""
    out: dict[str, dict[str, list[list[dict[str, Any]]]]] = {}
    for p in paths:
        data = read_json(p)
        missing = [k for k in ("task", "system", "history") if k not in data]
        if missing:
            raise ValueError(f"{p}: RL summary without {', '.join(missing)}")
        out.setdefault(data["task"], {}).setdefault(data["system"], []).append(data["history"])
    return out


def _series(runs: list[list[dict[str, Any]]], key: str) -> tuple[list[int], list[float], list[float], list[float]]:
    steps = sorted({h["step"] for run in runs for h in run})
    by_step = {s: [v for run in runs for h in run if h["step"] == s and (v := h.get(key)) is not None
                   and isinstance(v, (int, float)) and math.isfinite(v)] for s in steps}
    steps = [s for s in steps if by_step[s]]
    return (steps, [sum(by_step[s]) / len(by_step[s]) for s in steps],
            [min(by_step[s]) for s in steps], [max(by_step[s]) for s in steps])


def plot_curves(histories: dict[str, dict[str, list[list[dict[str, Any]]]]], out_dir: Path, smooth: int = 5) -> list[tuple[str, str]]:
    """Write ``curves_<task>.png`` per task into ``out_dir``; returns ``(caption, file name)`` pairs.

    Lines are a trailing moving average over ``smooth`` steps (the band is not smoothed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    for task, systems in histories.items():
        fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.4), constrained_layout=True)
        for ax, (key, label) in zip(axes, PANELS):
            for system, runs in systems.items():
                steps, mean, lo, hi = _series(runs, key)
                if not steps:
                    continue
                avg = [sum(mean[max(0, i - smooth + 1):i + 1]) / len(mean[max(0, i - smooth + 1):i + 1]) for i in range(len(mean))]
                line, = ax.plot(steps, avg, label=f"{system_name(system)} (n={len(runs)})", linewidth=1.4)
                if len(runs) > 1:
                    ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.12, linewidth=0)
            ax.set_title(label, fontsize=10)
            ax.set_xlabel("RL step")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7, loc="best")
        fig.suptitle(f"{task_name(task)}: training curves (mean over seeds, {smooth}-step moving average; band: min-max)", fontsize=10)
        name = f"curves_{task}.png"
        with atomic_path(out_dir / name) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        figures.append((f"{task_name(task)}: reward, KL, length and entropy per RL step", name))
    return figures
