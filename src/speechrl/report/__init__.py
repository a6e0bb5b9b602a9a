"""The paper-style report: ``metrics.json`` files -> tables.md, tables.tex, index.html, summary.json.

    build_report(files, out_dir, title="embedded", tasks=task_specs(cfg))        # per-task settings
    build_report(files, out_dir, title="embedded", decoding="sampled",          # one setting for all tasks
                 system_order=["base", "sft", "grpo"], metrics=["bleu", "chrf", ...])

Each task's tables are the entries its registry entry names (:attr:`speechrl.tasks.Task.report_tables`,
built by :data:`speechrl.report.builders.REPORT_TABLES`: ``main``, ``reward_ablation``, ``leaf``, ``se``,
``segment_gspo``) with its own settings (:class:`speechrl.report.spec.TaskSpec`); tables of several tasks
with the same columns are joined, one block per task. Figures: training curves
(:mod:`speechrl.report.curves`); audio tasks get listening examples (:mod:`speechrl.report.audio`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from speechrl.io import write_json, write_text
from speechrl.report import speech_tables as _speech_tables  # noqa: F401  (registers se, segment_gspo)
from speechrl.report.audio import AudioSection, collect_audio
from speechrl.report.builders import REPORT_TABLES, TableInput
from speechrl.report.curves import load_histories, plot_curves
from speechrl.report.html import to_html
from speechrl.report.results import Result, add_error_rates, load_result, load_results
from speechrl.report.spec import TaskSpec, task_specs
from speechrl.report.tables import Table, merge_tables, task_name, to_latex, to_markdown
from speechrl.tasks import TASKS

__all__ = ["build_report", "load_result", "load_results", "REPORT_TABLES", "Result", "Table", "TaskSpec", "task_specs"]


def _one_or_all(values: list[int]) -> int | list[int]:
    distinct = sorted(set(values))
    return distinct[0] if len(distinct) == 1 else distinct


def _info(rs: list[Result]) -> dict[str, Any]:
    """``{"n", "seed"}`` of one task's files (a list where they disagree)."""
    return {"n": _one_or_all([r.n for r in rs]), "seed": _one_or_all([r.seed for r in rs])}


def _note(info: dict[str, Any]) -> str:
    n, seed = info["n"], info["seed"]
    n_text = "/".join(map(str, n)) + " (differs between systems)" if isinstance(n, list) else str(n)
    seed_text = ("seeds " + "/".join(map(str, seed))) if isinstance(seed, list) else f"seed {seed}"
    return f"n = {n_text} test examples, {seed_text}"


def _specs(results: list[Result], tasks: Mapping[str, TaskSpec] | None, decoding: str, system_order: list[str],
           metrics: list[str], ablation: tuple[str, list[str]] | None, paper: bool) -> dict[str, TaskSpec]:
    """The spec of every task with results, in ``tasks`` order (then first-seen order)."""
    found = list(dict.fromkeys(r.task for r in results))
    if tasks is None:
        abl = (ablation[0], tuple(ablation[1])) if ablation and ablation[1] else None
        tasks = {t: TaskSpec.for_task(t, decoding=decoding, metrics=tuple(metrics), system_order=tuple(system_order),
                                      ablation=abl, paper=paper) for t in found}
    unknown = [r for r in results if r.task not in tasks]
    if unknown:
        raise ValueError(f"{unknown[0].path}: task '{unknown[0].task}' has no report settings "
                         f"(tasks given: {', '.join(tasks) or 'none'}; add it to data.tasks)")
    return {t: tasks[t] for t in [*(t for t in tasks if t in found)]}


def build_report(
    metric_files: list[Path],
    out_dir: Path,
    *,
    title: str,
    tasks: Mapping[str, TaskSpec] | None = None,
    decoding: str = "sampled",
    system_order: list[str] = (),
    metrics: list[str] = (),
    curves: list[Path] = (),
    ablation: tuple[str, list[str]] | None = None,
    paper: bool = True,
) -> dict[str, Any]:
    """Write the report files atomically into ``out_dir``; return the summary (= summary.json).

    ``tasks``: each task's settings (:func:`speechrl.report.spec.task_specs`); without it every task gets
    ``decoding``, ``system_order``, ``metrics``, ``ablation = (algorithm, [its ablation systems])`` and
    ``paper``, and its tables from the task registry. A task's tables (:data:`REPORT_TABLES`) follow in the
    order its registry entry lists them; tables of several tasks with the same columns are joined. Figures:
    training curves from the RL ``summary.json`` files in ``curves``; audio tasks: listening examples copied
    under ``out_dir/audio/<task>/``."""
    results = add_error_rates(load_results([Path(p) for p in metric_files]))
    specs = _specs(results, tasks, decoding, list(system_order), list(metrics), ablation, paper)
    tables: list[Table] = []
    info: dict[str, dict[str, Any]] = {}
    decodings_by: dict[str, list[str]] = {}
    for task, spec in specs.items():
        rs = [r for r in results if r.task == task]
        found = sorted({d for r in rs for d in r.decodings})
        if spec.decoding not in found:
            raise ValueError(f"decoding '{spec.decoding}' is in none of the metrics files of task '{task}' "
                             f"(found: {', '.join(found) or 'none'})")
        if not spec.metrics:
            raise ValueError(f"build_report: no metrics to show for task '{task}'")
        info[task] = _info(rs)
        decodings_by[task] = [spec.decoding, *(d for d in found if d != spec.decoding)]
        inp = TableInput(task, spec, rs, tuple(decodings_by[task]), _note(info[task]), title)
        for name in spec.tables:
            tables += REPORT_TABLES.get(name)(inp)
    tables = merge_tables(tables)

    out_dir = Path(out_dir)
    figures = plot_curves(load_histories([Path(c) for c in curves]), out_dir) if curves else []
    audio = [sec for task, spec in specs.items() if (sec := collect_audio(results, spec, out_dir)) is not None]
    write_text(out_dir / "tables.md", f"# {title}\n\n" + "\n".join(to_markdown(t) for t in tables) + _md_figures(figures)
               + _md_audio(audio) + _md_sources(results))
    write_text(out_dir / "tables.tex", "\n".join(to_latex(t) for t in tables))
    write_text(out_dir / "index.html", to_html(title, tables, results, figures, audio=audio))
    main = next(iter(specs.values()))
    summary = {
        "title": title,
        "decoding": main.decoding,
        "decodings": decodings_by[main.name],
        "metrics": list(main.metrics),
        "tasks": {t: {"name": task_name(t), "paper": TASKS.get(t).paper if t in TASKS else "", **i, "decoding": specs[t].decoding, "decodings": decodings_by[t],
                      "metrics": list(specs[t].metrics), "tables": list(specs[t].tables)} for t, i in info.items()},
        "tables": {t.key: t.to_dict() for t in tables},
        "figures": [f for _, f in figures],
        "audio": {sec.task: sec.to_dict() for sec in audio},
        "sources": [
            {"path": str(r.path), "task": r.task, "system": r.system, "config_hash": r.config_hash, "n": r.n, "seed": r.seed}
            for r in results
        ],
        "files": ["tables.md", "tables.tex", "index.html", "summary.json", *(f for _, f in figures),
                  *(f for sec in audio for f in sec.files)],
    }
    write_json(out_dir / "summary.json", summary)
    return summary


def _md_audio(sections: list[AudioSection]) -> str:
    if not sections:
        return ""
    lines = ["## Audio examples", ""]
    for sec in sections:
        lines += [f"### {task_name(sec.task)} — {sec.decoding} decoding", ""]
        for e in sec.examples:
            clips = ", ".join(f"[{c.label}]({c.file})" if c.file else f"{c.label}: —" for c in e.clips)
            lines.append(f"- `{e.id}` {e.text}: {clips}")
        lines += [f"- note: {n}" for n in sec.notes] + [""]
    return "\n".join(lines) + "\n"


def _md_figures(figures: list[tuple[str, str]]) -> str:
    if not figures:
        return ""
    return "\n" + "\n".join(["## Training curves", ""] + [f"![{cap}]({f})" for cap, f in figures]) + "\n\n"


def _md_sources(results: list[Result]) -> str:
    lines = ["## Sources", ""] + [f"- `{r.path}` ({r.task} / {r.system}, config `{r.config_hash}`)" for r in results]
    return "\n".join(lines) + "\n"
