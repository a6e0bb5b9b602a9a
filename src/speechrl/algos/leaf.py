"""LEAF (Gerogiannis et al. 2026): span-level advantages from a retrospective prefix tree over each group
of K completions.

Follows ``build_prefix_tree_from_trajectories`` / ``sample_prefix_tree_retro_batch`` and
``normalize_step_advantages_zscore`` of the reference (github Grimoid/LEAF,
openrlhf/speech_leaf/sampler.py), vectorised: loops run over the B fork slots only, never over
tokens or groups. Per group of K completions (rows of one prompt, contiguous):

1. **Candidates** are every (row i, position t) with max(min_prefix, 1) <= t < |y_i|, scored by the
   surprisal of token t, pooled over the whole GROUP (not per completion). Sorted by descending
   surprisal (compared in float32); ties keep the reference's order (row, then position: a stable
   sort of the row-major flattening), as Python's stable ``list.sort`` does there.
2. **Boundaries**: greedily take the next candidate POSITION at least
   Delta = max(2, floor(l_min / (B + 1))) away from every position already taken, until B are
   taken. l_min is the shortest NON-EMPTY completion of the group (1 if all are empty). The
   positions are shared by the group (the row a candidate came from only matters for its score).
3. **Nodes**: at each boundary p, rows are grouped by their length-capped prefix ids[:min(|y|, p)]
   (exact token equality, and equal capped length - the reference's tuple key); a group with > 1
   member is a node v with V(v) = mean terminal reward of its members, n(v) = member count.
   Empty completions take part (key = ()), as in the reference.
4. **Spans** of row i: walking its nodes by ascending boundary, the span [prev, p) ending at node v
   gets (GA + LA) / sqrt(n(v)) with GA = V(v) - V(root), LA = V(v) - V(parent), where V(root) is the
   group's mean reward and the parent is the previous node on the row's path (the root first). The
   tail [last boundary on the path, |y_i|) gets (R_i - V(root)) + (R_i - V(last node)), NOT divided
   by sqrt(n). A boundary at or past |y_i| (short row inside a node) closes no tail: the row has no
   tail span, as in the reference. ``terms`` = global | local keeps GA or LA only (reference's
   ``advantage_terms``).
5. **z-score** of span advantages (each span counts once, whatever its length): unbiased variance
   (divisor max(n - 1, 1)), std floored at eps = 1e-6 (max, not +).

Numerics (a departure from the reference, as ``grpo`` in ``advantages.py``): the tree values, the span
advantages and the z-score statistics are float64, a group whose rewards are all equal gets span
advantages of exactly 0, and a z-score scope (group or batch) whose span advantages are all equal gives
exactly 0. In float32 eight rewards of 0.3 give V(v) - V(root) ~ 3e-8, which the z-score (std floored
at 1e-6) blew up to |A| ~ 0.02-0.04 on every token. The result is cast back to the rewards' dtype
(float32 for integer rewards). Under ``zscore="batch"`` a constant group inside a NON-constant batch
still receives -mean/std of the batch's spans (its raw spans are 0, the batch mean need not be).

Choices and differences (documented, intentional):

* z-score scope: ALGORITHMS.md says "over the batch" -> ``zscore="batch"`` (default). The reference
  normalises per prompt (its ``normalize_step_advantages_zscore`` runs on one prompt's sequences) and
  only when ``speech_tree_advantage_norm="zscore"`` (its default is "none"): ``zscore="group"`` /
  ``"none"`` reproduce those.
* A group with no candidate at all (every completion has <= min_prefix tokens) gets the reference's
  fallback, one span with A = R - V(root) (single term, not doubled).
* B = 0 means no boundary (tail = 2 (R - V(root))). The reference's loop appends one candidate before
  checking the budget, so its B = 0 still forks once.
* Surprisal is an input (N, T). The reference uses -log softmax of HF ``output_scores``, i.e. after
  temperature AND top-p/top-k processing. The trainer's natural input is -old_logp (temperature
  only); the two agree when top_p = 1 and top_k = 0.
* ``mask`` must be a prefix mask (ones then zeros per row): LEAF positions are token indices.
* Returned advantages are per token (N, T), 0 on masked positions; empty completions get 0
  (the reference drops them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speechrl.algos._checks import finite, group_view, matrix
from speechrl.algos.advantages import ADVANTAGES


@dataclass
class LeafTree:
    """The tree of one batch. Bg = N // K groups, B boundary slots, S = B + 1 span slots per row."""

    forks: torch.Tensor        # (Bg, B) long: boundary positions ascending, -1 = unused slot
    delta: torch.Tensor        # (Bg,) long: minimum separation Delta
    in_node: torch.Tensor      # (N, B) bool: row i is in a node (> 1 member) at boundary b
    node_value: torch.Tensor   # (N, B) float64: V of row i's group at boundary b
    node_size: torch.Tensor    # (N, B) long: members of row i's group at boundary b
    root: torch.Tensor         # (N,) float64: V(root) of row i's group
    span_adv: torch.Tensor     # (N, S) float64: raw advantage of the span ending at boundary b; slot B = tail
    span_exists: torch.Tensor  # (N, S) bool: the reference creates this span
    token_span: torch.Tensor   # (N, T) long: span slot of each token, -1 on masked positions


def _check(rewards: torch.Tensor, group_size: int, ids: torch.Tensor | None, mask: torch.Tensor | None,
           surprisal: torch.Tensor | None) -> torch.Tensor:
    for name, t in (("ids", ids), ("mask", mask), ("surprisal", surprisal)):
        if t is None:
            raise ValueError(f"LEAF needs {name} (N, T); got None")
    matrix(ids=ids, mask=mask, surprisal=surprisal)
    if ids.shape[0] != rewards.shape[0]:
        raise ValueError(f"shape mismatch: rewards {tuple(rewards.shape)} vs ids {tuple(ids.shape)}")
    finite(rewards, "rewards")
    r = group_view(rewards.double(), group_size)
    m = mask.bool()
    if (m[:, 1:] & ~m[:, :-1]).any():
        raise ValueError("LEAF needs a prefix mask (ones then zeros in every row of mask)")
    if (torch.isnan(surprisal) & m).any():
        raise ValueError("surprisal has NaN at completion tokens (mask 1)")
    return r


def _combine(ga: torch.Tensor, la: torch.Tensor, terms: str) -> torch.Tensor:
    if terms == "both":
        return ga + la
    if terms == "global":
        return ga
    if terms == "local":
        return la
    raise ValueError(f"unknown LEAF advantage terms '{terms}'; valid: both, global, local")


def leaf_tree(rewards: torch.Tensor, group_size: int, ids: torch.Tensor, mask: torch.Tensor,
              surprisal: torch.Tensor, *, B: int = 2, min_prefix: int = 1, terms: str = "both") -> LeafTree:
    """Build the LEAF tree (boundaries, nodes, raw span advantages) for every group of ``group_size``."""
    r = _check(rewards, group_size, ids, mask, surprisal)
    _combine(r[:1, :1], r[:1, :1], terms)  # validate ``terms`` early
    if B < 0:
        raise ValueError(f"LEAF fork budget B must be >= 0, got {B}")
    n, T = ids.shape
    K, Bg, dev = group_size, n // group_size, ids.device
    lengths = mask.bool().sum(-1)                                           # (N,)
    t_idx = torch.arange(T, device=dev)

    # 1-2. candidates pooled per group; the b-th boundary is the best-scoring candidate position at least
    # Delta from the ones taken (== the reference's greedy scan over its stably sorted list): argmax
    # returns the FIRST maximum, i.e. ties go to the smallest (row, position) as in the reference.
    cand = (t_idx >= max(int(min_prefix), 1)) & (t_idx < lengths.unsqueeze(-1))          # (N, T)
    lowest = torch.finfo(torch.float32).min
    score = surprisal.float().clamp(min=lowest).masked_fill(~cand, float("-inf")).view(Bg, K * T)
    pos = t_idx.repeat(K)                                                             # (K T,) position of a flat index
    l_g = lengths.view(Bg, K)
    l_min = torch.where(l_g > 0, l_g, torch.full_like(l_g, T + 1)).min(1).values
    l_min = torch.where(l_min > T, torch.ones_like(l_min), l_min)
    delta = torch.clamp(torch.div(l_min, max(B, 1) + 1, rounding_mode="floor"), min=2)
    picks = torch.full((Bg, B), -1, dtype=torch.long, device=dev)
    for b in range(B if K * T > 0 else 0):
        best = score.argmax(1)
        has = score.gather(1, best.unsqueeze(1)).squeeze(1) > float("-inf")
        p = torch.where(has, pos[best], torch.full_like(best, -1))
        picks[:, b] = p
        if b + 1 < B:
            score = score.masked_fill((pos.unsqueeze(0) - p.unsqueeze(1)).abs() < delta.unsqueeze(1), float("-inf"))
    forks = torch.where(picks < 0, torch.full_like(picks, T + 1), picks).sort(1).values
    forks = torch.where(forks > T, torch.full_like(forks, -1), forks)
    exists = forks >= 0                                                               # (Bg, B)

    # 3. nodes: equal length-capped prefixes. Longest common prefix of every pair in a group, up to the
    # last boundary; positions past a row's length hold a sentinel unique to the row, so a pair always
    # mismatches at min(|y_i|, |y_j|) (an extra sentinel column guarantees a mismatch for i != j).
    tmax = int(forks.max()) if B and bool(exists.any()) else 0
    row_id = torch.arange(n, device=dev).view(Bg, K, 1)
    ids_s = torch.where(t_idx[:tmax] < l_g.unsqueeze(-1), ids.view(Bg, K, T)[..., :tmax], -1 - row_id)
    ids_s = torch.cat([ids_s, -1 - row_id], -1)                                       # (Bg, K, tmax + 1)
    lcp = (ids_s.unsqueeze(2) != ids_s.unsqueeze(1)).to(torch.uint8).argmax(-1)       # (Bg, K, K) first mismatch
    lcp = torch.where(torch.eye(K, dtype=torch.bool, device=dev), torch.full_like(lcp, tmax + 1), lcp)
    capped = torch.minimum(l_g.unsqueeze(-1), forks.clamp(min=0).unsqueeze(1))       # (Bg, K, B)
    same = ((capped.unsqueeze(2) == capped.unsqueeze(1)) & (lcp.unsqueeze(-1) >= capped.unsqueeze(2))
            & exists.view(Bg, 1, 1, B))                                               # (Bg, K_i, K_j, B)
    size = same.sum(2)                                                                # (Bg, K, B)
    value = (same.to(r.dtype) * r.view(Bg, 1, K, 1)).sum(2) / size.clamp(min=1)
    in_node = exists.unsqueeze(1) & (size > 1)

    # 4. spans along each row's path (ascending boundaries)
    root = r.mean(1, keepdim=True).expand(Bg, K)
    prev_v, last = root.clone(), torch.zeros_like(l_g)
    span = torch.zeros(Bg, K, B + 1, dtype=r.dtype, device=dev)
    for b in range(B):
        on, v = in_node[..., b], value[..., b]
        pr = _combine(v - root, v - prev_v, terms) / size[..., b].clamp(min=1).to(r.dtype).sqrt()
        span[..., b] = torch.where(on, pr, torch.zeros_like(pr))
        prev_v = torch.where(on, v, prev_v)
        last = torch.where(on, forks[:, b].unsqueeze(1).expand(Bg, K), last)
    tail = _combine(r - root, r - prev_v, terms)
    no_cand = ~cand.view(Bg, K * T).any(1, keepdim=True)
    span[..., B] = torch.where(no_cand, r - root, tail)
    constant = r.max(1, keepdim=True).values == r.min(1, keepdim=True).values        # (Bg, 1)
    span = span.masked_fill(constant.unsqueeze(-1), 0.0)   # every V equals R: exactly 0, not rounding noise
    nonempty = l_g > 0
    span_exists = torch.cat([in_node & nonempty.unsqueeze(-1), (last < l_g).unsqueeze(-1)], -1)

    # token -> span slot: the first boundary on the path after the token, else the tail
    in_node_n, forks_n = in_node.reshape(n, B), forks.repeat_interleave(K, 0)
    token_span = torch.full((n, T), B, dtype=torch.long, device=dev)
    for b in reversed(range(B)):
        token_span.masked_fill_(in_node_n[:, b : b + 1] & (t_idx < forks_n[:, b : b + 1]), b)
    token_span.masked_fill_(~mask.bool(), -1)
    return LeafTree(forks=forks, delta=delta, in_node=in_node_n, node_value=value.reshape(n, B),
                    node_size=size.reshape(n, B), root=root.reshape(n), span_adv=span.reshape(n, B + 1),
                    span_exists=span_exists.reshape(n, B + 1), token_span=token_span)


def _zscore(x: torch.Tensor, keep: torch.Tensor, eps: float) -> torch.Tensor:
    """z-score over the entries of ``x`` where ``keep``, along the last dim (each row separately), in float64.
    A row whose kept entries are all equal gets exactly 0 (not its rounding noise divided by ``eps``)."""
    x = x.double()
    if x.shape[-1] == 0:
        return x
    k = keep.to(x.dtype)
    cnt = k.sum(-1, keepdim=True)
    mean = (x * k).sum(-1, keepdim=True) / cnt.clamp(min=1.0)
    var = ((x - mean).pow(2) * k).sum(-1, keepdim=True) / (cnt - 1.0).clamp(min=1.0)
    z = (x - mean) / var.sqrt().clamp(min=eps)
    hi = x.masked_fill(~keep, float("-inf")).amax(-1, keepdim=True)
    lo = x.masked_fill(~keep, float("inf")).amin(-1, keepdim=True)
    return torch.where(hi <= lo, torch.zeros_like(z), z)     # hi <= lo: constant (or empty) row


@ADVANTAGES.register("leaf")
def leaf(rewards: torch.Tensor, group_size: int, *, mask: torch.Tensor | None = None, ids: torch.Tensor | None = None,
         surprisal: torch.Tensor | None = None, B: int = 2, min_prefix: int = 1, terms: str = "both",
         zscore: str = "batch", eps: float = 1e-6, **_: object) -> tuple[torch.Tensor, dict[str, float]]:
    """LEAF span advantages, per token (N, T). Group size = the reference's rollout budget K (8);
    ``B`` = fork budget (2). See the module docstring for every choice."""
    tree = leaf_tree(rewards, group_size, ids, mask, surprisal, B=B, min_prefix=min_prefix, terms=terms)
    n, S = tree.span_adv.shape
    if zscore == "batch":
        span = _zscore(tree.span_adv.reshape(1, -1), tree.span_exists.reshape(1, -1), eps).view(n, S)
    elif zscore == "group":
        Bg = n // group_size
        span = _zscore(tree.span_adv.reshape(Bg, -1), tree.span_exists.reshape(Bg, -1), eps).view(n, S)
    elif zscore == "none":
        span = tree.span_adv
    else:
        raise ValueError(f"unknown LEAF zscore '{zscore}'; valid: batch, group, none")
    out_dtype = rewards.dtype if rewards.is_floating_point() else torch.float32
    adv = span.gather(1, tree.token_span.clamp(min=0)).masked_fill_(tree.token_span < 0, 0.0).to(out_dtype)
    Bg = n // group_size
    metrics = {"adv/abs_mean": float(adv.abs().sum() / mask.sum().clamp(min=1)),
               "leaf/forks_per_group": float((tree.forks >= 0).sum()) / max(Bg, 1),
               "leaf/node_rows": float(tree.in_node.float().mean()) if tree.in_node.numel() else 0.0,
               "leaf/spans_per_row": float(tree.span_exists.sum()) / max(n, 1)}
    return adv, metrics
