"""LEAF span advantages: hand-computed trees, agreement with a straightforward loop-based re-implementation of
the reference sampler's algorithm (Grimoid/LEAF openrlhf/speech_leaf/sampler.py), tie-breaking, fallbacks, errors."""

from __future__ import annotations

import math

import pytest
import torch

from speechrl.algos import ADVANTAGES, leaf_tree


# ------------------------------------------------------------------ loop reference (lists, dicts, tuples)

def ref_group(seqs, surps, rewards, B, min_prefix=1, terms="both"):
    """One prompt's K completions -> list (per completion) of [(start, end, advantage)] (empty list if |y| = 0)."""
    cands = [(surps[i][pos], i, pos) for i, s in enumerate(seqs) for pos in range(max(min_prefix, 1), len(s))]
    root = sum(rewards) / len(rewards)
    if not cands:
        return [[(0, len(s), rewards[i] - root)] if s else [] for i, s in enumerate(seqs)]
    cands.sort(key=lambda c: c[0], reverse=True)  # stable: ties keep (completion, position) order
    lens = [len(s) for s in seqs if s]
    delta = max(2, (min(lens) if lens else 1) // (max(B, 1) + 1))
    picked = []
    for _, _, pos in cands:
        if len(picked) >= B:
            break
        if all(abs(pos - q) >= delta for q in picked):
            picked.append(pos)
    nodes, path = [], [[] for _ in seqs]
    for p in sorted(picked):
        groups = {}
        for i, s in enumerate(seqs):
            groups.setdefault(tuple(s[:p]), []).append(i)
        for members in groups.values():
            if len(members) > 1:
                nodes.append((p, sum(rewards[j] for j in members) / len(members), len(members)))
                for j in members:
                    path[j].append(len(nodes) - 1)
    combine = {"both": lambda ga, la: ga + la, "global": lambda ga, la: ga, "local": lambda ga, la: la}[terms]
    out = []
    for i, s in enumerate(seqs):
        if not s:
            out.append([])
            continue
        steps, prev_pos, prev_v = [], 0, root
        for k in sorted(path[i], key=lambda k: nodes[k][0]):
            p, v, n = nodes[k]
            if p > prev_pos:
                steps.append((prev_pos, p, combine(v - root, v - prev_v) / math.sqrt(n)))
            prev_pos, prev_v = p, v
        if prev_pos < len(s):
            steps.append((prev_pos, len(s), combine(rewards[i] - root, rewards[i] - prev_v)))
        out.append(steps)
    return out


def ref_zscore(all_steps, eps=1e-6):
    advs = [a for steps in all_steps for (_, _, a) in steps]
    if not advs:
        return all_steps
    mean = sum(advs) / len(advs)
    std = max((sum((a - mean) ** 2 for a in advs) / max(len(advs) - 1, 1)) ** 0.5, eps)
    return [[(s, e, (a - mean) / std) for (s, e, a) in steps] for steps in all_steps]


def ref_leaf(ids, mask, surprisal, rewards, K, B, min_prefix=1, zscore="batch", terms="both"):
    n, T = ids.shape
    lens = mask.sum(-1).tolist()
    seqs = [ids[i, : lens[i]].tolist() for i in range(n)]
    surps = [surprisal[i].tolist() for i in range(n)]
    steps = []
    for g in range(n // K):
        sl = slice(g * K, (g + 1) * K)
        group = ref_group(seqs[sl], surps[sl], rewards[sl].tolist(), B, min_prefix, terms)
        steps += ref_zscore(group) if zscore == "group" else group
    if zscore == "batch":
        steps = ref_zscore(steps)
    out = torch.zeros(n, T, dtype=torch.float64)
    for i, st in enumerate(steps):
        for s, e, a in st:
            out[i, s:e] = a
    return out * mask


# ------------------------------------------------------------------ hand-computed

def test_leaf_one_boundary_hand_computed():
    ids = torch.tensor([[5, 6, 7, 8], [5, 6, 9, 9], [5, 2, 3, 4], [5, 2, 3, 1]])
    mask = torch.ones(4, 4, dtype=torch.long)
    surprisal = torch.zeros(4, 4)
    surprisal[1, 2] = 3.0                     # the boundary: position 2
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0])
    adv, m = ADVANTAGES.get("leaf")(rewards, 4, ids=ids, mask=mask, surprisal=surprisal, B=1, zscore="none")
    # root 0.25; node {0,1} V=0.5, node {2,3} V=0; span [0,2): (GA + LA)/sqrt(2); tail [2,4): (R - root) + (R - V)
    a, b = 0.5 / math.sqrt(2), -0.5 / math.sqrt(2)   # 0.353553, -0.353553
    expected = torch.tensor([[a, a, 1.25, 1.25], [a, a, -0.75, -0.75], [b, b, -0.25, -0.25], [b, b, -0.25, -0.25]])
    assert torch.allclose(adv, expected, atol=1e-6)
    z, _ = ADVANTAGES.get("leaf")(rewards, 4, ids=ids, mask=mask, surprisal=surprisal, B=1)
    spans = torch.tensor([a, 1.25, a, -0.75, b, -0.25, b, -0.25])   # mean 0, unbiased std sqrt(2.75/7) = 0.626783
    assert torch.allclose(z[0], torch.tensor([a, a, 1.25, 1.25]) / spans.std(), atol=1e-6)
    assert m["leaf/forks_per_group"] == 1.0 and m["leaf/spans_per_row"] == 2.0


def test_leaf_nested_nodes_hand_computed():
    ids = torch.tensor([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 7, 7], [1, 2, 9, 9, 9, 9], [1, 8, 8, 8, 8, 8]])
    mask = torch.ones(4, 6, dtype=torch.long)
    surprisal = torch.full((4, 6), 0.1)
    surprisal[2, 2], surprisal[0, 4] = 5.0, 4.0  # Delta = max(2, 6 // 3) = 2: boundaries 2 and 4
    rewards = torch.tensor([1.0, 0.5, 0.0, 0.0])
    tree = leaf_tree(rewards, 4, ids, mask, surprisal, B=2)
    assert tree.forks.tolist() == [[2, 4]] and tree.delta.tolist() == [2]
    adv, _ = ADVANTAGES.get("leaf")(rewards, 4, ids=ids, mask=mask, surprisal=surprisal, B=2, zscore="none")
    # root 0.375; at 2: {0,1,2} V=0.5 n=3; at 4: {0,1} V=0.75 n=2
    s0 = 0.25 / math.sqrt(3)                  # (0.125 + 0.125) / sqrt 3 = 0.144338
    s1 = 0.625 / math.sqrt(2)                 # (0.375 + 0.25) / sqrt 2 = 0.441942
    expected = torch.tensor([
        [s0, s0, s1, s1, 0.875, 0.875],       # tail (1 - 0.375) + (1 - 0.75)
        [s0, s0, s1, s1, -0.125, -0.125],     # (0.5 - 0.375) + (0.5 - 0.75)
        [s0, s0, -0.875, -0.875, -0.875, -0.875],   # (0 - 0.375) + (0 - 0.5)
        [-0.75] * 6,                          # no node: 2 (0 - 0.375)
    ])
    assert torch.allclose(adv, expected, atol=1e-6)
    assert tree.in_node.tolist() == [[True, True], [True, True], [True, False], [False, False]]


def test_leaf_ties_follow_row_then_position_order():
    ids = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 2]])
    tree = leaf_tree(torch.tensor([1.0, 0.0]), 2, ids, torch.ones(2, 6), torch.ones(2, 6), B=2)
    assert tree.forks.tolist() == [[1, 3]]   # all tied: row 0 pos 1 first, then the first >= Delta = 2 away


def test_leaf_fallbacks():
    # no candidate (every completion has <= 1 token): one span, A = R - root (single term)
    adv, _ = ADVANTAGES.get("leaf")(torch.tensor([1.0, 0.0, 0.5]), 3, ids=torch.tensor([[4, 0], [4, 0], [0, 0]]),
                                    mask=torch.tensor([[1, 0], [1, 0], [0, 0]]), surprisal=torch.zeros(3, 2), zscore="none")
    assert torch.allclose(adv, torch.tensor([[0.5, 0.0], [-0.5, 0.0], [0.0, 0.0]]))
    # B = 0: no boundary, tail 2 (R - root) (the reference's loop would still fork once)
    ids = torch.tensor([[1, 2, 3], [1, 2, 4]])
    adv, _ = ADVANTAGES.get("leaf")(torch.tensor([1.0, 0.0]), 2, ids=ids, mask=torch.ones(2, 3), surprisal=torch.rand(2, 3), B=0, zscore="none")
    assert torch.allclose(adv, torch.tensor([[1.0] * 3, [-1.0] * 3]))
    # a boundary past a short row inside a node: that row gets the node span and no tail
    ids = torch.tensor([[7, 8, 0, 0, 0], [7, 8, 0, 0, 0], [7, 8, 9, 9, 9]])
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])
    surprisal = torch.zeros(3, 5)
    surprisal[2, 3] = 9.0
    r = torch.tensor([1.0, 0.0, 0.5])
    ours, _ = ADVANTAGES.get("leaf")(r, 3, ids=ids, mask=mask, surprisal=surprisal, B=1, zscore="none")
    assert torch.allclose(ours.double(), ref_leaf(ids, mask, surprisal, r, 3, 1, zscore="none"), atol=1e-6)
    assert ours[0, :2].tolist() == ours[1, :2].tolist()  # rows 0, 1 are a node at 3 with key (7, 8)
    # degenerate shapes: no rows, no tokens
    assert ADVANTAGES.get("leaf")(torch.zeros(0), 4, ids=torch.zeros(0, 5), mask=torch.zeros(0, 5), surprisal=torch.zeros(0, 5))[0].shape == (0, 5)
    assert ADVANTAGES.get("leaf")(r, 3, ids=torch.zeros(3, 0), mask=torch.zeros(3, 0), surprisal=torch.zeros(3, 0))[0].shape == (3, 0)


# ------------------------------------------------------------------ agreement with the loop reference

@pytest.mark.parametrize("seed", range(60))
def test_leaf_matches_loop_reference(seed):
    g = torch.Generator().manual_seed(seed)
    K = int(torch.randint(1, 9, (1,), generator=g))
    n_groups = int(torch.randint(1, 4, (1,), generator=g))
    T = int(torch.randint(1, 11, (1,), generator=g))
    B = int(torch.randint(1, 4, (1,), generator=g))
    n = K * n_groups
    vocab = int(torch.randint(1, 4, (1,), generator=g))               # tiny vocabularies: many shared prefixes
    ids = torch.randint(0, vocab, (n, T), generator=g)
    lengths = torch.randint(0, T + 1, (n, 1), generator=g)
    mask = (torch.arange(T) < lengths).long()
    surprisal = torch.randint(0, 4, (n, T), generator=g).float() / 2     # many ties
    rewards = torch.randint(0, 5, (n,), generator=g).float() / 4
    min_prefix = int(torch.randint(1, 3, (1,), generator=g))
    terms = ("both", "global", "local")[seed % 3]
    for zscore in ("none", "group", "batch"):
        ours, _ = ADVANTAGES.get("leaf")(rewards, K, ids=ids, mask=mask, surprisal=surprisal, B=B,
                                         min_prefix=min_prefix, zscore=zscore, terms=terms)
        ref = ref_leaf(ids, mask, surprisal, rewards, K, B, min_prefix, zscore, terms)
        assert torch.allclose(ours.double(), ref, atol=1e-5), (zscore, ours, ref)


def test_leaf_errors():
    ids, mask, s, r = torch.zeros(4, 3, dtype=torch.long), torch.ones(4, 3), torch.zeros(4, 3), torch.zeros(4)
    with pytest.raises(ValueError, match="LEAF needs surprisal"):
        ADVANTAGES.get("leaf")(r, 2, ids=ids, mask=mask)
    with pytest.raises(ValueError, match=r"shape mismatch: ids \(4, 3\), mask \(4, 3\), surprisal \(4, 2\)"):
        ADVANTAGES.get("leaf")(r, 2, ids=ids, mask=mask, surprisal=torch.zeros(4, 2))
    with pytest.raises(ValueError, match="group size 3 does not divide the batch: rewards has 4 entries"):
        ADVANTAGES.get("leaf")(r, 3, ids=ids, mask=mask, surprisal=s)
    with pytest.raises(ValueError, match=r"shape mismatch: rewards \(5,\) vs ids \(4, 3\)"):
        ADVANTAGES.get("leaf")(torch.zeros(5), 1, ids=ids, mask=mask, surprisal=s)
    with pytest.raises(ValueError, match=r"rewards has non-finite values at indices \[2\]"):
        ADVANTAGES.get("leaf")(torch.tensor([0.0, 1, float("inf"), 0]), 2, ids=ids, mask=mask, surprisal=s)
    with pytest.raises(ValueError, match="prefix mask"):
        ADVANTAGES.get("leaf")(r, 2, ids=ids, mask=torch.tensor([[1, 0, 1]] * 4), surprisal=s)
    with pytest.raises(ValueError, match="surprisal has NaN"):
        ADVANTAGES.get("leaf")(r, 2, ids=ids, mask=mask, surprisal=torch.full((4, 3), float("nan")))
    with pytest.raises(ValueError, match="unknown LEAF zscore"):
        ADVANTAGES.get("leaf")(r, 2, ids=ids, mask=mask, surprisal=s, zscore="prompt")
    with pytest.raises(ValueError, match="unknown LEAF advantage terms"):
        ADVANTAGES.get("leaf")(r, 2, ids=ids, mask=mask, surprisal=s, terms="all")


# ------------------------------------------------------------------ numerics

def test_leaf_constant_rewards_give_exactly_zero_not_float32_noise():
    """Eight completions of reward 0.3: every span advantage is 0 in exact arithmetic. The float32 version
    gave |A| ~ 0.02 (z-score of ~3e-8 noise with std floored at 1e-6); now exactly 0 under every z-score."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 3, (16, 6), generator=g)
    mask, surprisal = torch.ones(16, 6, dtype=torch.long), torch.rand(16, 6, generator=g)
    r = torch.full((16,), 0.3)
    naive = r[:8] - r[:8].mean()                # float32: the group mean is off by ~3e-8
    assert naive.abs().max() > 0                # the noise this guards against
    for zscore in ("group", "batch", "none"):
        adv, m = ADVANTAGES.get("leaf")(r, 8, ids=ids, mask=mask, surprisal=surprisal, zscore=zscore)
        assert torch.equal(adv, torch.zeros(16, 6)) and adv.dtype == torch.float32 and m["adv/abs_mean"] == 0.0, zscore
        adv64, _ = ADVANTAGES.get("leaf")(r.double(), 8, ids=ids, mask=mask, surprisal=surprisal, zscore=zscore)
        assert adv64.dtype == torch.float64 and torch.equal(adv64, torch.zeros(16, 6, dtype=torch.float64))
    # a constant group next to a varied one: per-group z-score keeps the constant group at exactly 0,
    # the other group matches the loop reference
    r2 = torch.cat([torch.full((8,), 0.3), torch.tensor([1.0, 0.0, 0.5, 0.25, 0.0, 1.0, 0.75, 0.5])])
    adv, _ = ADVANTAGES.get("leaf")(r2, 8, ids=ids, mask=mask, surprisal=surprisal, zscore="group")
    assert torch.equal(adv[:8], torch.zeros(8, 6))
    assert torch.allclose(adv.double(), ref_leaf(ids, mask, surprisal, r2, 8, 2, zscore="group"), atol=1e-6)
