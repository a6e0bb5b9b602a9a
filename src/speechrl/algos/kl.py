"""Per-token KL estimators to the reference policy (Schulman's k1/k2/k3).

Signature: ``fn(logp (N, T), ref_logp (N, T), **_) -> (kl (N, T), metrics)``; weighting by beta and
aggregation happen later (the trainer adds ``beta * kl`` to the policy-loss matrix, then aggregates).
Same formulas and clamps as verl's ``kl_penalty`` ('kl'/'k1', 'mse'/'k2', 'low_var_kl'/'k3').
verl's straight-through variants ('k3+': k3 value, k2 gradient) are not provided.
"""

from __future__ import annotations

import torch

from speechrl.algos._checks import same_shape
from speechrl.registry import Registry

KL_ESTIMATORS: Registry = Registry("KL estimator")


@KL_ESTIMATORS.register("k1")
def k1(logp: torch.Tensor, ref_logp: torch.Tensor, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """log pi - log ref (unbiased, high variance, can be negative)."""
    same_shape(logp=logp, ref_logp=ref_logp)
    return logp - ref_logp, {}


@KL_ESTIMATORS.register("k2")
def k2(logp: torch.Tensor, ref_logp: torch.Tensor, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """0.5 (log pi - log ref)^2."""
    same_shape(logp=logp, ref_logp=ref_logp)
    return 0.5 * (logp - ref_logp).pow(2), {}


@KL_ESTIMATORS.register("k3")
def k3(logp: torch.Tensor, ref_logp: torch.Tensor, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """exp(ref - logp) - (ref - logp) - 1 (non-negative, unbiased for KL(pi||ref)).

    As verl's ``kl_penalty('low_var_kl')``: the log-ratio ref - logp is clamped to [-20, 20] before
    exp, and the KL value to [-10, 10] (so a token with k3 > 10 contributes 10 and no gradient).
    LEAF's reference loss (loss.py) applies neither clamp; the value clamp only binds when
    ref - logp > ~2.6 or < -11.
    """
    same_shape(logp=logp, ref_logp=ref_logp)
    d = (ref_logp - logp).clamp(-20.0, 20.0)
    return (torch.expm1(d) - d).clamp(max=10.0), {}  # k3 >= 0, so verl's lower clamp at -10 never binds
