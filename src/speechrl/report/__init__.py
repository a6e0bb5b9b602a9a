"""The paper-style report: ``metrics.json`` files -> tables.md, tables.tex, index.html, summary.json.

    build_report(files, out_dir, title="embedded", decoding="sampled",
                 system_order=["base", "sft", "grpo"], metrics=["bleu", "chrf", ...])

Tables: the main one for ``decoding``, one per other decoding found in the files, and, when
``paper_numbers`` (``task -> system -> metric -> value``) is given, a "paper (real setting)" one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from speechrl.io import write_json, write_text
from speechrl.report.html import to_html
from speechrl.report.results import Result, as_grid, load_result, load_results
from speechrl.report.tables import Table, build_table, task_name, to_latex, to_markdown

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


def build_report(
    metric_files: list[Path],
    out_dir: Path,
    *,
    title: str,
    decoding: str,
    system_order: list[str],
    metrics: list[str],
    paper_numbers: dict[str, dict[str, dict[str, float]]] | None = None,
) -> dict[str, Any]:
    """Write the report files atomically into ``out_dir``; return the summary (= summary.json)."""
    if not metrics:
        raise ValueError("build_report: no metrics to show")
    results = load_results([Path(p) for p in metric_files])
    found = sorted({d for r in results for d in r.decodings})
    if decoding not in found:
        raise ValueError(f"decoding '{decoding}' is in none of the metrics files (found: {', '.join(found) or 'none'})")
    info = _task_info(results)
    notes = {t: _note(i) for t, i in info.items()}
    tables = [
        build_table(dec, f"{title}: test results, {dec} decoding", as_grid(results, dec), system_order, metrics, notes)
        for dec in [decoding, *(d for d in found if d != decoding)]
    ]
    if paper_numbers:
        paper_notes = {t: "numbers reported in the paper (real models and data)" for t in paper_numbers}
        tables.append(build_table("paper", "Paper (real setting)", paper_numbers, system_order, metrics, paper_notes))

    out_dir = Path(out_dir)
    write_text(out_dir / "tables.md", f"# {title}\n\n" + "\n".join(to_markdown(t) for t in tables) + _md_sources(results))
    write_text(out_dir / "tables.tex", "\n".join(to_latex(t) for t in tables))
    write_text(out_dir / "index.html", to_html(title, tables, results))
    summary = {
        "title": title,
        "decoding": decoding,
        "decodings": [t.key for t in tables if t.key != "paper"],
        "metrics": list(metrics),
        "tasks": {t: {"name": task_name(t), **i} for t, i in info.items()},
        "tables": {t.key: t.to_dict() for t in tables},
        "sources": [
            {"path": str(r.path), "task": r.task, "system": r.system, "config_hash": r.config_hash, "n": r.n, "seed": r.seed}
            for r in results
        ],
        "files": ["tables.md", "tables.tex", "index.html", "summary.json"],
    }
    write_json(out_dir / "summary.json", summary)
    return summary


def _md_sources(results: list[Result]) -> str:
    lines = ["## Sources", ""] + [f"- `{r.path}` ({r.task} / {r.system}, config `{r.config_hash}`)" for r in results]
    return "\n".join(lines) + "\n"
