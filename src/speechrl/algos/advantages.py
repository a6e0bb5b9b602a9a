"""Group-relative advantage estimators. The whole group is visible (rows of G completions).

Signature: ``fn(rewards (N,), group_size, **opts) -> (advantages (N,), metrics)`` with N = B * G,
completions of one prompt contiguous.
"""

from __future__ import annotations

import torch

from speechrl.algos._checks import finite, group_view
from speechrl.registry import Registry

ADVANTAGES: Registry = Registry("advantage estimator")


@ADVANTAGES.register("grpo")
def grpo(rewards: torch.Tensor, group_size: int, *, scale: str = "group", unbiased: bool = True,
         eps: float = 1e-6) -> tuple[torch.Tensor, dict[str, float]]:
    """A_i = (R_i - mean_G R) / (std R + eps).

    ``scale``: ``group`` (std within the group; verl, TRL default), ``batch`` (std over the whole
    batch; TRL ``scale_rewards="batch"``), ``none`` (no division; Dr.GRPO).
    ``unbiased``: Bessel-corrected std (verl ``torch.std``, TRL) vs population std. A group of
    one has std 0 -> its advantage is 0.
    """
    finite(rewards, "rewards")
    r = group_view(rewards.float(), group_size)
    centred = r - r.mean(dim=1, keepdim=True)
    if scale == "group":
        std = r.std(dim=1, keepdim=True, unbiased=unbiased) if group_size > 1 else torch.zeros_like(r[:, :1])
        adv = centred / (std + eps)
    elif scale == "batch":
        std = rewards.float().std(unbiased=unbiased) if rewards.numel() > 1 else torch.zeros(())
        adv = centred / (std + eps)
    elif scale == "none":
        adv = centred
    else:
        raise ValueError(f"unknown advantage scale '{scale}'; valid: group, batch, none")
    zero_var = (r.max(dim=1).values == r.min(dim=1).values).float().mean().item()
    return adv.flatten(), {"adv/abs_mean": adv.abs().mean().item(), "adv/zero_std_groups": zero_var}


@ADVANTAGES.register("dr_grpo")
def dr_grpo(rewards: torch.Tensor, group_size: int, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """Dr.GRPO: A_i = R_i - mean_G R (no std normalisation)."""
    return grpo(rewards, group_size, scale="none")
