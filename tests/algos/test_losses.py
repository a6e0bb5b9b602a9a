"""Policy loss, KL estimators and aggregation: hand-computed values and the policy-gradient identity."""

from __future__ import annotations

import math

import pytest
import torch

from speechrl.algos import AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES, PRESETS, resolve
from speechrl.config import parse_config


def test_ppo_clip_hand_computed():
    logp = torch.log(torch.tensor([[1.5, 1.5, 0.5, 0.5]]))
    old = torch.zeros(1, 4)
    adv = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    loss, m = POLICY_LOSSES.get("ppo_clip")(logp, old, adv, torch.ones(1, 4), eps_low=0.2, eps_high=0.28)
    # r=1.5,A=1 -> -1.28 (clipped high); r=1.5,A=-1 -> 1.5; r=0.5,A=1 -> -0.5; r=0.5,A=-1 -> 0.8 (clipped low)
    assert torch.allclose(loss, torch.tensor([[-1.28, 1.5, -0.5, 0.8]]), atol=1e-6)
    assert m["actor/clipfrac"] == 0.5


def test_gradient_at_ratio_one_is_the_policy_gradient():
    logits = torch.randn(3, 5, requires_grad=True)
    logp = torch.log_softmax(logits, -1)[:, :4]
    adv = torch.tensor([0.5, -1.0, 2.0])
    mask = torch.ones(3, 4)
    loss, _ = POLICY_LOSSES.get("ppo_clip")(logp, logp.detach(), adv, mask)
    (g,) = torch.autograd.grad(loss.sum(), logits, retain_graph=True)
    (g_ref,) = torch.autograd.grad((-adv[:, None] * logp).sum(), logits)
    assert torch.allclose(g, g_ref, atol=1e-6)


def test_kl_estimators_hand_computed():
    logp, ref = torch.log(torch.tensor([[0.5]])), torch.log(torch.tensor([[0.25]]))
    assert math.isclose(KL_ESTIMATORS.get("k1")(logp, ref)[0].item(), math.log(2), rel_tol=1e-6)
    assert math.isclose(KL_ESTIMATORS.get("k2")(logp, ref)[0].item(), 0.5 * math.log(2) ** 2, rel_tol=1e-6)
    assert math.isclose(KL_ESTIMATORS.get("k3")(logp, ref)[0].item(), 0.5 + math.log(2) - 1, rel_tol=1e-5)
    assert KL_ESTIMATORS.get("k3")(logp, logp)[0].item() == 0.0
    with pytest.raises(ValueError, match=r"shape mismatch: logp \(1, 1\), ref_logp \(1, 2\)"):
        KL_ESTIMATORS.get("k3")(logp, torch.zeros(1, 2))


@pytest.mark.parametrize(
    ("name", "expected"),
    [("token-mean", 10 / 4), ("seq-mean-token-mean", (2 + 4) / 2), ("seq-mean-token-sum", (6 + 4) / 2),
     ("seq-mean-token-sum-norm", 10 / (2 * 3))],
)
def test_aggregations_hand_computed(name, expected):
    loss = torch.tensor([[1.0, 2, 3], [4, 99, 99]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    value, _ = AGGREGATIONS.get(name)(loss, mask, norm_constant=3)
    assert math.isclose(value.item(), expected, rel_tol=1e-6)
    assert AGGREGATIONS.get(name)(loss, torch.zeros_like(mask), norm_constant=3)[0].item() == 0.0


def test_presets_and_overrides():
    assert set(PRESETS.names()) >= {"grpo", "dr_grpo"}
    grpo = PRESETS.get("grpo")
    assert (grpo.beta, grpo.loss_agg, grpo.eps_low, grpo.eps_high) == (0.02, "token-mean", 0.2, 0.2)
    cfg = parse_config({"rl": {"beta": 0.0, "eps_high": 0.28}})
    algo = resolve("grpo", cfg.rl)
    assert (algo.beta, algo.eps_high, algo.eps_low) == (0.0, 0.28, 0.2)
    for a in map(PRESETS.get, PRESETS.names()):
        from speechrl.algos import ADVANTAGES

        ADVANTAGES.get(a.advantage), POLICY_LOSSES.get(a.policy_loss), AGGREGATIONS.get(a.loss_agg), KL_ESTIMATORS.get(a.kl_estimator)
