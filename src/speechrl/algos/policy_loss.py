"""Per-token policy losses. Signature::

    fn(logp (N, T), old_logp (N, T), advantages (N,) or (N, T), mask (N, T), **opts)
        -> (loss (N, T), metrics)

The matrix is aggregated separately (``AGGREGATIONS``).
"""

from __future__ import annotations

import torch

from speechrl.algos._checks import same_shape
from speechrl.registry import Registry

POLICY_LOSSES: Registry = Registry("policy loss")


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    m = mask.to(x.dtype)
    return ((x * m).sum() / m.sum().clamp(min=1.0)).item()


def _broadcast_adv(adv: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if adv.dim() == 1:
        if adv.shape[0] != like.shape[0]:
            raise ValueError(f"shape mismatch: advantages {tuple(adv.shape)} vs logp {tuple(like.shape)}")
        return adv.unsqueeze(-1).expand_as(like)
    same_shape(advantages=adv, logp=like)
    return adv


@POLICY_LOSSES.register("ppo_clip")
def ppo_clip(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
             eps_low: float = 0.2, eps_high: float = 0.2, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """L = -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A), r = exp(logp - old_logp).

    eps_high > eps_low is DAPO's clip-higher. The log-ratio is clamped to [-20, 20] before exp.
    """
    same_shape(logp=logp, old_logp=old_logp, mask=mask)
    adv = _broadcast_adv(advantages, logp)
    ratio = torch.exp((logp - old_logp).clamp(-20.0, 20.0))
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - eps_low, 1.0 + eps_high)
    loss = torch.maximum(unclipped, clipped)
    metrics = {"actor/clipfrac": _masked_mean((clipped > unclipped).float(), mask),
               "actor/ratio_mean": _masked_mean(ratio.detach(), mask)}
    return loss, metrics
