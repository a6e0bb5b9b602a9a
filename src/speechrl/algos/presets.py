"""Named algorithm presets: each a combination of registry names with the papers' defaults.

``resolve(name, rl_config)`` applies the user's overrides (``rl.beta``, ``rl.eps_low``, ...) on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from speechrl.registry import Registry


@dataclass(frozen=True)
class Algorithm:
    """A fully specified RL objective: which registry entries, with which parameters."""

    name: str
    advantage: str = "grpo"
    advantage_opts: dict[str, Any] = field(default_factory=dict)
    policy_loss: str = "ppo_clip"
    loss_agg: str = "token-mean"
    kl_estimator: str = "k3"
    beta: float = 0.02
    eps_low: float = 0.2
    eps_high: float = 0.2
    description: str = ""


PRESETS: Registry[Algorithm] = Registry("algorithm preset")


def _preset(a: Algorithm) -> None:
    PRESETS.register(a.name)(a)


_preset(Algorithm(
    "grpo", description="GRPO as in seed 000 (GRPO-SALLM): group-normalised advantages (unbiased std), "
    "PPO clip eps 0.2, DAPO token-mean aggregation, k3 KL with beta 0.02."))
_preset(Algorithm(
    "dr_grpo", advantage="dr_grpo", loss_agg="seq-mean-token-sum-norm",
    description="Dr.GRPO: no std normalisation, constant length normalisation."))


def resolve(name: str, rl: Any) -> Algorithm:
    """The preset ``name`` with non-empty overrides from the RL config section applied."""
    algo = PRESETS.get(name)
    overrides = {k: getattr(rl, k) for k in ("beta", "eps_low", "eps_high", "loss_agg") if getattr(rl, k, None) is not None}
    return replace(algo, **overrides)
