"""Loss aggregation over a (N, T) per-token loss matrix with mask (N, T); verl ``agg_loss`` meanings.

Signature: ``fn(loss (N, T), mask (N, T), *, norm_constant=None, segments=None, n_tokens=None, n_seqs=None, **_)
-> (scalar, metrics)`` (entries ignore the keywords they do not use).

Global normalisers (verl ``agg_loss`` with ``global_batch_info``): ``n_tokens`` and ``n_seqs`` are the
token count and the non-empty-row count of the whole optimisation batch, over every micro-batch and
rank. Given them, an entry returns this micro-batch's share of the global objective, so the shares of
all micro-batches and ranks add up to the one-batch value whatever the split (a trainer whose ranks
average gradients multiplies by the world size, as verl does with ``dp_size``). Left ``None``, the
batch's own counts are used: the one-batch objective.

Fully masked rows contribute nothing and are not counted as sequences (as verl's ``agg_loss`` before
PR #4510, which builds ``seq_mask = (mask.sum(-1) > 0)``; after that PR, verl's seq-mean-* modes count
empty rows in the denominator). An all-masked batch gives 0, where verl's token-mean divides 0 by 0
(NaN). Empty rows only arise here from DAPO's overlong filter. Differences from verl, all intentional:

* seq-mean-token-mean: verl divides a row by (|y_i| + 1e-8); we divide by max(|y_i|, 1) (the exact mean;
  below 1e-7 relative on real data).
* seq-mean-token-sum-norm: Dr.GRPO's form, sum_i sum_t L / (#non-empty rows * C) with C =
  ``norm_constant`` (default T, the padded length; the trainer passes C = max_new_tokens, Dr.GRPO's
  MAX_TOKENS). verl before PR #4510 computes sum_i sum_t L / C (no mean over rows: N times larger,
  which matters with gradient clipping); verl after PR #4510 divides by (all rows * C), i.e. equal to
  ours when no row is empty. Checked against both versions' source.
* seq-mean-segment-mean (ours, segment-level GSPO research note, 2026): "average within a
  segment, then over segments", then over sequences. Needs ``segments`` (N, T). Not among the
  ``rl.loss_agg`` override choices of the config (the segment presets set it themselves).
"""

from __future__ import annotations

import torch

from speechrl.algos._checks import masked, matrix
from speechrl.registry import Registry

AGGREGATIONS: Registry = Registry("loss aggregation")


def _seq_mean(per_seq: torch.Tensor, counts: torch.Tensor, n_seqs: float | None = None) -> torch.Tensor:
    """Sum of per-sequence values over the rows with at least one token (counts (N,) > 0), divided by
    ``n_seqs`` (the global count) or else by the number of such rows here."""
    rows = counts > 0
    denom = rows.sum().clamp(min=1) if n_seqs is None else max(float(n_seqs), 1.0)
    return torch.where(rows, per_seq, 0.0).sum() / denom


def _tokens(mask: torch.Tensor, n_tokens: float | None) -> torch.Tensor | float:
    return mask.sum().clamp(min=1) if n_tokens is None else max(float(n_tokens), 1.0)


@AGGREGATIONS.register("token-mean")
def token_mean(loss: torch.Tensor, mask: torch.Tensor, *, n_tokens: float | None = None,
               **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """sum over all tokens / number of tokens (DAPO; the "DAPO loss" of Elmakies et al. 2025, arXiv 2509.16990; LEAF)."""
    matrix(loss=loss, mask=mask)
    return masked(loss, mask).sum() / _tokens(mask, n_tokens), {}


@AGGREGATIONS.register("seq-mean-token-mean")
def seq_mean_token_mean(loss: torch.Tensor, mask: torch.Tensor, *, n_seqs: float | None = None,
                        **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """mean over sequences of (mean over the sequence's tokens) (original GRPO; GSPO, GMPO, SAPO)."""
    matrix(loss=loss, mask=mask)
    counts = mask.sum(-1)
    return _seq_mean(masked(loss, mask).sum(-1) / counts.clamp(min=1), counts, n_seqs), {}


@AGGREGATIONS.register("seq-mean-token-sum")
def seq_mean_token_sum(loss: torch.Tensor, mask: torch.Tensor, *, n_seqs: float | None = None,
                       **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """mean over sequences of (sum over the sequence's tokens)."""
    matrix(loss=loss, mask=mask)
    return _seq_mean(masked(loss, mask).sum(-1), mask.sum(-1), n_seqs), {}


@AGGREGATIONS.register("seq-mean-token-sum-norm")
def seq_mean_token_sum_norm(loss: torch.Tensor, mask: torch.Tensor, *, norm_constant: float | None = None,
                            n_seqs: float | None = None, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """mean over sequences of (sum over tokens) / C (Dr.GRPO; C = ``norm_constant``, default T)."""
    matrix(loss=loss, mask=mask)
    c = float(norm_constant if norm_constant is not None else loss.shape[-1])
    if c <= 0:
        raise ValueError(f"norm_constant must be > 0, got {c}")
    return _seq_mean(masked(loss, mask).sum(-1), mask.sum(-1), n_seqs) / c, {}


@AGGREGATIONS.register("seq-mean-segment-mean")
def seq_mean_segment_mean(loss: torch.Tensor, mask: torch.Tensor, *, segments: torch.Tensor | None = None,
                          n_seqs: float | None = None, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """mean over sequences of (mean over segments of (mean over the segment's tokens)).

    Token t of segment k in row i weighs 1 / (|S_k| K_i). One segment per row == seq-mean-token-mean;
    segments of length 1 == seq-mean-token-mean too.
    """
    from speechrl.algos.ratios import segment_table

    matrix(loss=loss, mask=mask)
    table = segment_table(segments, mask, loss.dtype)
    per_seq = (masked(loss, mask) * table.inv_len).sum(-1) * table.inv_k.squeeze(-1)
    return _seq_mean(per_seq, mask.sum(-1), n_seqs), {}


def batch_counts(mask: torch.Tensor) -> tuple[float, float]:
    """(tokens, non-empty rows) of a (N, T) mask. Summed over every micro-batch and rank they are the
    ``n_tokens`` / ``n_seqs`` global normalisers of the aggregations above."""
    return float(mask.sum()), float((mask.sum(-1) > 0).sum())
