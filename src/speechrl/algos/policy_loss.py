"""Per-token policy losses on a log importance ratio. Signature::

    fn(log_ratio (N, T), advantages (N,) or (N, T), mask (N, T), *,
       off_policy: BoolTensor (N,) | None = None, **opts) -> (loss (N, T), metrics)

``log_ratio`` comes from ``RATIOS`` (token / sequence / segment / ...); the loss never decides the
ratio level and never aggregates: the (N, T) matrix goes to ``AGGREGATIONS``. Masked positions are
exactly 0 with zero gradient. The log-ratio is clamped to [-max_log_ratio, max_log_ratio] (20, as
verl's vanilla PPO) before ``exp`` so values and gradients stay finite; beyond the clamp the gradient
is 0, as in verl.

``off_policy`` (MP-GRPO of GRPO-SALLM, Elmakies et al. 2025, arXiv 2509.16990; LUFFY style): rows
holding the ground-truth reference. The caller
passes ``old_logp = 0`` for them (pi_old := 1, so their ratio is pi_theta itself) and the loss uses
no clipping / gating: L = -r A. LUFFY's policy shaping f(r) = r / (r + gamma) is not applied.

Metrics (masked, over completion tokens): ``actor/clipfrac`` (verl's pg_clipfrac), ``actor/ratio_mean``,
``actor/ratio_max``, ``actor/ratio_min``, ``actor/ppo_kl`` (masked mean of -log_ratio).
"""

from __future__ import annotations

import torch

from speechrl.algos._checks import adv_matrix, keep_of, masked_mean_item, matrix, row_mean, rows
from speechrl.registry import Registry

POLICY_LOSSES: Registry = Registry("policy loss")


def _prepare(log_ratio: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
             off_policy: torch.Tensor | None) -> torch.Tensor:
    """Checks; advantages as (N, 1) (row-level) or (N, T) (token-level), in the log-ratio's dtype."""
    matrix(log_ratio=log_ratio, mask=mask)
    rows(off_policy, log_ratio.shape[0], "off_policy", "log_ratio")
    return adv_matrix(advantages, log_ratio).to(log_ratio.dtype)


def _where(cond: torch.Tensor, a: float, b: float, like: torch.Tensor) -> torch.Tensor:
    """``torch.where(cond, a, b)`` for Python scalars ``a``, ``b``, built in ``like``'s dtype and device.
    ``torch.where(cond, 1.0 + eps, inf)`` alone is float32 (torch's default dtype): 1 + 0.28 becomes
    1.27999997, so a float64 ratio of 1.27999999 would be clipped."""
    return torch.where(cond, like.new_tensor(a), like.new_tensor(b))


def _ratio(log_ratio: torch.Tensor, max_log_ratio: float) -> torch.Tensor:
    return torch.exp(log_ratio.clamp(-max_log_ratio, max_log_ratio))


def _on(keep: torch.Tensor, off_policy: torch.Tensor | None) -> torch.Tensor:
    """Completion tokens of on-policy rows: what the clip statistics count."""
    return keep if off_policy is None else keep & ~off_policy.bool().unsqueeze(-1)


@torch.no_grad()
def _ratio_metrics(ratio: torch.Tensor, log_ratio: torch.Tensor, keep: torch.Tensor) -> dict[str, float]:
    n = int(keep.sum())
    if n == 0:
        return {"actor/ratio_mean": 0.0, "actor/ratio_max": 0.0, "actor/ratio_min": 0.0, "actor/ppo_kl": 0.0}
    r = ratio.detach()
    mean = torch.where(keep, r, 0.0).sum() / n
    lo, hi = torch.aminmax(torch.where(keep, r, mean))  # the mean lies in [min, max]: a neutral filler
    return {"actor/ratio_mean": float(mean), "actor/ratio_max": float(hi), "actor/ratio_min": float(lo),
            "actor/ppo_kl": -float(torch.where(keep, log_ratio.detach(), 0.0).sum()) / n}


@POLICY_LOSSES.register("ppo_clip")
def ppo_clip(log_ratio: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
             off_policy: torch.Tensor | None = None, eps_low: float = 0.2, eps_high: float = 0.2,
             clip_ratio_c: float | None = None, max_log_ratio: float = 20.0,
             **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """L = max(-r A, -clip(r, 1 - eps_low, 1 + eps_high) A) (PPO / GRPO; eps_high > eps_low is DAPO's
    clip-higher). With a sequence / segment log-ratio this is GSPO / segment-GSPO's clipped loss.

    Computed in the equivalent one-sided form L = -A clamp(r, lo, hi) with (lo, hi) = (-inf, 1 + eps_high)
    for A > 0 and (1 - eps_low, inf) for A <= 0: the same value and gradient as verl's torch.maximum
    form (boundary ties included: both pass the gradient there) in one pass over the (N, T) matrix.

    ``clip_ratio_c``: dual-clip PPO for A < 0 (L = min(L, -c A), i.e. hi = c). verl's ``vanilla`` loss always
    applies it with c = 3; GRPO, DAPO and GSPO papers do not, so it is off by default (None).
    Off-policy rows: (lo, hi) = (-inf, inf), L = -r A (no clip).
    """
    adv = _prepare(log_ratio, advantages, mask, off_policy)
    if clip_ratio_c is not None and clip_ratio_c <= 1.0:
        raise ValueError(f"dual-clip constant clip_ratio_c must be > 1, got {clip_ratio_c}")
    keep = keep_of(mask)
    inf = float("inf")
    pos = adv > 0
    ratio = _ratio(log_ratio, max_log_ratio)
    hi = _where(pos, 1.0 + eps_high, inf, ratio)           # bounds in the ratio's dtype (see _where)
    if clip_ratio_c is not None:
        hi = torch.where(adv < 0, float(clip_ratio_c), hi)
    lo = _where(pos, -inf, 1.0 - eps_low, ratio)
    if off_policy is not None:
        off = off_policy.bool().unsqueeze(-1)
        lo, hi = lo.masked_fill(off, -inf), hi.masked_fill(off, inf)
    r_eff = ratio.clamp(lo, hi)
    loss = torch.where(keep, -adv * r_eff, 0.0)
    with torch.no_grad():
        on = _on(keep, off_policy)
        r = ratio.detach()
        if clip_ratio_c is None:  # verl's pg_clipfrac: the clipped term is the larger loss (A != 0, r outside)
            clipped = (r_eff.detach() != r) & (adv != 0) & on
        else:
            clipped = torch.where(pos, r > 1.0 + eps_high, (adv < 0) & (r < 1.0 - eps_low)) & on
        n_on = max(int(on.sum()), 1)
        metrics = {"actor/clipfrac": float(clipped.sum()) / n_on}
        if clip_ratio_c is not None:
            metrics["actor/clipfrac_lower"] = float(((adv < 0) & (r > clip_ratio_c) & on).sum()) / n_on
        metrics.update(_ratio_metrics(r, log_ratio, keep))
    return loss, metrics


@POLICY_LOSSES.register("gmpo")
def gmpo(log_ratio: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
         off_policy: torch.Tensor | None = None, eps_low: float = 0.4, eps_high: float = 0.4,
         one_sided: bool = True, max_log_ratio: float = 20.0, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """GMPO: geometric mean of token ratios, clipped in log space before the mean.

    s_i = exp( mean_t l'_{i,t} ), L_{i,t} = -s_i A_i on every completion token of row i.
    ``log_ratio`` must be the token-level one (ratio ``token``). ``eps_low`` / ``eps_high`` are the
    LOG-space bounds (c = 0.4: ratio range (e^-0.4, e^0.4)), as verl's ``geo_mean`` reads
    clip_ratio_low / clip_ratio_high.

    ``one_sided=True`` (default) follows verl ``compute_policy_loss_geo_mean`` and the GMPO code:
    l' = sgn(A) min(sgn(A) l, sgn(A) clip(l, -eps_low, eps_high)), a pessimistic bound that clips only
    in the direction that raises the objective (A > 0: l capped at eps_high; A < 0: floored at
    -eps_low). ``one_sided=False`` is ALGORITHMS.md's literal sgn(A) clip(sgn(A) l, -eps_low, eps_high)
    (two-sided).

    Advantages must be sequence-level (N,): GMPO's objective -s_i A_i has one advantage and one clip
    direction sgn(A_i) per row. Token-level advantages (N, T) (e.g. the ``leaf`` estimator's span
    advantages) raise a ValueError instead of being reduced: the previous per-row mean clipped every
    token by the sign of the ROW's mean advantage, not its own, and a per-token sign has no counterpart
    in GMPO's row-level objective (verl's ``geo_mean`` likewise says "we only support sequence level
    advantage"). Token-level advantages go with a per-token loss (``ppo_clip``, as the ``leaf`` preset).

    Aggregation: the matrix repeats -s_i A_i on every token, so it must be aggregated per sequence
    (``seq-mean-token-mean``) to equal the paper's mean_i(-s_i A_i). verl takes a plain mean over
    all rows of the micro-batch (empty rows count as 0); ours averages non-empty rows only. verl also
    leaves the log-ratio unclamped; we clamp the mean log-ratio to +-max_log_ratio before exp.
    Off-policy rows: no clipping (l' = l).
    """
    adv = _prepare(log_ratio, advantages, mask, off_policy)
    if advantages.dim() != 1:
        raise ValueError(
            f"policy loss 'gmpo' needs sequence-level advantages (N,), got shape {tuple(advantages.shape)}: "
            "token-level advantages (N, T), e.g. from the 'leaf' estimator, cannot be combined with 'gmpo' "
            "(one clip direction sgn(A_i) per row). Use policy loss 'ppo_clip' with them (the 'leaf' preset), "
            "or a sequence-level estimator (grpo, dr_grpo, modality) with 'gmpo'")
    keep = keep_of(mask)
    a = adv.squeeze(-1)
    sgn = torch.sign(a).unsqueeze(-1)
    if one_sided:  # A > 0: cap at eps_high only; A < 0: floor at -eps_low only; A = 0: l' = 0
        lo = _where(sgn > 0, -float("inf"), -eps_low, log_ratio)
        hi = _where(sgn < 0, float("inf"), eps_high, log_ratio)
        lp = log_ratio.clamp(lo, hi) * sgn.abs()
    else:
        lp = sgn * (sgn * log_ratio).clamp(-eps_low, eps_high)
    if off_policy is not None:
        lp = torch.where(off_policy.bool().unsqueeze(-1), log_ratio, lp)
    s = torch.exp(row_mean(lp, mask, keep).clamp(-max_log_ratio, max_log_ratio))
    loss = torch.where(keep, (-s * a).unsqueeze(-1), 0.0)
    with torch.no_grad():
        on = _on(keep, off_policy)
        clipped = (log_ratio > eps_high) | (log_ratio < -eps_low)          # verl: l != clamp(l)
        nonempty = keep.any(-1)
        sd = s.detach()[nonempty]
        metrics = {"actor/clipfrac": masked_mean_item((clipped & (a > 0).unsqueeze(-1)).to(sd.dtype), on),
                   "actor/clipfrac_lower": masked_mean_item((clipped & (a < 0).unsqueeze(-1)).to(sd.dtype), on),
                   "actor/ratio_mean": float(sd.mean()) if sd.numel() else 0.0,
                   "actor/ratio_max": float(sd.max()) if sd.numel() else 0.0,
                   "actor/ratio_min": float(sd.min()) if sd.numel() else 0.0,
                   "actor/ppo_kl": -masked_mean_item(log_ratio, keep)}
    return loss, metrics


@POLICY_LOSSES.register("sapo")
def sapo(log_ratio: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
         off_policy: torch.Tensor | None = None, tau_pos: float = 1.0, tau_neg: float = 1.05,
         max_log_ratio: float = 20.0, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """SAPO: soft gate instead of a hard clip. L = -f(r) A, f(r) = sigmoid(tau (r - 1)) * 4 / tau,
    tau = tau_pos if A > 0 else tau_neg (A = 0 uses tau_neg; its loss is 0 anyway).

    Matches verl ``compute_policy_loss_sapo`` (which multiplies by 4/tau): d f / d log r =
    4 sigma (1 - sigma) r, which is exactly 1 at r = 1, so on-policy the gradient is the plain policy
    gradient -A grad log pi, while the loss VALUE at r = 1 is -2 A / tau (not -A). Far from r = 1 the
    gradient decays smoothly to 0 instead of being cut. verl forces seq-mean-token-mean inside the
    loss; here aggregation stays separate (the preset uses seq-mean-token-mean). ``eps_*`` options
    are ignored. Off-policy rows: L = -r A (no gate).
    """
    if tau_pos <= 0 or tau_neg <= 0:
        raise ValueError(f"SAPO temperatures must be > 0, got tau_pos={tau_pos}, tau_neg={tau_neg}")
    adv = _prepare(log_ratio, advantages, mask, off_policy)
    keep = keep_of(mask)
    ratio = _ratio(log_ratio, max_log_ratio)
    tau = _where(adv > 0, tau_pos, tau_neg, ratio)
    gate = torch.sigmoid(tau * (ratio - 1.0)) * (4.0 / tau)
    if off_policy is not None:
        gate = torch.where(off_policy.bool().unsqueeze(-1), ratio, gate)
    loss = torch.where(keep, -adv * gate, 0.0)
    with torch.no_grad():
        metrics = {"actor/clipfrac": 0.0, "actor/sapo_gate_mean": masked_mean_item(gate, _on(keep, off_policy))}
        metrics.update(_ratio_metrics(ratio, log_ratio, keep))
    return loss, metrics
