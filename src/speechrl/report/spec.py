"""What the report shows for one task: :class:`TaskSpec`, from the task's effective config.

    specs = task_specs(cfg, cfg.data.tasks)      # task -> TaskSpec
    build_report(files, out, title=..., tasks=specs)

Each task has its own settings (:func:`speechrl.config.parser.task_cfg`: the top-level config, then
the task's defaults in :data:`speechrl.tasks.TASKS`, then ``tasks.<name>``): its metrics
(``evaluate.metrics``), RL systems (``rl.algorithms``), reward ablation (``suite.ablation_*``) and
report settings; its report tables and output kind come from its registry entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from speechrl.config import Config

DEFAULT_TABLES = ("main", "reward_ablation", "leaf")
"""Report tables of a task the registry does not know."""


@dataclass(frozen=True)
class TaskSpec:
    """The report settings of one task."""

    name: str
    decoding: str
    """Decoding whose metrics fill the main tables (``report.decoding``)."""
    metrics: tuple[str, ...]
    """Columns of the main tables (``evaluate.metrics``)."""
    system_order: tuple[str, ...]
    """Row order: base / SFT rows, the control, then the RL algorithms; other systems follow alphabetically."""
    rl_systems: tuple[str, ...] = ()
    """The RL algorithms trained with the composite reward (``rl.algorithms``); the first is the main one."""
    ablation: tuple[str, tuple[str, ...]] | None = None
    """``(algorithm, its single-reward systems "<algorithm>-<reward>")`` when the task runs the reward ablation."""
    sweep: tuple[str, ...] = ()
    """The segmenter-sweep systems ``<preset>@<option>=<value>`` (``suite.segmenter_sweep``)."""
    rewards: dict[str, float] = field(default_factory=dict)
    """The composite reward's weights (``rl.rewards``), for table notes."""
    tables: tuple[str, ...] = DEFAULT_TABLES
    """Report tables, by name (:data:`speechrl.report.builders.REPORT_TABLES`)."""
    output: str = "text"
    """``text`` or ``audio``: audio tasks get listening examples."""
    paper: bool = True
    """Print the papers' published numbers beside the tables (``report.paper_numbers``)."""

    @property
    def ablation_systems(self) -> tuple[str, ...]:
        return self.ablation[1] if self.ablation else ()

    @property
    def main_system(self) -> str | None:
        """The main RL system (first of ``rl_systems``), or None."""
        return self.rl_systems[0] if self.rl_systems else None

    @classmethod
    def for_task(cls, task: str, **settings: object) -> "TaskSpec":
        """A spec whose tables and output kind come from the task registry (defaults for an unknown task)."""
        from speechrl.tasks import TASKS

        if task in TASKS:
            t = TASKS.get(task)
            settings = {"tables": tuple(t.report_tables), "output": t.output, **settings}
        return cls(task, **settings)  # type: ignore[arg-type]


def task_specs(cfg: "Config", tasks: list[str] | None = None) -> dict[str, TaskSpec]:
    """``task -> TaskSpec`` for ``tasks`` (default ``cfg.data.tasks``), each from its effective config."""
    from speechrl.systems import CONTROL

    out = {}
    for task in tasks if tasks is not None else cfg.data.tasks:
        tc = _task_cfg(cfg, task)
        s = tc.suite
        ablation = None
        if task in s.ablation_tasks and s.ablation_rewards:
            ablation = (s.ablation_algorithm, tuple(f"{s.ablation_algorithm}-{r}" for r in s.ablation_rewards))
        out[task] = TaskSpec.for_task(
            task, decoding=tc.report.decoding, metrics=tuple(tc.evaluate.metrics),
            system_order=(*tc.report.systems, CONTROL, *tc.rl.algorithms), rl_systems=tuple(tc.rl.algorithms),
            ablation=ablation, sweep=tuple(s.segmenter_sweep), rewards=dict(tc.rl.rewards), paper=tc.report.paper_numbers)
    return out


def _task_cfg(cfg: "Config", task: str) -> "Config":
    """``task``'s typed config (:func:`speechrl.config.parser.task_cfg`); the whole config was checked when parsed."""
    from speechrl.config.parser import task_cfg

    return task_cfg(cfg, task, registries=False)
