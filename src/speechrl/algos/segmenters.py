"""Segmenters for segment-level GSPO (segment-level GSPO research note, 2026): split each completion
into contiguous segments.

Signature::

    fn(logp (N, T), ids (N, T), mask (N, T), **opts) -> (segment_ids LongTensor (N, T), metrics)

``segment_ids[i, t]`` is 0, 1, 2, ... along the completion tokens of row i (the k-th segment of the row)
and **-1 on every masked position**. Ids are at most T - 1, so a row has at most T segments.
Segmentation is a discrete choice: no gradient flows through it (``logp`` is read detached). The
trainer segments on the *sampling* policy's log-probs (``old_logp``), so segments stay fixed while
the policy moves.

A segment starts at the first completion token of a row, after any masked gap, and wherever the
segmenter's rule fires. Everything is vectorised (a cumulative sum over boundary flags); no Python
loop over tokens.

Defaults: the segment-level GSPO research note (2026) gives no values for W / tau / delta (it tried
W-windows on Llasa-1B); the
defaults below are starting points, not paper settings: W = 4, tau = 1.0 nat, delta = 1024 ids.
A segmenter's options are its keyword-only parameters (:func:`segmenter_options`); ``rl.segmenter_opts``
overrides them and ``suite.segmenter_sweep`` trains one system per value (``gspo_segment_window@window=16``).
"""

from __future__ import annotations

import inspect
import math

import torch

from speechrl.algos._checks import matrix
from speechrl.registry import Registry

SEGMENTERS: Registry = Registry("segmenter")

OPTION_MINIMUM = {"window": 1, "tau": 0.0, "delta": 0}
"""Smallest valid value of each segmenter option (``window`` and ``delta`` are integers)."""


def segmenter_options(name: str) -> dict[str, type]:
    """The options segmenter ``name`` takes, with their types: its keyword-only parameters (``{"window": int}``)."""
    params = inspect.signature(SEGMENTERS.get(name)).parameters.values()
    return {p.name: type(p.default) for p in params if p.kind is p.KEYWORD_ONLY}


def all_options() -> dict[str, type]:
    """Every option some registered segmenter takes -> its type."""
    return {k: t for name in SEGMENTERS.names() for k, t in segmenter_options(name).items()}


def check_option(key: str, value: float, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` unless ``key`` is a segmenter option and ``value`` valid for it."""
    options = all_options()
    if key not in options:
        takes = "; ".join(f"{n}: {', '.join(segmenter_options(n))}" for n in SEGMENTERS.names())
        raise ValueError(f"{where}: unknown segmenter option {key!r}; the segmenters take {takes}")
    if not math.isfinite(value) or value < OPTION_MINIMUM.get(key, -math.inf) or (options[key] is int and value != int(value)):
        kind = "an integer" if options[key] is int else "a number"
        raise ValueError(f"{where}: {key}={value:g} must be {kind} >= {OPTION_MINIMUM.get(key, '-inf')}")


def _from_jumps(jump: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Jump flags (N, T - 1) between t - 1 and t -> segment ids: token t continues the segment of t - 1
    iff both are completion tokens and there is no jump; every other completion token starts one."""
    m = mask.bool()
    starts = m.clone()
    starts[:, 1:] &= ~(m[:, :-1] & ~jump)
    csum = starts.cumsum(-1, dtype=torch.int32)
    seg = torch.where(m, csum - 1, -1).long()
    n_seg = (csum[:, -1] if csum.shape[-1] else torch.zeros(csum.shape[0])).float()
    nonempty = n_seg > 0
    return seg, {"seg/per_row": float(n_seg[nonempty].mean()) if nonempty.any() else 0.0,
                 "seg/mean_len": float(m.sum()) / max(float(n_seg.sum()), 1.0)}


def _jumps(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """(N, T - 1) flags: |x_t - x_{t-1}| > threshold, for t = 1 .. T - 1."""
    return (x[:, 1:] - x[:, :-1]).abs() > threshold


@SEGMENTERS.register("fixed")
def fixed(logp: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, *, window: int = 4,
          **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """Fixed windows of W completion tokens: ceil(|y_i| / W) segments (the last one may be shorter).

    Windows count completion tokens (rank among the row's masked-in tokens), so left padding or
    holes in the mask do not shift them.
    """
    matrix(logp=logp, ids=ids, mask=mask)
    w = int(window)
    if w < 1:
        raise ValueError(f"segment window must be >= 1, got {window}")
    keep = mask.bool()
    rank = keep.to(torch.int32).cumsum(-1, dtype=torch.int32)      # 1-based rank among completion tokens
    seg = torch.where(keep, torch.div(rank - 1, w, rounding_mode="floor"), -1).long()
    lengths = rank[:, -1].long() if rank.shape[-1] else torch.zeros(rank.shape[0], dtype=torch.long)
    n_seg = torch.div(lengths + w - 1, w, rounding_mode="floor").float()
    nonempty = lengths > 0
    return seg, {"seg/per_row": float(n_seg[nonempty].mean()) if nonempty.any() else 0.0,
                 "seg/mean_len": float(lengths.sum()) / max(float(n_seg.sum()), 1.0)}


@SEGMENTERS.register("logprob_jump")
def logprob_jump(logp: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, *, tau: float = 1.0,
                 **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """A new segment where |logp_t - logp_{t-1}| > tau (a jump in the sampling log-prob)."""
    matrix(logp=logp, ids=ids, mask=mask)
    return _from_jumps(_jumps(logp.detach(), float(tau)), mask)


@SEGMENTERS.register("tokenid_jump")
def tokenid_jump(logp: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, *, delta: int = 1024,
                 **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """A new segment where |id_t - id_{t-1}| > delta (meaningful for ordered codec-token vocabularies)."""
    matrix(logp=logp, ids=ids, mask=mask)
    return _from_jumps(_jumps(ids.long(), int(delta)), mask)
