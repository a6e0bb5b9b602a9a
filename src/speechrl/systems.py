"""System names: the rows of the report and the model folders of the pipeline.

* ``base``: the initial model; ``sft``: supervised fine-tuning (early-stopped on valid loss);
* ``sft_more``: the control "SFT + the same extra compute": SFT continued from ``sft`` for
  ``rl.steps`` steps of ``prompts_per_step x group_size`` examples (:func:`speechrl.training.sft.continue_sft`);
* ``<preset>``: RL from ``sft`` with an algorithm preset and ``rl.rewards`` (``grpo``, ``leaf``, ...);
* ``<preset>-<reward>``: the reward ablation: that preset trained on ``<reward>`` alone (``grpo-meteor``);
* ``<preset>@<option>=<value>``: the segmenter sweep (``suite.segmenter_sweep``): a segment-level GSPO preset
  with one segmenter option changed (``gspo_segment_window@window=16``).

The control and RL systems run once per seed of ``suite.seeds``; every system is evaluated per seed
(for ``base`` and ``sft`` the seeds vary only the sampled decoding).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from speechrl.config import Config
from speechrl.config.slices import rl_system_parts

BASE, SFT, CONTROL = "base", "sft", "sft_more"


@dataclass(frozen=True)
class System:
    name: str
    kind: str  # "base", "sft", "control" or "rl"
    algorithm: str | None = None
    reward: str | None = None  # the ablation's single reward (None: rl.rewards)
    options: tuple[tuple[str, float], ...] = ()  # the sweep's segmenter option (None: the preset's / rl.segmenter_opts)


def parse_system(name: str) -> System:
    """The :class:`System` named ``name``; unknown presets / rewards raise ``UnknownNameError`` with the choices."""
    if name in (BASE, SFT):
        return System(name, name)
    if name == CONTROL:
        return System(name, "control")
    from speechrl.algos import PRESETS
    from speechrl.rewards import REWARDS

    algo, reward, options = rl_system_parts(name)
    PRESETS.get(algo)
    if reward:
        REWARDS.get(reward)
    return System(name, "rl", algo, reward, tuple(options.items()))


def system_config(cfg: Config, system: System) -> Config:
    """``cfg`` as RL system ``system`` trains: its single reward (ablation), its segmenter option (sweep)."""
    rl = cfg.rl
    if system.reward:
        rl = dataclasses.replace(rl, rewards={system.reward: 1.0})
    if system.options:
        rl = dataclasses.replace(rl, segmenter_opts={**rl.segmenter_opts, **dict(system.options)})
    return cfg if rl is cfg.rl else dataclasses.replace(cfg, rl=rl)


def ablation_systems(cfg: Config) -> list[str]:
    """The reward-ablation systems ``<ablation_algorithm>-<reward>`` (run on ``suite.ablation_tasks``;
    ``workflow/rules/common.smk`` builds the same names for the DAG)."""
    s = cfg.suite
    return [f"{s.ablation_algorithm}-{r}" for r in s.ablation_rewards]
