"""Loss aggregation over a (N, T) per-token loss matrix with mask (N, T); verl ``agg_loss`` meanings.

Signature: ``fn(loss (N, T), mask (N, T), *, norm_constant=None) -> (scalar, metrics)``.
Fully masked rows contribute nothing; an all-masked batch gives 0 (not NaN).
"""

from __future__ import annotations

import torch

from speechrl.algos._checks import same_shape
from speechrl.registry import Registry

AGGREGATIONS: Registry = Registry("loss aggregation")


def _rows(mask: torch.Tensor) -> torch.Tensor:
    return (mask.sum(-1) > 0).float()


@AGGREGATIONS.register("token-mean")
def token_mean(loss: torch.Tensor, mask: torch.Tensor, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """sum over all tokens / number of tokens (DAPO; seed 000's "DAPO loss")."""
    same_shape(loss=loss, mask=mask)
    m = mask.to(loss.dtype)
    return (loss * m).sum() / m.sum().clamp(min=1.0), {}


@AGGREGATIONS.register("seq-mean-token-mean")
def seq_mean_token_mean(loss: torch.Tensor, mask: torch.Tensor, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """mean over sequences of (mean over the sequence's tokens) (original GRPO)."""
    same_shape(loss=loss, mask=mask)
    m = mask.to(loss.dtype)
    per_seq = (loss * m).sum(-1) / m.sum(-1).clamp(min=1.0)
    rows = _rows(m)
    return (per_seq * rows).sum() / rows.sum().clamp(min=1.0), {}


@AGGREGATIONS.register("seq-mean-token-sum")
def seq_mean_token_sum(loss: torch.Tensor, mask: torch.Tensor, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """mean over sequences of (sum over the sequence's tokens)."""
    same_shape(loss=loss, mask=mask)
    m = mask.to(loss.dtype)
    rows = _rows(m)
    return ((loss * m).sum(-1) * rows).sum() / rows.sum().clamp(min=1.0), {}


@AGGREGATIONS.register("seq-mean-token-sum-norm")
def seq_mean_token_sum_norm(loss: torch.Tensor, mask: torch.Tensor, *, norm_constant: float | None = None,
                            **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """sum over all tokens / (N * norm_constant) (Dr.GRPO; constant defaults to T, the padded length)."""
    same_shape(loss=loss, mask=mask)
    c = float(norm_constant if norm_constant is not None else loss.shape[-1])
    return (loss * mask.to(loss.dtype)).sum() / (loss.shape[0] * c), {}
