"""Ratio levels and segmenters: hand-computed values, the identities between levels, gradient paths, errors."""

from __future__ import annotations

import math

import pytest
import torch

from speechrl.algos import AGGREGATIONS, POLICY_LOSSES, RATIOS, SEGMENTERS

# one row: l = logp - old_logp = [0.1, 0.3, 0.5] on 3 completion tokens, 1 padding position (NaN there)
OLD = torch.tensor([[-1.0, -2.0, -0.5, 0.0]])
L = torch.tensor([[0.1, 0.3, 0.5, float("nan")]])
MASK = torch.tensor([[1, 1, 1, 0]])
SEGS = torch.tensor([[0, 0, 1, -1]])


def leaf_logp(l: torch.Tensor = L, old: torch.Tensor = OLD) -> torch.Tensor:
    return (old + l).clone().requires_grad_(True)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("token", [0.1, 0.3, 0.5, 0.0]),
        ("sequence", [0.3, 0.3, 0.3, 0.0]),                   # (0.1 + 0.3 + 0.5) / 3
        ("gspo_token", [0.3, 0.3, 0.3, 0.0]),                 # same value as sequence
        ("segment", [0.2, 0.2, 0.5, 0.0]),                    # segment 0: (0.1 + 0.3) / 2; segment 1: 0.5
        ("segment_token", [0.2, 0.2, 0.5, 0.0]),
        ("p_gspo", [0.9 / 3**0.5] * 3 + [0.0]),               # 0.9 / sqrt(3) = 0.519615 (p = 0.5)
    ],
)
def test_ratio_values_hand_computed(name, expected):
    logp = leaf_logp()
    out, _ = RATIOS.get(name)(logp, OLD, MASK, segments=SEGS, p=0.5)
    assert torch.allclose(out, torch.tensor([expected]), atol=1e-6)
    out.sum().backward()
    assert logp.grad[0, 3] == 0.0  # the NaN padding gets exactly zero gradient


@pytest.mark.parametrize(
    ("name", "jacobian"),
    [
        ("token", [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
        ("sequence", [[1 / 3] * 3] * 3),                      # every token moves every token's ratio, 1/|y|
        ("gspo_token", [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),   # token t's gradient flows to token t only
        ("segment", [[0.5, 0.5, 0], [0.5, 0.5, 0], [0, 0, 1]]),
        ("segment_token", [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
        ("p_gspo", [[3**-0.5] * 3] * 3),                     # 1/|y|^p
    ],
)
def test_ratio_gradient_paths(name, jacobian):
    logp = leaf_logp()
    f = lambda x: RATIOS.get(name)(torch.cat([x, torch.zeros(1, 1)], 1), OLD, MASK, segments=SEGS, p=0.5)[0][:, :3]
    jac = torch.autograd.functional.jacobian(f, logp[:, :3].detach()).squeeze(0).squeeze(1)
    assert torch.allclose(jac, torch.tensor(jacobian, dtype=torch.float32), atol=1e-6)


def test_identities_between_levels():
    torch.manual_seed(0)
    logp, old = torch.randn(6, 9), torch.randn(6, 9)
    mask = (torch.arange(9) < torch.tensor([[9], [5], [1], [0], [7], [3]])).long()
    tok, _ = RATIOS.get("token")(logp, old, mask)
    seq, _ = RATIOS.get("sequence")(logp, old, mask)
    length1 = torch.where(mask.bool(), torch.arange(9).expand(6, 9), torch.tensor(-1))
    one_seg = torch.where(mask.bool(), torch.zeros(6, 9, dtype=torch.long), torch.tensor(-1))
    for seg_name in ("segment", "segment_token"):
        assert torch.allclose(RATIOS.get(seg_name)(logp, old, mask, segments=length1)[0], tok, atol=1e-6)
        assert torch.allclose(RATIOS.get(seg_name)(logp, old, mask, segments=one_seg)[0], seq, atol=1e-6)
    assert torch.equal(RATIOS.get("p_gspo")(logp, old, mask, p=1.0)[0], seq)
    assert torch.allclose(RATIOS.get("gspo_token")(logp, old, mask)[0], seq, atol=1e-7)
    n = mask.sum(-1, keepdim=True).clamp(min=1)
    p0 = RATIOS.get("p_gspo")(logp, old, mask, p=0.0)[0]
    assert torch.allclose(p0, seq * n * mask, atol=1e-5)  # p = 0: unnormalised sum
    assert (seq[3] == 0).all() and (tok[3] == 0).all()   # all-masked row -> 0, not NaN


def test_gspo_token_gradient_differs_from_gspo_only_with_token_advantages():
    """Same value; with a sequence-constant advantage the gradients agree, with token advantages they differ:
    GSPO gives every token -s * mean(A) / |y| ... (dense), GSPO-token gives token t -s * A_t / |y|."""
    torch.manual_seed(1)
    old = torch.randn(2, 4)
    logp0 = old + 0.01 * torch.randn(2, 4)
    mask = torch.ones(2, 4)
    grads = {}
    for adv_name, adv in (("seq", torch.tensor([1.0, -2.0])), ("tok", torch.tensor([[1.0, 0.0, 3.0, -1.0], [0.5, 0.5, -2.0, 1.0]]))):
        for name in ("sequence", "gspo_token"):
            logp = logp0.clone().requires_grad_(True)
            lr, _ = RATIOS.get(name)(logp, old, mask)
            loss, _ = AGGREGATIONS.get("seq-mean-token-mean")(POLICY_LOSSES.get("ppo_clip")(lr, adv, mask, eps_low=1.0, eps_high=1.0)[0], mask)
            grads[adv_name, name] = torch.autograd.grad(loss, logp)[0]
    assert torch.allclose(grads["seq", "sequence"], grads["seq", "gspo_token"], atol=1e-6)
    assert not torch.allclose(grads["tok", "sequence"], grads["tok", "gspo_token"], atol=1e-3)
    s = torch.exp((logp0 - old).mean(-1, keepdim=True))
    adv = torch.tensor([[1.0, 0.0, 3.0, -1.0], [0.5, 0.5, -2.0, 1.0]])
    assert torch.allclose(grads["tok", "gspo_token"], -s * adv / 4 / 2, atol=1e-6)
    assert torch.allclose(grads["tok", "sequence"], (-s * adv.mean(-1, keepdim=True) / 4 / 2).expand(2, 4), atol=1e-6)


# ---------------------------------------------------------------- segmenters

def test_fixed_window_hand_computed():
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0]])
    seg, m = SEGMENTERS.get("fixed")(torch.zeros(3, 6), torch.zeros(3, 6, dtype=torch.long), mask, window=2)
    assert seg.tolist() == [[0, 0, 1, 1, 2, -1], [0, 0, 1, 1, -1, -1], [-1] * 6]  # ceil(5/2) = 3, ceil(4/2) = 2
    assert m["seg/per_row"] == 2.5 and m["seg/mean_len"] == 9 / 5
    left_padded = torch.tensor([[0, 1, 1, 1]])  # windows count completion tokens, not positions
    assert SEGMENTERS.get("fixed")(torch.zeros(1, 4), torch.zeros(1, 4), left_padded, window=2)[0].tolist() == [[-1, 0, 0, 1]]


def test_logprob_jump_hand_computed():
    logp = torch.tensor([[-0.1, -0.2, -2.5, -2.4, -0.3, -9.0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]])
    seg, _ = SEGMENTERS.get("logprob_jump")(logp, torch.zeros(1, 6, dtype=torch.long), mask, tau=1.0)
    # jumps |d| = 0.1, 2.3 (>1 new), 0.1, 2.1 (>1 new); the masked -9.0 is ignored
    assert seg.tolist() == [[0, 0, 1, 1, 2, -1]]


def test_tokenid_jump_hand_computed():
    ids = torch.tensor([[10, 12, 500, 505, 20, 21], [7, 7, 7, 7, 7, 7]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 0, 1, 1, 0]])
    seg, m = SEGMENTERS.get("tokenid_jump")(torch.zeros(2, 6), ids, mask, delta=100)
    # row 0: jumps 2, 488 (new), 5, 485 (new), 1; row 1: a masked gap starts a new segment
    assert seg.tolist() == [[0, 0, 1, 1, 2, 2], [0, 0, -1, 1, 1, -1]]
    assert m["seg/per_row"] == 2.5


def test_segmenters_feed_segment_ratio():
    torch.manual_seed(0)
    logp, old = torch.randn(4, 7), torch.randn(4, 7)
    mask = (torch.arange(7) < torch.tensor([[7], [3], [0], [5]])).long()
    ids = torch.randint(0, 3000, (4, 7))
    for name, opts in (("fixed", {"window": 3}), ("logprob_jump", {"tau": 0.5}), ("tokenid_jump", {"delta": 1000})):
        seg, _ = SEGMENTERS.get(name)(old, ids, mask, **opts)
        assert ((seg >= 0) == mask.bool()).all()
        out, _ = RATIOS.get("segment")(logp, old, mask, segments=seg)
        assert torch.isfinite(out).all()


# ---------------------------------------------------------------- errors

def test_ratio_errors_name_tensors_and_shapes():
    with pytest.raises(ValueError, match=r"shape mismatch: logp \(2, 3\), old_logp \(2, 3\), mask \(2, 4\)"):
        RATIOS.get("token")(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"logp must be 2-D \(N, T\), got shape \(3,\)"):
        RATIOS.get("sequence")(torch.zeros(3), torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="needs segments"):
        RATIOS.get("segment")(torch.zeros(1, 3), torch.zeros(1, 3), torch.ones(1, 3))
    with pytest.raises(ValueError, match=r"shape mismatch: segments \(1, 2\) vs mask \(1, 3\)"):
        RATIOS.get("segment")(torch.zeros(1, 3), torch.zeros(1, 3), torch.ones(1, 3), segments=torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"negative id at completion tokens \(mask 1\), first at \[0, 1\]"):
        RATIOS.get("segment")(torch.zeros(1, 3), torch.zeros(1, 3), torch.ones(1, 3), segments=torch.tensor([[0, -1, 1]]))
    with pytest.raises(ValueError, match="must lie in"):
        RATIOS.get("segment_token")(torch.zeros(1, 3), torch.zeros(1, 3), torch.ones(1, 3), segments=torch.tensor([[0, 1, 3]]))
    with pytest.raises(ValueError, match="integer tensor"):
        RATIOS.get("segment")(torch.zeros(1, 3), torch.zeros(1, 3), torch.ones(1, 3), segments=torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"exponent p must lie in \[0, 1\], got 1.5"):
        RATIOS.get("p_gspo")(torch.zeros(1, 3), torch.zeros(1, 3), torch.ones(1, 3), p=1.5)
    with pytest.raises(ValueError, match=r"shape mismatch: logp \(1, 3\), ids \(1, 2\), mask \(1, 3\)"):
        SEGMENTERS.get("fixed")(torch.zeros(1, 3), torch.zeros(1, 2), torch.ones(1, 3))
    with pytest.raises(ValueError, match="window must be >= 1"):
        SEGMENTERS.get("fixed")(torch.zeros(1, 3), torch.zeros(1, 3), torch.ones(1, 3), window=0)
    with pytest.raises(KeyError, match="unknown ratio level 'tokn'.*did you mean 'token'"):
        RATIOS.get("tokn")
    assert math.isfinite(float(RATIOS.get("sequence")(torch.zeros(0, 3), torch.zeros(0, 3), torch.ones(0, 3))[0].sum()))


def test_memoised_tables_follow_in_place_changes_and_inference_tensors():
    logp, old = torch.zeros(1, 4), torch.tensor([[-1.0, -2.0, -3.0, -4.0]])
    mask, seg = torch.ones(1, 4, dtype=torch.long), torch.tensor([[0, 0, 1, 1]])
    assert RATIOS.get("segment")(logp, old, mask, segments=seg)[0].tolist() == [[1.5, 1.5, 3.5, 3.5]]
    seg[0, 1] = 1  # in place: the memoised segment table must not be reused
    assert RATIOS.get("segment")(logp, old, mask, segments=seg)[0].tolist() == [[1.0, 3.0, 3.0, 3.0]]
    mask[0, 3] = 0  # in place: the memoised bool mask must not be reused
    seg[0, 3] = -1
    assert RATIOS.get("segment")(logp, old, mask, segments=seg)[0].tolist() == [[1.0, 2.5, 2.5, 0.0]]
    with torch.inference_mode():
        m2, s2 = torch.ones(1, 4, dtype=torch.long), torch.tensor([[0, 1, 1, 1]])
        assert RATIOS.get("segment")(logp, old, m2, segments=s2)[0].tolist() == [[1.0, 3.0, 3.0, 3.0]]


def test_segmenter_options_come_from_their_signatures_and_are_checked():
    from speechrl.algos.segmenters import all_options, check_option, segmenter_options

    assert segmenter_options("fixed") == {"window": int} and segmenter_options("logprob_jump") == {"tau": float}
    assert all_options() == {"window": int, "tau": float, "delta": int}
    check_option("window", 16.0, "x")  # an integral float is an integer
    for key, value, match in (("window", 2.5, "window=2.5 must be an integer >= 1"), ("window", 0, "must be an integer >= 1"),
                              ("tau", -0.1, "must be a number >= 0"), ("widow", 3, "unknown segmenter option 'widow'; "
                                                                                        "the segmenters take fixed: window")):
        with pytest.raises(ValueError, match=match):
            check_option(key, value, "rl.segmenter_opts")


def test_a_wider_window_gives_fewer_longer_segments():
    mask = torch.ones(2, 32)
    _, m4 = SEGMENTERS.get("fixed")(torch.zeros(2, 32), torch.zeros(2, 32, dtype=torch.long), mask, window=4)
    _, m16 = SEGMENTERS.get("fixed")(torch.zeros(2, 32), torch.zeros(2, 32, dtype=torch.long), mask, window=16)
    assert (m4["seg/per_row"], m16["seg/per_row"], m16["seg/mean_len"]) == (8.0, 2.0, 16.0)
