"""Policy losses, KL estimators and aggregation: hand-computed values, the policy-gradient identity at
ratio 1 for every ratio x loss combination, Dr.GRPO == GRPO without std + constant normalisation, errors."""

from __future__ import annotations

import math

import pytest
import torch

from speechrl.algos import ADVANTAGES, AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES, RATIOS

LN = math.log


def test_ppo_clip_hand_computed():
    lr = torch.log(torch.tensor([[1.5, 1.5, 0.5, 0.5]]))
    adv = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    loss, m = POLICY_LOSSES.get("ppo_clip")(lr, adv, torch.ones(1, 4), eps_low=0.2, eps_high=0.28)
    # r=1.5,A=1 -> -1.28 (clipped high); r=1.5,A=-1 -> 1.5; r=0.5,A=1 -> -0.5; r=0.5,A=-1 -> 0.8 (clipped low)
    assert torch.allclose(loss, torch.tensor([[-1.28, 1.5, -0.5, 0.8]]), atol=1e-6)
    assert m["actor/clipfrac"] == 0.5
    assert math.isclose(m["actor/ratio_max"], 1.5, rel_tol=1e-6) and math.isclose(m["actor/ratio_min"], 0.5, rel_tol=1e-6)
    assert math.isclose(m["actor/ratio_mean"], 1.0, rel_tol=1e-6)
    assert math.isclose(m["actor/ppo_kl"], -(2 * LN(1.5) + 2 * LN(0.5)) / 4, rel_tol=1e-6)


def test_ppo_clip_dual_clip_and_off_policy_rows():
    lr = torch.log(torch.tensor([[4.0, 0.5], [4.0, 0.5]]))
    adv = torch.tensor([-1.0, 1.0])
    mask = torch.ones(2, 2)
    dual, m = POLICY_LOSSES.get("ppo_clip")(lr, adv, mask, clip_ratio_c=3.0)
    # row 0 (A=-1): r=4 -> max(4, 1.2) = 4, dual clip min(4, 3) = 3; r=0.5 -> max(0.5, 0.8) = 0.8
    # row 1 (A=+1): r=4 -> max(-4, -1.2) = -1.2; r=0.5 -> max(-0.5, -0.8) = -0.5
    assert torch.allclose(dual, torch.tensor([[3.0, 0.8], [-1.2, -0.5]]), atol=1e-6)
    assert m["actor/clipfrac_lower"] == 0.25
    # MP-GRPO: row 1 is the ground truth (old_logp = 0): no clipping, L = -r A
    off, m = POLICY_LOSSES.get("ppo_clip")(lr, adv, mask, off_policy=torch.tensor([False, True]))
    assert torch.allclose(off, torch.tensor([[4.0, 0.8], [-4.0, -0.5]]), atol=1e-6)
    assert m["actor/clipfrac"] == 0.5  # clip fraction over the on-policy row only


def test_gmpo_hand_computed():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0]])
    lr = torch.tensor([[0.5, -0.1, 0.2, 7.0], [-0.5, 0.1, 0.2, 7.0]])
    adv = torch.tensor([1.0, -1.0])
    loss, m = POLICY_LOSSES.get("gmpo")(lr, adv, mask)
    # A=+1: only the upper bound binds: [0.4, -0.1, 0.2] -> s = exp(0.5/3) = 1.181360, L = -1.181360
    # A=-1: only the lower bound binds: [-0.4, 0.1, 0.2] -> s = exp(-0.1/3) = 0.967216, L = +0.967216
    assert torch.allclose(loss, torch.tensor([[-1.181360] * 3 + [0.0], [0.967216] * 3 + [0.0]]), atol=1e-6)
    assert math.isclose(m["actor/clipfrac"], 1 / 6, rel_tol=1e-6) and math.isclose(m["actor/clipfrac_lower"], 1 / 6, rel_tol=1e-6)
    # one-sided: with A=+1 a very negative l is NOT clipped (pessimistic bound, verl/GMPO code) ...
    low = torch.tensor([[-1.0, 0.0, 0.0]])
    one, _ = POLICY_LOSSES.get("gmpo")(low, torch.tensor([1.0]), torch.ones(1, 3))
    two, _ = POLICY_LOSSES.get("gmpo")(low, torch.tensor([1.0]), torch.ones(1, 3), one_sided=False)
    assert math.isclose(one[0, 0].item(), -math.exp(-1 / 3), rel_tol=1e-6)   # -0.716531
    assert math.isclose(two[0, 0].item(), -math.exp(-0.4 / 3), rel_tol=1e-6)  # ... the two-sided form clips it
    off, _ = POLICY_LOSSES.get("gmpo")(lr, adv, mask, off_policy=torch.tensor([True, False]))
    assert math.isclose(off[0, 0].item(), -math.exp(0.6 / 3), rel_tol=1e-6)  # off-policy row: no clip


def test_sapo_hand_computed():
    lr = torch.tensor([[0.0, 0.5, 0.0]])
    adv = torch.tensor([[1.0, -1.0, 0.0]])
    loss, m = POLICY_LOSSES.get("sapo")(lr, adv, torch.ones(1, 3))
    # r=1, A=1, tau=1: f = sigmoid(0) * 4 = 2 -> L = -2
    # r=e^0.5=1.648721, A=-1, tau=1.05: f = sigmoid(1.05 * 0.648721) * 4/1.05 = 2.529512 -> L = +2.529512
    assert torch.allclose(loss, torch.tensor([[-2.0, 2.529512, 0.0]]), atol=1e-6)
    off, _ = POLICY_LOSSES.get("sapo")(lr, adv, torch.ones(1, 3), off_policy=torch.tensor([True]))
    assert torch.allclose(off, torch.tensor([[-1.0, math.exp(0.5), 0.0]]), atol=1e-6)


RATIO_LOSS = [("token", "ppo_clip"), ("sequence", "ppo_clip"), ("gspo_token", "ppo_clip"), ("segment", "ppo_clip"),
              ("segment_token", "ppo_clip"), ("p_gspo", "ppo_clip"), ("token", "gmpo"), ("token", "sapo"),
              ("sequence", "sapo")]
AGGS = ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm", "seq-mean-segment-mean"]


ROW_LEVEL = {"sequence", "p_gspo", "gmpo"}
PG_CASES = [(r, lo, a) for r, lo in RATIO_LOSS for a in AGGS
            if not (a == "seq-mean-segment-mean" and ROW_LEVEL & {r, lo})]


@pytest.mark.parametrize(("ratio", "loss_name", "agg"), PG_CASES)
def test_gradient_at_ratio_one_is_the_policy_gradient(ratio, loss_name, agg):
    """At pi = pi_old every clipped / gated loss has the plain policy gradient -A grad log pi, weighted by the
    aggregation (token-mean: 1/sum|y|; seq-mean-token-mean: 1/(B |y_i|), the per-sequence 1/|y| of GRPO/GSPO/
    GMPO/SAPO; ...). For sequence/segment ratios each token's loss depends on all tokens with weight 1/|y|
    (1/|S_k|), and the |y| copies of the row's loss add up to exactly -A per token. P-GSPO with p = 1 here.
    This needs the aggregation to weigh the tokens a row-level ratio spreads over equally: a row-level ratio
    (sequence, p_gspo, gmpo) under seq-mean-segment-mean gives each token the row's AVERAGE weight instead."""
    torch.manual_seed(0)
    logits = torch.randn(4, 6, 5, requires_grad=True)
    logp = torch.log_softmax(logits, -1)[..., 0]
    mask = (torch.arange(6) < torch.tensor([[6], [4], [1], [5]])).long()
    segments = torch.where(mask.bool(), torch.div(torch.arange(6), 2, rounding_mode="floor").expand(4, 6), torch.tensor(-1))
    adv = torch.tensor([0.5, -1.0, 2.0, -0.3])
    lr, _ = RATIOS.get(ratio)(logp, logp.detach(), mask, segments=segments, p=1.0)
    pg, _ = POLICY_LOSSES.get(loss_name)(lr, adv, mask)
    loss, _ = AGGREGATIONS.get(agg)(pg, mask, segments=segments, norm_constant=6)
    ref, _ = AGGREGATIONS.get(agg)(-adv[:, None] * logp, mask, segments=segments, norm_constant=6)
    (g,) = torch.autograd.grad(loss, logits, retain_graph=True)
    (g_ref,) = torch.autograd.grad(ref, logits)
    assert torch.allclose(g, g_ref, atol=1e-6)


def test_seq_mean_token_mean_gives_the_per_sequence_weight():
    """The explicit form: seq-mean-token-mean of GSPO at ratio 1 -> d loss / d logp_{i,t} = -A_i / (B |y_i|)."""
    logp = torch.zeros(2, 4, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    lr, _ = RATIOS.get("sequence")(logp, logp.detach(), mask)
    loss, _ = AGGREGATIONS.get("seq-mean-token-mean")(POLICY_LOSSES.get("ppo_clip")(lr, torch.tensor([1.0, 2.0]), mask)[0], mask)
    (g,) = torch.autograd.grad(loss, logp)
    assert torch.allclose(g, torch.tensor([[-1 / 8] * 4, [-2 / 4, -2 / 4, 0, 0]]), atol=1e-7)


def test_dr_grpo_is_grpo_without_std_and_constant_normalisation():
    torch.manual_seed(3)
    rewards = torch.rand(8)
    logp = torch.randn(8, 5, requires_grad=True)
    old = logp.detach() + 0.05 * torch.randn(8, 5)
    mask = (torch.arange(5) < torch.randint(1, 6, (8, 1))).long()
    adv_dr, _ = ADVANTAGES.get("dr_grpo")(rewards, 4)
    adv_g, _ = ADVANTAGES.get("grpo")(rewards, 4, scale="none")
    assert torch.equal(adv_dr, adv_g)
    lr, _ = RATIOS.get("token")(logp, old, mask)
    pg, _ = POLICY_LOSSES.get("ppo_clip")(lr, adv_dr, mask)
    loss, _ = AGGREGATIONS.get("seq-mean-token-sum-norm")(pg, mask, norm_constant=40)
    assert torch.allclose(loss, (pg * mask).sum() / (8 * 40), atol=1e-7)  # sum / (G * B * MAX_TOKENS)


def test_kl_estimators_hand_computed():
    logp, ref = torch.log(torch.tensor([[0.5]])), torch.log(torch.tensor([[0.25]]))
    assert math.isclose(KL_ESTIMATORS.get("k1")(logp, ref)[0].item(), math.log(2), rel_tol=1e-6)
    assert math.isclose(KL_ESTIMATORS.get("k2")(logp, ref)[0].item(), 0.5 * math.log(2) ** 2, rel_tol=1e-6)
    assert math.isclose(KL_ESTIMATORS.get("k3")(logp, ref)[0].item(), 0.5 + math.log(2) - 1, rel_tol=1e-5)
    assert KL_ESTIMATORS.get("k3")(logp, logp)[0].item() == 0.0
    # verl low_var_kl: exp(5) - 5 - 1 = 136.41 is clamped to 10 (and gets no gradient); d < -20 clamps first
    big = torch.tensor([[0.0, 0.0]], requires_grad=True)
    k, _ = KL_ESTIMATORS.get("k3")(big, torch.tensor([[5.0, -50.0]]))
    assert torch.allclose(k, torch.tensor([[10.0, 10.0]]))
    k.sum().backward()
    assert torch.equal(big.grad, torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"shape mismatch: logp \(1, 1\), ref_logp \(1, 2\)"):
        KL_ESTIMATORS.get("k3")(logp, torch.zeros(1, 2))


@pytest.mark.parametrize(
    ("name", "expected"),
    [("token-mean", 10 / 4), ("seq-mean-token-mean", (2 + 4) / 2), ("seq-mean-token-sum", (6 + 4) / 2),
     ("seq-mean-token-sum-norm", (6 + 4) / 2 / 3), ("seq-mean-segment-mean", ((1.5 + 3) / 2 + 4) / 2)],
)
def test_aggregations_hand_computed(name, expected):
    loss = torch.tensor([[1.0, 2, 3], [4, 99, 99], [7, 7, 7]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0]])   # the empty third row counts nowhere
    segments = torch.tensor([[0, 0, 1], [0, -1, -1], [-1, -1, -1]])
    value, _ = AGGREGATIONS.get(name)(loss, mask, norm_constant=3, segments=segments)
    assert math.isclose(value.item(), expected, rel_tol=1e-6)
    assert AGGREGATIONS.get(name)(loss, torch.zeros_like(mask), norm_constant=3, segments=-torch.ones_like(segments))[0].item() == 0.0


def test_segment_mean_aggregation_identities():
    torch.manual_seed(0)
    loss = torch.randn(5, 7)
    mask = (torch.arange(7) < torch.tensor([[7], [2], [0], [5], [1]])).long()
    one = torch.where(mask.bool(), torch.zeros(5, 7, dtype=torch.long), torch.tensor(-1))
    each = torch.where(mask.bool(), torch.arange(7).expand(5, 7), torch.tensor(-1))
    ref, _ = AGGREGATIONS.get("seq-mean-token-mean")(loss, mask)
    assert torch.allclose(AGGREGATIONS.get("seq-mean-segment-mean")(loss, mask, segments=one)[0], ref, atol=1e-6)
    assert torch.allclose(AGGREGATIONS.get("seq-mean-segment-mean")(loss, mask, segments=each)[0], ref, atol=1e-6)


def test_loss_and_aggregation_errors():
    with pytest.raises(ValueError, match=r"shape mismatch: advantages \(3,\) vs log_ratio \(2, 4\)"):
        POLICY_LOSSES.get("ppo_clip")(torch.zeros(2, 4), torch.zeros(3), torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"shape mismatch: advantages \(2, 3\) vs log_ratio \(2, 4\)"):
        POLICY_LOSSES.get("gmpo")(torch.zeros(2, 4), torch.zeros(2, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"shape mismatch: log_ratio \(2, 4\), mask \(2, 5\)"):
        POLICY_LOSSES.get("sapo")(torch.zeros(2, 4), torch.zeros(2), torch.ones(2, 5))
    with pytest.raises(ValueError, match=r"shape mismatch: off_policy \(3,\) must be \(2,\)"):
        POLICY_LOSSES.get("ppo_clip")(torch.zeros(2, 4), torch.zeros(2), torch.ones(2, 4), off_policy=torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="clip_ratio_c must be > 1"):
        POLICY_LOSSES.get("ppo_clip")(torch.zeros(1, 1), torch.zeros(1), torch.ones(1, 1), clip_ratio_c=0.5)
    with pytest.raises(ValueError, match="temperatures must be > 0"):
        POLICY_LOSSES.get("sapo")(torch.zeros(1, 1), torch.zeros(1), torch.ones(1, 1), tau_neg=0.0)
    with pytest.raises(ValueError, match=r"shape mismatch: loss \(2, 3\), mask \(2, 4\)"):
        AGGREGATIONS.get("token-mean")(torch.zeros(2, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match="needs segments"):
        AGGREGATIONS.get("seq-mean-segment-mean")(torch.zeros(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="norm_constant must be > 0"):
        AGGREGATIONS.get("seq-mean-token-sum-norm")(torch.zeros(2, 3), torch.ones(2, 3), norm_constant=0)


def test_clip_bounds_are_built_in_the_ratio_dtype():
    """float64 ratios are compared with float64 bounds: 1 + 0.28 as float32 is 1.27999997, which clipped (zero
    gradient) a float64 ratio of 1.27999999; the GMPO log-space bound 0.4 as float32 is 0.40000001, which let
    a log-ratio of 0.400000003 through; SAPO's tau_neg 1.05 as float32 is 1.04999995."""
    f64, mask = torch.float64, torch.ones(1, 1)
    lr = torch.tensor([[math.log(1.27999999)]], dtype=f64, requires_grad=True)
    loss, m = POLICY_LOSSES.get("ppo_clip")(lr, torch.tensor([1.0], dtype=f64), mask, eps_high=0.28)
    loss.sum().backward()
    assert m["actor/clipfrac"] == 0.0 and math.isclose(lr.grad.item(), -1.27999999, rel_tol=1e-12)   # dL/dl = -A r
    lr = torch.tensor([[math.log(0.80000001)]], dtype=f64, requires_grad=True)   # 1 - 0.2 as float32 is 0.80000001
    loss, m = POLICY_LOSSES.get("ppo_clip")(lr, torch.tensor([-1.0], dtype=f64), mask)
    loss.sum().backward()
    assert m["actor/clipfrac"] == 0.0 and math.isclose(lr.grad.item(), 0.80000001, rel_tol=1e-12)
    lr = torch.tensor([[0.400000003, 0.0]], dtype=f64, requires_grad=True)
    loss, _ = POLICY_LOSSES.get("gmpo")(lr, torch.tensor([1.0], dtype=f64), torch.ones(1, 2))
    loss.sum().backward()
    assert lr.grad[0, 0].item() == 0.0                                 # clipped at 0.4: no gradient
    assert math.isclose(loss[0, 0].item(), -math.exp(0.2), rel_tol=1e-14)   # s = exp((0.4 + 0) / 2)
    loss, _ = POLICY_LOSSES.get("sapo")(torch.zeros(1, 1, dtype=f64), torch.tensor([-1.0], dtype=f64), mask)
    assert math.isclose(loss.item(), 2 / 1.05, rel_tol=1e-14)          # r = 1: -A * sigmoid(0) * 4 / tau
    assert loss.dtype == f64


def test_gmpo_rejects_token_level_advantages():
    """LEAF span advantages change sign inside a row (row 1: +0.354 on the shared prefix, -0.75 on its tail). GMPO
    clipped every token by the sign of the row's MEAN advantage; now the combination is refused with a pointer to
    ppo_clip, which clips each token by its own advantage's sign."""
    ids = torch.tensor([[5, 6, 7, 8], [5, 6, 9, 9], [5, 2, 3, 4], [5, 2, 3, 1]])
    mask = torch.ones(4, 4, dtype=torch.long)
    surprisal = torch.zeros(4, 4)
    surprisal[1, 2] = 3.0
    adv, _ = ADVANTAGES.get("leaf")(torch.tensor([1.0, 0.0, 0.0, 0.0]), 4, ids=ids, mask=mask, surprisal=surprisal,
                                    B=1, zscore="none")
    a = 0.5 / math.sqrt(2)
    assert torch.allclose(adv[1], torch.tensor([a, a, -0.75, -0.75]))
    lr = torch.full((4, 4), math.log(0.5))
    with pytest.raises(ValueError, match=r"'gmpo' needs sequence-level advantages \(N,\), got shape \(4, 4\).*'leaf'.*'ppo_clip'"):
        POLICY_LOSSES.get("gmpo")(lr, adv, mask)
    loss, _ = POLICY_LOSSES.get("ppo_clip")(lr, adv, mask)
    # r = 0.5: A > 0 tokens are not clipped (-A r); A < 0 tokens are clipped at 1 - 0.2 (-A 0.8)
    assert torch.allclose(loss[1], torch.tensor([-0.5 * a, -0.5 * a, 0.6, 0.6]), atol=1e-6)
