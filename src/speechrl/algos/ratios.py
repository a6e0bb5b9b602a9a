"""Importance-ratio levels: per-token LOG ratios with the gradient path of each method.

Signature::

    fn(logp (N, T), old_logp (N, T), mask (N, T), *, segments: LongTensor (N, T) | None = None,
       p: float = 1.0, **_) -> (log_ratio (N, T), metrics)

``l_{i,t} = logp - old_logp`` on completion tokens. Every level returns a (N, T) matrix whose
exponential is the ratio each token's loss uses; ``POLICY_LOSSES`` take it as input. Masked
positions are exactly 0 with zero gradient (NaN/inf in padding cannot leak); an all-masked row is 0.

| name | value at token t of row i | gradient path |
|---|---|---|
| token | l_{i,t} | to token t only |
| sequence (GSPO) | s_i = mean_t l_{i,t} | to every token of the row, 1/|y_i| each |
| gspo_token | sg[s_i] + logp - sg[logp] (value == s_i) | to token t only: exp gives sg[e^{s_i}] pi/sg[pi] |
| segment | s_{i,k} = mean_{t in S_k} l_{i,t} | to every token of segment k, 1/|S_k| each |
| segment_token | sg[s_{i,k}] + logp - sg[logp] | to token t only |
| p_gspo | sum_t l_{i,t} / |y_i|^p | to every token, 1/|y_i|^p each |

Segment ratio, decided: the segment-level GSPO research note (2026) writes
w_{i,k} = (sum_{t in S_k} pi/pi_old)^{1/|S_k|}; we read the
sum as a product (the geometric mean, as GSPO's sequence ratio; a literal sum of ratios would not
equal 1 on-policy), i.e. exp(mean_{t in S_k} l). ``segment`` is that plain per-segment mean (the
segment analogue of ``sequence``: clipping acts on the whole segment); ``segment_token`` is the
token form of ALGORITHMS.md (same value, per-token gradient; analogue of ``gspo_token``). Presets use
``segment``. With a sequence-constant advantage and an aggregation that averages a segment's tokens
the two give the same gradient; they differ with token-level advantages.

verl's GSPO (``compute_policy_loss_gspo``) is the token form (``gspo_token`` here) and clamps the
log-ratio at +10 before exp; our losses clamp at +-20 (``max_log_ratio``), like verl's vanilla PPO.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch

from speechrl.algos._checks import keep_of, masked, matrix, row_mean, version_of
from speechrl.registry import Registry

RATIOS: Registry = Registry("ratio level")


def _token_l(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    matrix(logp=logp, old_logp=old_logp, mask=mask)
    return masked(logp - old_logp, mask)


def _broadcast(per_row: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return masked(per_row.unsqueeze(-1).expand(mask.shape), mask)


def _straight_through(value: torch.Tensor, logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sg[value] + logp - sg[logp]: the value of ``value``, the gradient of logp (token form)."""
    return masked(value.detach() + (logp - logp.detach()), mask)


@dataclass(frozen=True)
class SegmentTable:
    """Per-token view of a segmentation (N, T): what segment ratios and segment aggregation need."""

    idx: torch.Tensor       # long: segment id, 0 on masked positions (always a valid scatter index)
    inv_len: torch.Tensor   # float: 1 / |S_k| of the token's segment, 0 on masked positions
    inv_k: torch.Tensor     # float (N, 1): 1 / K_i (number of segments of the row; 1 if none)


_TABLE_CACHE: list = []  # one entry: (weakref(segments), weakref(mask), versions, dtype, table)


def segment_table(segments: torch.Tensor | None, mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> SegmentTable:
    """Validate ``segments`` against ``mask`` and build its table. The last table is memoised (keyed on the
    tensors' identity and version counters; it is held until the next call), so a segment ratio and the
    segment aggregation of one step share the work; an in-place change of either tensor invalidates it."""
    if segments is None:
        raise ValueError("a segment ratio needs segments (N, T) from a segmenter; got None")
    if tuple(segments.shape) != tuple(mask.shape):
        raise ValueError(f"shape mismatch: segments {tuple(segments.shape)} vs mask {tuple(mask.shape)}")
    if segments.dtype.is_floating_point or segments.dtype == torch.bool:
        raise ValueError(f"segments must be an integer tensor of segment ids, got {segments.dtype}")
    key_v = (version_of(segments), version_of(mask))
    if _TABLE_CACHE and None not in key_v:
        seg_ref, mask_ref, cached_v, cached_dtype, table = _TABLE_CACHE[0]
        if seg_ref() is segments and mask_ref() is mask and cached_v == key_v and cached_dtype == dtype:
            return table
    keep = keep_of(mask)
    idx = torch.where(keep, segments.long(), 0)   # masked positions may hold anything (-1 by convention)
    if idx.numel():
        lo, hi = torch.aminmax(idx)
        if int(lo) < 0:
            bad = (idx < 0).nonzero()[0].tolist()
            raise ValueError(f"segments has a negative id at completion tokens (mask 1), first at {bad}")
        if int(hi) >= mask.shape[-1]:
            raise ValueError(f"segments ids must lie in [0, T={mask.shape[-1]}) on completion tokens, got max {int(hi)}")
    m = keep.to(dtype)
    counts = torch.zeros(mask.shape, dtype=dtype, device=mask.device).scatter_add_(1, idx, m)   # |S_k| at index k
    inv_len = m / counts.gather(1, idx).clamp(min=1.0)
    inv_k = 1.0 / (counts > 0).sum(-1, keepdim=True).clamp(min=1).to(dtype)
    table = SegmentTable(idx=idx, inv_len=inv_len, inv_k=inv_k)
    _TABLE_CACHE[:] = [] if None in key_v else [(weakref.ref(segments), weakref.ref(mask), key_v, dtype, table)]
    return table


def segment_mean(x: torch.Tensor, segments: torch.Tensor, mask: torch.Tensor, *, premasked: bool = False) -> torch.Tensor:
    """(N, T) -> (N, T): each token gets the mean of ``x`` over its segment's masked tokens (0 when masked).
    ``premasked``: x is already exactly 0 on masked positions (skips one pass)."""
    table = segment_table(segments, mask, x.dtype)
    sums = torch.zeros_like(x).scatter_add(1, table.idx, x if premasked else masked(x, mask))
    return sums.gather(1, table.idx) * table.inv_len   # inv_len is 0 on masked positions


@RATIOS.register("token")
def token(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """l_{i,t} = logp - old_logp (GRPO / PPO / DAPO)."""
    return _token_l(logp, old_logp, mask), {}


@RATIOS.register("sequence")
def sequence(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """GSPO: s_i = (1/|y_i|) sum_t l_{i,t} broadcast to the row's tokens; gradient to every token."""
    l = _token_l(logp, old_logp, mask)
    return _broadcast(row_mean(l, mask, premasked=True), mask), {}


@RATIOS.register("gspo_token")
def gspo_token(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """GSPO-token: sg[s_i] + logp - sg[logp]; value == GSPO's, gradient per token (verl's ``gspo``)."""
    l = _token_l(logp, old_logp, mask)
    return _straight_through(_broadcast(row_mean(l, mask, premasked=True), mask), logp, mask), {}


@RATIOS.register("segment")
def segment(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor, *, segments: torch.Tensor | None = None,
            **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """Segment-level GSPO (segment-level GSPO research note, 2026): s_{i,k} = mean_{t in S_k} l_{i,t} on
    every token of S_k.

    One segment per row == ``sequence``; segments of length 1 == ``token``.
    """
    l = _token_l(logp, old_logp, mask)
    return segment_mean(l, segments, mask, premasked=True), {}


@RATIOS.register("segment_token")
def segment_token(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor, *,
                  segments: torch.Tensor | None = None, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """Token form of the segment ratio: sg[s_{i,k}] + logp - sg[logp] (ALGORITHMS.md)."""
    l = _token_l(logp, old_logp, mask)
    return _straight_through(segment_mean(l, segments, mask, premasked=True), logp, mask), {}


@RATIOS.register("p_gspo")
def p_gspo(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor, *, p: float = 1.0,
           **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """P-GSPO: sum_t l_{i,t} / |y_i|^p broadcast; p = 1 is GSPO, p = 0 the unnormalised sum."""
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"P-GSPO exponent p must lie in [0, 1], got {p}")
    l = _token_l(logp, old_logp, mask)
    n = mask.to(l.dtype).sum(-1).clamp(min=1.0)
    return _broadcast(l.sum(-1) / n.pow(float(p)), mask), {}
