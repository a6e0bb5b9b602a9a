"""DAPO's batch-level extras as pure functions: dynamic sampling, soft overlong penalty, overlong filter.

The trainer owns the loop around them (refill after dropping groups, adding the penalty to the
reward, masking truncated rows); these only compute.
"""

from __future__ import annotations

import torch

from speechrl.algos._checks import group_view, matrix, rows


def dynamic_sampling_keep(rewards: torch.Tensor, group_size: int, *,
                          keep_singletons: bool = True) -> tuple[torch.Tensor, dict[str, float]]:
    """Which groups to keep: those whose rewards are not all equal (zero-variance groups give zero
    advantage and only dilute the batch). Returns ``keep_groups`` BoolTensor (B,) with B = N / G; the
    trainer drops the others and refills from the next batch until it has enough groups.

    Matches verl's DAPO filter (``std > 0 or len == 1``): a group of one is kept
    (``keep_singletons``). NaN rewards (failed scorers) are ignored when judging the variance; a group
    with no finite reward is dropped; +-inf is an error.
    """
    r = group_view(rewards.float(), group_size)
    if torch.isinf(r).any():
        raise ValueError(f"rewards has infinite values at indices {torch.isinf(r).flatten().nonzero().flatten().tolist()[:8]}")
    ok = ~torch.isnan(r)
    hi = torch.where(ok, r, torch.full_like(r, float("-inf"))).max(1).values
    lo = torch.where(ok, r, torch.full_like(r, float("inf"))).min(1).values
    keep = ok.any(1) & (hi > lo)
    if keep_singletons and group_size == 1:
        keep = ok.any(1)
    return keep, {"dapo/kept_groups": float(keep.float().mean()) if keep.numel() else 0.0,
                  "dapo/dropped_groups": float((~keep).sum())}


def overlong_penalty(lengths: torch.Tensor, max_len: int, cache_len: int, *,
                     factor: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """DAPO soft overlong punishment, added to the reward (N,):

        0                                   if |y| <= L_max - L_cache
        ((L_max - L_cache) - |y|) / L_cache  if L_max - L_cache < |y| <= L_max   (0 ... -1)
        -1                                  if |y| > L_max

    times ``factor`` (verl's ``overlong_buffer.penalty_factor``, 1.0). verl computes
    min(-(|y| - (L_max - L_cache)) / L_cache * factor, 0), identical up to L_max (its responses never
    exceed L_max); beyond L_max we hold -factor. ``cache_len`` = 0 gives 0 up to L_max, -1 beyond.
    """
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D (N,), got shape {tuple(lengths.shape)}")
    if not 0 <= cache_len <= max_len or max_len < 1:
        raise ValueError(f"need 0 <= cache_len <= max_len and max_len >= 1, got cache_len={cache_len}, max_len={max_len}")
    y = lengths.float()
    expected = float(max_len - cache_len)
    soft = (expected - y) / float(cache_len) if cache_len > 0 else torch.zeros_like(y)
    pen = torch.where(y <= expected, torch.zeros_like(y), soft)
    pen = torch.where(y > max_len, torch.full_like(y, -1.0), pen) * factor
    return pen, {"dapo/overlong_penalised": float((pen < 0).float().mean()) if pen.numel() else 0.0,
                 "dapo/overlong_penalty_mean": float(pen.mean()) if pen.numel() else 0.0}


def overlong_filter(mask: torch.Tensor, truncated: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """DAPO overlong filtering: rows cut at the length limit (``truncated`` (N,) bool, no EOS) are
    excluded from the loss: their mask row becomes 0. Returns the new mask (N, T), same dtype."""
    if mask.dim() != 2:
        raise ValueError(f"mask must be 2-D (N, T), got shape {tuple(mask.shape)}")
    rows(truncated, mask.shape[0], "truncated", "mask")
    out = mask * (~truncated.bool()).unsqueeze(-1).to(mask.dtype)
    return out, {"dapo/overlong_filtered": float(truncated.float().mean()) if truncated.numel() else 0.0}


def truncated_rows(mask: torch.Tensor, ids: torch.Tensor, eos_id: int, max_len: int) -> torch.Tensor:
    """(N,) bool: completions that reached ``max_len`` tokens without an EOS (helper for the trainer)."""
    matrix(mask=mask, ids=ids)
    has_eos = ((ids == eos_id) & mask.bool()).any(-1)
    return (mask.bool().sum(-1) >= max_len) & ~has_eos
