"""Checks of one task's config against what the task provides, run when the config is parsed.

* the model family (``model.arch``) must output what the task outputs (text or audio);
* every reward (``rl.rewards``, the reward ablation) and metric (``evaluate.metrics``) must find the
  columns its scorer needs (:attr:`speechrl.rewards.scorer.Scorer.columns`) among the task's columns
  (:attr:`speechrl.tasks.Task.columns`, ``input_audio``) and the manifest fields the task's builder writes.

Imports the model and scorer registries (torch): the Snakefile's parse skips it (``registries=False``);
``speechrl resolve-config``, the pipeline's first job, and every job's own parse run it.
"""

from __future__ import annotations

from speechrl.config.errors import ConfigError
from speechrl.config.fields import Config
from speechrl.tasks import BASE_COLUMNS, TASKS


PARTS = ("model", "rewards", "metrics")


def check_task(cfg: Config, task: str, parts: tuple[str, ...] = PARTS) -> None:
    """Raise :class:`ConfigError` naming the key, the task and the fix when ``cfg`` cannot run ``task``.

    ``parts``: what to check: ``model`` (model.arch), ``rewards`` (rl.rewards and the reward ablation),
    ``metrics`` (evaluate.metrics). A job checks the parts its config slice holds."""
    from speechrl.models.adapters import MODELS
    from speechrl.rewards import REWARDS

    t = TASKS.get(task)
    if "model" in parts:
        adapter = MODELS.get(cfg.model.arch)
        if adapter.output != t.output:
            fits = [n for n in MODELS.names() if MODELS.get(n).output == t.output]
            raise ConfigError(f"model.arch={cfg.model.arch!r} outputs {adapter.output}, but task '{task}' outputs "
                              f"{t.output}; use one of: {', '.join(fits)} (tasks.{task}.model.arch)")
    available = set(t.columns) | set(BASE_COLUMNS)
    uses = []
    if "rewards" in parts:
        uses += [("rl.rewards", name) for name in cfg.rl.rewards]
        if task in cfg.suite.ablation_tasks:
            uses += [("suite.ablation_rewards", name) for name in cfg.suite.ablation_rewards]
    if "metrics" in parts:
        uses += [("evaluate.metrics", name) for name in cfg.evaluate.metrics]
    for key, name in uses:
        missing = [c for c in REWARDS.get(name).columns if c not in available]
        if missing:
            raise ConfigError(
                f"{key}: '{name}' needs the column(s) {', '.join(missing)}, which task '{task}' (output {t.output}) "
                f"does not provide (it provides: {', '.join(sorted(available))}); pick scorers for {t.output} outputs "
                f"under tasks.{task}.{key}")
    if t.output == "audio":
        text_only = [n for _, n in uses if not REWARDS.get(n).columns]
        if text_only:
            raise ConfigError(f"task '{task}' outputs audio, but {', '.join(sorted(set(text_only)))} score(s) text; "
                              f"use audio scorers (e.g. dnsmos_ovrl, asr_wer, pesq) under tasks.{task}.rl.rewards / "
                              f"tasks.{task}.evaluate.metrics")
