"""Per-token KL estimators to the reference policy (Schulman's k1/k2/k3).

Signature: ``fn(logp (N, T), ref_logp (N, T)) -> (kl (N, T), metrics)``; aggregation happens later.
"""

from __future__ import annotations

import torch

from speechrl.algos._checks import same_shape
from speechrl.registry import Registry

KL_ESTIMATORS: Registry = Registry("KL estimator")


@KL_ESTIMATORS.register("k1")
def k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """log pi - log ref (unbiased, high variance, can be negative)."""
    same_shape(logp=logp, ref_logp=ref_logp)
    return logp - ref_logp, {}


@KL_ESTIMATORS.register("k2")
def k2(logp: torch.Tensor, ref_logp: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """0.5 (log pi - log ref)^2."""
    same_shape(logp=logp, ref_logp=ref_logp)
    return 0.5 * (logp - ref_logp).pow(2), {}


@KL_ESTIMATORS.register("k3")
def k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """exp(ref - logp) - (ref - logp) - 1 (non-negative, unbiased for KL(pi||ref)); the log-ratio is
    clamped to [-20, 20] as in verl's ``kl_penalty('low_var_kl')`` to keep exp finite."""
    same_shape(logp=logp, ref_logp=ref_logp)
    d = (ref_logp - logp).clamp(-20.0, 20.0)
    return torch.exp(d) - d - 1.0, {}
