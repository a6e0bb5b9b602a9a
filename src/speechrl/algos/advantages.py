"""Group-relative advantage estimators. The whole group is visible (rows of G completions).

Signature::

    fn(rewards (N,), group_size, *, mask=None, ids=None, surprisal=None, modality=None, **opts)
        -> (advantages (N,) or (N, T), metrics)

N = B * G, completions of one prompt contiguous. Entries ignore the keywords they do not use.
``grpo``, ``dr_grpo`` and ``modality`` return (N,); ``leaf`` (``speechrl.algos.leaf``) returns (N, T).

MP-GRPO (GRPO-SALLM, Elmakies et al. 2025, arXiv 2509.16990) needs no estimator of its own: the
ground-truth reference is one more member of
its group (G - 1 on-policy samples + 1 off-policy) and ``grpo`` runs over all G; only the loss
treats that row differently (``off_policy``).
"""

from __future__ import annotations

import torch

from speechrl.algos._checks import finite, group_view
from speechrl.registry import Registry

ADVANTAGES: Registry = Registry("advantage estimator")


@ADVANTAGES.register("grpo")
def grpo(rewards: torch.Tensor, group_size: int, *, scale: str = "group", unbiased: bool = True,
         eps: float = 1e-6, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """A_i = (R_i - mean_G R) / (std R + eps).

    ``scale``: ``group`` (std within the group; verl, TRL default), ``batch`` (std over the whole
    batch, numerator still group-centred; TRL ``scale_rewards="batch"``), ``none`` (no division;
    Dr.GRPO, verl ``norm_adv_by_std_in_grpo=False``).
    ``unbiased``: Bessel-corrected std (verl ``torch.std``, TRL ``.std()``: both unbiased) vs population.
    ``eps``: 1e-6 as verl ``compute_grpo_outcome_advantage``; TRL adds 1e-4 (pass ``eps=1e-4`` to match).
    A group of one has std 0 -> its advantage is 0 (TRL's behaviour; verl instead uses mean 0,
    std 1, i.e. A = R / (1 + eps)). Rewards must be finite (the trainer fills failed ones).

    Departure from verl and TRL: statistics are computed in float64 and a group whose rewards are all
    equal gets advantage exactly 0. In float32 the mean of e.g. eight rewards of 0.3 is off by ~3e-8,
    the std is ~3e-8 instead of 0, and (R - mean) / (std + 1e-6) gives every member a spurious
    advantage of ~0.03 (verl's code does exactly this); continuous rewards such as BLEU hit it often.
    """
    finite(rewards, "rewards")
    out_dtype = rewards.dtype if rewards.is_floating_point() else torch.float32
    r = group_view(rewards.double(), group_size)
    centred = r - r.mean(dim=1, keepdim=True)
    if scale == "group":
        std = r.std(dim=1, keepdim=True, unbiased=unbiased) if group_size > 1 else torch.zeros_like(r[:, :1])
        adv = centred / (std + eps)
    elif scale == "batch":
        std = rewards.double().std(unbiased=unbiased) if rewards.numel() > 1 else torch.zeros((), dtype=torch.float64)
        adv = centred / (std + eps)
    elif scale == "none":
        adv = centred
    else:
        raise ValueError(f"unknown advantage scale '{scale}'; valid: group, batch, none")
    constant = r.max(dim=1, keepdim=True).values == r.min(dim=1, keepdim=True).values
    adv = torch.where(constant, torch.zeros_like(adv), adv).to(out_dtype)
    return adv.flatten(), {"adv/abs_mean": adv.abs().mean().item(), "adv/zero_std_groups": constant.double().mean().item()}


@ADVANTAGES.register("dr_grpo")
def dr_grpo(rewards: torch.Tensor, group_size: int, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """Dr.GRPO: A_i = R_i - mean_G R (no std normalisation; pair with seq-mean-token-sum-norm)."""
    return grpo(rewards, group_size, scale="none")


@ADVANTAGES.register("modality")
def modality_split(rewards: torch.Tensor, group_size: int, *, modality: torch.Tensor | None = None,
                   scale: bool = False, unbiased: bool = True, eps: float = 1e-6,
                   **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """TARS modality-specific normalisation: A_{i,m} = R_{i,m} - mu_m, with mu_m the mean reward of
    the members of the SAME modality inside the group (``modality`` (N,) int: 0 speech, 1 text; any
    small non-negative ids work). ``scale=True`` also divides by that modality's std (+ eps;
    TARS itself uses the mean only). A NaN reward (failed scorer) gets advantage 0 and is left out of
    mu_m / std; +-inf is an error. A modality with one (finite) member in a group gets 0.

    As ``grpo``: statistics in float64, and the members of a modality whose finite rewards are all
    equal inside the group get exactly 0 (in float32, with ``scale=True``, six rewards of 0.3 got
    ~0.03 from rounding noise divided by std + eps). The result has the rewards' dtype.
    """
    if modality is None:
        raise ValueError("the modality estimator needs modality (N,) int (0 speech, 1 text); got None")
    out_dtype = rewards.dtype if rewards.is_floating_point() else torch.float32
    r = group_view(rewards.double(), group_size)
    if modality.shape != rewards.shape:
        raise ValueError(f"shape mismatch: modality {tuple(modality.shape)} vs rewards {tuple(rewards.shape)}")
    if modality.dtype.is_floating_point or (modality.numel() and int(modality.min()) < 0):
        raise ValueError(f"modality must hold non-negative integer ids, got dtype {modality.dtype}")
    inf = torch.isinf(r)
    if inf.any():
        raise ValueError(f"rewards has infinite values at indices {inf.flatten().nonzero().flatten().tolist()[:8]}")
    ok = ~torch.isnan(r)
    r0 = torch.where(ok, r, torch.zeros_like(r))
    mod = modality.long().view_as(r)
    n_mod = int(mod.max()) + 1 if mod.numel() else 1
    member = torch.nn.functional.one_hot(mod, n_mod).bool() & ok.unsqueeze(-1)             # (B, G, M)
    onehot = member.double()
    counts = onehot.sum(1)                                                                  # (B, M)
    mean = (r0.unsqueeze(-1) * onehot).sum(1) / counts.clamp(min=1.0)
    mu = mean.gather(1, mod)                                                                # (B, G)
    adv = r0 - mu
    if scale:
        var = ((adv.pow(2)).unsqueeze(-1) * onehot).sum(1) / (counts - float(unbiased)).clamp(min=1.0)
        adv = adv / (var.sqrt().gather(1, mod) + eps)
    hi = r0.unsqueeze(-1).masked_fill(~member, float("-inf")).amax(1)                       # (B, M)
    lo = r0.unsqueeze(-1).masked_fill(~member, float("inf")).amin(1)
    constant = (hi <= lo).gather(1, mod)                                                    # (B, G)
    adv = torch.where(ok & ~constant, adv, torch.zeros_like(adv)).to(out_dtype)
    metrics = {"adv/abs_mean": adv.abs().mean().item(), "reward/failed": float((~ok).sum())}
    for m in range(n_mod):
        sel = ok & (mod == m)
        metrics[f"reward/modality_{m}"] = float(r0[sel].mean()) if sel.any() else 0.0
    return adv.flatten(), metrics
