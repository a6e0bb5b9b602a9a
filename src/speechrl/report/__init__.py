"""The paper-style report: ``metrics.json`` files -> tables.md, tables.tex, index.html, summary.json.

    build_report(files, out_dir, title="embedded", decoding="sampled",
                 system_order=["base", "sft", "grpo"], metrics=["bleu", "chrf", ...])

Tables: the main one for ``decoding`` (mean +- 95% CI over seeds) followed by the papers' own
numbers (:mod:`speechrl.report.paper`), one per other decoding, the per-seed values, the reward
ablation and LEAF vs GRPO; figures: training curves (:mod:`speechrl.report.curves`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from speechrl.io import write_json, write_text
from speechrl.report.html import to_html
from speechrl.report.curves import load_histories, plot_curves
from speechrl.report.results import Result, as_grid, load_result, load_results, mean_ci, per_seed
from speechrl.report.tables import Table, build_table, metric_name, task_name, to_latex, to_markdown

__all__ = ["build_report", "load_result", "load_results", "Result", "Table"]


def _one_or_all(values: list[int]) -> int | list[int]:
    distinct = sorted(set(values))
    return distinct[0] if len(distinct) == 1 else distinct


def _task_info(results: list[Result]) -> dict[str, dict[str, Any]]:
    """``task -> {"n", "seed"}`` (a list where the files of a task disagree)."""
    info: dict[str, dict[str, Any]] = {}
    for task in dict.fromkeys(r.task for r in results):
        rs = [r for r in results if r.task == task]
        info[task] = {"n": _one_or_all([r.n for r in rs]), "seed": _one_or_all([r.seed for r in rs])}
    return info


def _note(info: dict[str, Any]) -> str:
    n, seed = info["n"], info["seed"]
    n_text = "/".join(map(str, n)) + " (differs between systems)" if isinstance(n, list) else str(n)
    seed_text = ("seeds " + "/".join(map(str, seed))) if isinstance(seed, list) else f"seed {seed}"
    return f"n = {n_text} test examples, {seed_text}"


def _seed_table(results: list[Result], decoding: str, metric: str, order: list[str], notes: dict[str, str]) -> Table:
    """One column per seed (and the mean) of ``metric``: the per-seed figures behind the means."""
    seeds_by = per_seed(results, decoding)
    seeds = sorted({sd for systems in seeds_by.values() for runs in systems.values() for sd in runs})
    grid = {task: {sys: {f"seed {sd}": runs[sd].get(metric) for sd in runs} for sys, runs in systems.items()}
            for task, systems in seeds_by.items()}
    return build_table(f"seeds_{decoding}", f"{metric_name(metric)} per seed, {decoding} decoding", grid, order,
                       [f"seed {sd}" for sd in seeds], notes, compare=False)


def _subset(grid: dict[str, dict[str, Any]], systems: list[str], tasks: list[str] | None = None) -> dict[str, dict[str, Any]]:
    return {t: {s: v for s, v in rows.items() if s in systems} for t, rows in grid.items() if tasks is None or t in tasks}


def _paired_diff(results: list[Result], decoding: str, a: str, b: str, metrics: list[str]) -> tuple[dict, dict]:
    """``task -> {"diff:a-b": metric -> mean of (a - b) over the seeds both have}`` and the CIs."""
    seeds_by = per_seed(results, decoding)
    grid: dict[str, dict[str, dict[str, float | None]]] = {}
    cis: dict[str, dict[str, dict[str, float | None]]] = {}
    for task, systems in seeds_by.items():
        if a not in systems or b not in systems:
            continue
        key, row, ci_row = f"diff:{a}-{b}", {}, {}
        for m in metrics:
            d = [systems[a][sd][m] - systems[b][sd][m] for sd in systems[a]
                 if sd in systems[b] and systems[a][sd].get(m) is not None and systems[b][sd].get(m) is not None]
            row[m], ci_row[m] = mean_ci(d) if d else (None, None)
        grid[task], cis[task] = {key: row}, {key: ci_row}
    return grid, cis


def _paper_table(p: Any, metrics: list[str]) -> Table:
    cols = [m for m in metrics if m in p.metrics] or list(p.metrics)
    grid = {setting: dict(systems) for setting, systems in p.rows.items()}
    note = f"Source: {p.source}. " + " ".join(p.notes)
    return build_table(f"paper_{p.key}", p.title, grid, ["base", "sft"], cols, {}, note=note)


def build_report(
    metric_files: list[Path],
    out_dir: Path,
    *,
    title: str,
    decoding: str,
    system_order: list[str],
    metrics: list[str],
    curves: list[Path] = (),
    ablation: tuple[str, list[str]] | None = None,
    paper: bool = True,
) -> dict[str, Any]:
    """Write the report files atomically into ``out_dir``; return the summary (= summary.json).

    Tables: the main one for ``decoding`` (mean +- 95% CI over seeds; the paper's published numbers
    follow it when ``paper``), the other decodings, the per-seed values of the first metric, the reward
    ablation (``ablation = (algorithm, [its ablation systems])``), and LEAF vs GRPO paired by seed when
    both ran. Figures: training curves from the RL ``summary.json`` files in ``curves``."""
    if not metrics:
        raise ValueError("build_report: no metrics to show")
    results = load_results([Path(p) for p in metric_files])
    found = sorted({d for r in results for d in r.decodings})
    if decoding not in found:
        raise ValueError(f"decoding '{decoding}' is in none of the metrics files (found: {', '.join(found) or 'none'})")
    info = _task_info(results)
    notes = {t: _note(i) for t, i in info.items()}
    abl_algo, abl_systems = ablation or ("", [])
    main_rows = [s for s in dict.fromkeys(r.system for r in results) if s not in abl_systems]
    tables: list[Table] = []
    for dec in [decoding, *(d for d in found if d != decoding)]:
        grid, cis = as_grid(results, dec)
        tables.append(build_table(dec, f"{title}: test results, {dec} decoding", _subset(grid, main_rows), system_order, metrics, notes, cis))
        if dec == decoding and paper:
            from speechrl.report.paper import paper_tables_for

            tables += [_paper_table(p, metrics) for p in paper_tables_for(main_rows, list(info))]
    grid, cis = as_grid(results, decoding)
    tables.append(_seed_table(results, decoding, metrics[0], system_order + abl_systems, notes))
    if abl_systems:
        rows = ["sft", abl_algo, *abl_systems]
        tasks = [t for t, sys in grid.items() if any(s in sys for s in abl_systems)]
        tables.append(build_table("ablation", f"Reward ablation: {abl_algo.upper()} trained on each reward alone, {decoding} decoding",
                                  _subset(grid, rows, tasks), rows, metrics, notes, _subset(cis, rows, tasks),
                                  note=f"{abl_algo.upper()} without a reward in parentheses uses rl.rewards (the main runs)."))
    if any("leaf" in sys and "grpo" in sys for sys in grid.values()):
        d_grid, d_cis = _paired_diff(results, decoding, "leaf", "grpo", metrics)
        lg = {t: {**_subset(grid, ["grpo", "leaf"])[t], **d_grid.get(t, {})} for t in d_grid}
        lc = {t: {**_subset(cis, ["grpo", "leaf"])[t], **d_cis.get(t, {})} for t in d_grid}
        tables.append(build_table("leaf_vs_grpo", f"LEAF vs GRPO (same rollouts, steps and learning rate), {decoding} decoding",
                                  lg, ["grpo", "leaf"], metrics, notes, lc, compare=False,
                                  note="LEAF − GRPO: mean of the per-seed differences, 95% CI over seeds (paired)."))

    out_dir = Path(out_dir)
    figures = plot_curves(load_histories([Path(c) for c in curves]), out_dir) if curves else []
    write_text(out_dir / "tables.md", f"# {title}\n\n" + "\n".join(to_markdown(t) for t in tables) + _md_figures(figures) + _md_sources(results))
    write_text(out_dir / "tables.tex", "\n".join(to_latex(t) for t in tables))
    write_text(out_dir / "index.html", to_html(title, tables, results, figures))
    summary = {
        "title": title,
        "decoding": decoding,
        "decodings": [decoding, *(d for d in found if d != decoding)],
        "metrics": list(metrics),
        "tasks": {t: {"name": task_name(t), **i} for t, i in info.items()},
        "tables": {t.key: t.to_dict() for t in tables},
        "figures": [f for _, f in figures],
        "sources": [
            {"path": str(r.path), "task": r.task, "system": r.system, "config_hash": r.config_hash, "n": r.n, "seed": r.seed}
            for r in results
        ],
        "files": ["tables.md", "tables.tex", "index.html", "summary.json", *(f for _, f in figures)],
    }
    write_json(out_dir / "summary.json", summary)
    return summary


def _md_figures(figures: list[tuple[str, str]]) -> str:
    if not figures:
        return ""
    return "\n" + "\n".join(["## Training curves", ""] + [f"![{cap}]({f})" for cap, f in figures]) + "\n\n"


def _md_sources(results: list[Result]) -> str:
    lines = ["## Sources", ""] + [f"- `{r.path}` ({r.task} / {r.system}, config `{r.config_hash}`)" for r in results]
    return "\n".join(lines) + "\n"
