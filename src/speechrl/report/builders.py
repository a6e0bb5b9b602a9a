"""Report tables by name: :data:`REPORT_TABLES`, and the tables every text task gets.

    REPORT_TABLES.get("main")(inp)        # -> list[Table] for one task
    REPORT_TABLES.names()                 # ['leaf', 'main', 'reward_ablation', 'se', 'segment_gspo']

A task lists its tables in :attr:`speechrl.tasks.Task.report_tables`; :func:`speechrl.report.build_report`
calls each entry with a :class:`TableInput` (that task's results and :class:`~speechrl.report.spec.TaskSpec`)
and joins the tables of all tasks (:func:`speechrl.report.tables.merge_tables`). Nothing here branches on a
task name. Entries here:

* ``main``: the task's metrics for the report decoding (mean +- 95% CI over seeds), the papers' published
  numbers for this table (:mod:`speechrl.report.paper`), the other decodings, the per-seed values of the
  first metric;
* ``reward_ablation``: the ablation algorithm trained on each reward alone, beside SFT and the composite run;
* ``leaf``: LEAF vs GRPO (Gerogiannis et al. 2026), paired by seed.

The speech-token tables (``se``, ``segment_gspo``) are in :mod:`speechrl.report.speech_tables`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from speechrl.registry import Registry
from speechrl.report.results import Result, as_grid, paired_diff, per_seed
from speechrl.report.spec import TaskSpec
from speechrl.report.tables import Table, build_table, metric_name


@dataclass(frozen=True)
class TableInput:
    """What a table builder gets for one task."""

    task: str
    spec: TaskSpec
    results: list[Result]
    """This task's results (every system and seed), with the derived WER % / CER % columns."""
    decodings: tuple[str, ...]
    """The decodings found in this task's files, ``spec.decoding`` first."""
    note: str
    """The task's block note ("n = 60 test examples, seeds 0/1/2")."""
    title: str
    """The report's title."""

    @property
    def decoding(self) -> str:
        return self.spec.decoding

    @property
    def notes(self) -> dict[str, str]:
        return {self.task: self.note}

    @property
    def setting(self) -> str:
        """The paper setting this task mirrors (:attr:`speechrl.tasks.Task.paper`), or ""."""
        from speechrl.tasks import TASKS

        return TASKS.get(self.task).paper if self.task in TASKS else ""

    def systems(self) -> list[str]:
        """Systems with results, in first-seen order."""
        return list(dict.fromkeys(r.system for r in self.results))

    def grid(self, decoding: str | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, float | None]]]:
        """``(system -> metric -> mean over seeds, same -> CI half-width)`` of this task for ``decoding``."""
        grid, cis = as_grid(self.results, decoding or self.decoding)
        return grid.get(self.task, {}), cis.get(self.task, {})


TableBuilder = Callable[[TableInput], list[Table]]
REPORT_TABLES: Registry[TableBuilder] = Registry("report table")


def subset(rows: dict[str, Any], systems: list[str] | tuple[str, ...]) -> dict[str, Any]:
    return {s: v for s, v in rows.items() if s in systems}


def measured(rows: dict[str, dict[str, Any]], columns: list[str] | tuple[str, ...]) -> list[str]:
    """The ``columns`` some row has a value for."""
    return [c for c in columns if any(v.get(c) is not None for v in rows.values())]


def paper_tables(inp: TableInput, table: str, metrics: list[str] | tuple[str, ...], systems: list[str]) -> list[Table]:
    """The papers' published numbers printed beside report table ``table`` of this task (none when
    ``spec.paper`` is off): one table per paper table with a value for one of ``systems``."""
    if not inp.spec.paper:
        return []
    from speechrl.report.paper import paper_tables_for, setting_task

    out = []
    for p in paper_tables_for(systems, [inp.task], table=table):
        cols = [m for m in metrics if m in p.metrics] or list(p.metrics)
        grid = {setting: dict(row) for setting, row in p.rows.items() if setting_task(setting) == inp.task}
        note = f"Source: {p.source}. " + " ".join(p.notes)
        out.append(build_table(f"paper_{p.key}", p.title, grid, ["base", "sft"], cols, {}, note=note))
    return out


@REPORT_TABLES.register("main")
def main_tables(inp: TableInput) -> list[Table]:
    """The task's metrics for every decoding (report decoding first, the papers' numbers after it) and
    the per-seed values of the first metric. Reward-ablation rows are left to their own table."""
    spec = inp.spec
    if not spec.metrics:
        raise ValueError(f"report: task '{inp.task}' has no metrics to show (evaluate.metrics)")
    metrics = list(spec.metrics)
    rows = [s for s in inp.systems() if s not in spec.ablation_systems]
    tables: list[Table] = []
    for dec in inp.decodings:
        grid, cis = inp.grid(dec)
        tables.append(build_table(dec, f"{inp.title}: test results, {dec} decoding", {inp.task: subset(grid, rows)},
                                  list(spec.system_order), metrics, inp.notes, {inp.task: cis}))
        if dec == inp.decoding:
            tables += paper_tables(inp, "main", metrics, rows)
    tables.append(seed_table(inp, metrics[0], [*spec.system_order, *spec.ablation_systems]))
    return tables


def seed_table(inp: TableInput, metric: str, order: list[str]) -> Table:
    """One column per seed of ``metric``: the per-seed figures behind the means."""
    runs_by = per_seed(inp.results, inp.decoding).get(inp.task, {})
    seeds = sorted({sd for runs in runs_by.values() for sd in runs})
    grid = {sys: {f"seed {sd}": runs[sd].get(metric) for sd in runs} for sys, runs in runs_by.items()}
    return build_table(f"seeds_{inp.decoding}", f"{metric_name(metric)} per seed, {inp.decoding} decoding", {inp.task: grid},
                       order, [f"seed {sd}" for sd in seeds], inp.notes, compare=False)


@REPORT_TABLES.register("reward_ablation")
def reward_ablation_table(inp: TableInput) -> list[Table]:
    """SFT, the ablation algorithm with the composite reward, and that algorithm on each reward alone."""
    spec = inp.spec
    if not spec.ablation or not any(s in inp.systems() for s in spec.ablation_systems):
        return []
    algo, systems = spec.ablation
    rows = ["sft", algo, *systems]
    grid, cis = inp.grid()
    return [build_table("ablation", f"Reward ablation: {algo.upper()} trained on each reward alone, {inp.decoding} decoding",
                        {inp.task: subset(grid, rows)}, rows, list(spec.metrics), inp.notes, {inp.task: subset(cis, rows)},
                        note=f"{algo.upper()} without a reward in parentheses uses rl.rewards (the main runs).")]


def diff_rows(inp: TableInput, pairs: list[tuple[str, str]], metrics: list[str]
              ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, float | None]]]:
    """``diff:a-b`` rows (mean of the per-seed differences, paired CI) of this task for each pair that ran."""
    grid: dict[str, dict[str, Any]] = {}
    cis: dict[str, dict[str, float | None]] = {}
    for a, b in pairs:
        g, c = paired_diff(inp.results, inp.decoding, a, b, metrics)
        grid.update(g.get(inp.task, {}))
        cis.update(c.get(inp.task, {}))
    return grid, cis


@REPORT_TABLES.register("leaf")
def leaf_table(inp: TableInput) -> list[Table]:
    """LEAF and GRPO (same rollouts, steps and learning rate) and their paired difference, when both ran."""
    grid, cis = inp.grid()
    if not ("leaf" in grid and "grpo" in grid):
        return []
    metrics = list(inp.spec.metrics)
    d_grid, d_cis = diff_rows(inp, [("leaf", "grpo")], metrics)
    return [build_table("leaf_vs_grpo", f"LEAF vs GRPO (same rollouts, steps and learning rate), {inp.decoding} decoding",
                        {inp.task: {**subset(grid, ["grpo", "leaf"]), **d_grid}}, ["grpo", "leaf"], metrics, inp.notes,
                        {inp.task: {**subset(cis, ["grpo", "leaf"]), **d_cis}}, compare=False,
                        note="LEAF − GRPO: mean of the per-seed differences, 95% CI over seeds (paired).")]
