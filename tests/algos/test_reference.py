"""Agreement with small independent re-implementations that follow verl's ``core_algos`` structure
(masked_sum / masked_mean / agg_loss / compute_policy_loss_* / kl_penalty / compute_grpo_outcome_advantage)
and TRL's GRPO advantage: values and gradients to 1e-6 on random inputs (float64).

Each reference is written from the documented algorithm, in verl's shape: the loss functions take
(old_log_prob, log_prob, advantages, response_mask) and aggregate inside, as verl does. Intentional
differences (documented in our docstrings) are asserted explicitly, not hidden.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch

from speechrl.algos import ADVANTAGES, AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES, RATIOS

F64 = torch.float64


# ------------------------------------------------------------------ verl-structured references

def v_masked_sum(values, mask, axis=None):
    return (values * mask).sum(axis=axis)


def v_masked_mean(values, mask, axis=None):
    return (values * mask).sum(axis=axis) / (mask.sum(axis=axis) + 1e-8)


def v_agg_loss(loss_mat, loss_mask, loss_agg_mode, loss_scale_factor=None):
    if loss_agg_mode == "token-mean":
        return v_masked_sum(loss_mat, loss_mask) / loss_mask.sum()
    if loss_agg_mode in ("seq-mean-token-sum", "seq-mean-token-sum-norm"):
        seq_losses = torch.sum(loss_mat * loss_mask, dim=-1)
        seq_mask = (torch.sum(loss_mask, dim=-1) > 0).to(loss_mat.dtype)
        loss = v_masked_sum(seq_losses, seq_mask) / seq_mask.sum()
        if loss_agg_mode == "seq-mean-token-sum-norm":
            loss = loss / (loss_scale_factor if loss_scale_factor is not None else loss_mask.shape[-1])
        return loss
    if loss_agg_mode == "seq-mean-token-mean":
        counts = torch.sum(loss_mask, dim=-1)
        seq_losses = torch.sum(loss_mat * loss_mask, dim=-1) / (counts + 1e-8)
        seq_mask = (counts > 0).to(loss_mat.dtype)
        return v_masked_sum(seq_losses, seq_mask) / seq_mask.sum()
    raise ValueError(loss_agg_mode)


def v_vanilla(old_log_prob, log_prob, advantages, response_mask, loss_agg_mode, low, high, clip_ratio_c=3.0):
    negative_approx_kl = torch.clamp(log_prob - old_log_prob, min=-20.0, max=20.0)
    ratio = torch.exp(negative_approx_kl)
    pg_losses1 = -advantages * ratio
    pg_losses2 = -advantages * torch.clamp(ratio, 1 - low, 1 + high)
    clip_pg_losses1 = torch.maximum(pg_losses1, pg_losses2)
    pg_losses3 = -advantages * clip_ratio_c
    clip_pg_losses2 = torch.min(pg_losses3, clip_pg_losses1)
    pg_losses = torch.where(advantages < 0, clip_pg_losses2, clip_pg_losses1)
    clipfrac = v_masked_mean(torch.gt(pg_losses2, pg_losses1).to(log_prob.dtype), response_mask)
    return v_agg_loss(pg_losses, response_mask, loss_agg_mode), clipfrac


def v_gspo(old_log_prob, log_prob, advantages, response_mask, low, high):
    negative_approx_kl = log_prob - old_log_prob
    seq_lengths = torch.sum(response_mask, dim=-1).clamp(min=1)
    seq_kl = torch.sum(negative_approx_kl * response_mask, dim=-1) / seq_lengths
    log_seq_ratio = log_prob - log_prob.detach() + seq_kl.detach().unsqueeze(-1)
    seq_ratio = torch.exp(torch.clamp(log_seq_ratio, max=10.0))
    pg_losses1 = -advantages * seq_ratio
    pg_losses2 = -advantages * torch.clamp(seq_ratio, 1 - low, 1 + high)
    return v_agg_loss(torch.maximum(pg_losses1, pg_losses2), response_mask, "seq-mean-token-mean")


def v_geo_mean(old_log_prob, log_prob, advantages, response_mask, low, high):
    negative_approx_kl = log_prob - old_log_prob
    sgn = torch.sign(advantages)
    clamped = torch.clamp(negative_approx_kl, -low, high)
    kl_min = sgn * torch.min(sgn * negative_approx_kl, sgn * clamped)
    mask_sum = response_mask.sum(dim=-1)
    ratio = torch.exp((kl_min * response_mask).sum(dim=-1) / (mask_sum + 1e-8))
    advantage = (advantages * response_mask).sum(dim=-1) / (mask_sum + 1e-8)
    return torch.mean(-advantage * ratio)


def v_sapo(old_log_prob, log_prob, advantages, response_mask, tau_pos, tau_neg):
    ratio = torch.exp(torch.clamp(log_prob - old_log_prob, min=-20.0, max=20.0))
    taus = torch.where(advantages > 0, torch.as_tensor(tau_pos, dtype=ratio.dtype), torch.as_tensor(tau_neg, dtype=ratio.dtype))
    gates = torch.sigmoid(taus * (ratio - 1.0)) * (4.0 / taus)
    return v_agg_loss(-gates * advantages, response_mask, "seq-mean-token-mean")


def v_low_var_kl(logprob, ref_logprob):
    kl = torch.clamp(ref_logprob - logprob, min=-20, max=20)
    return torch.clamp(torch.exp(kl) - kl - 1, min=-10, max=10)


def v_grpo_advantage(scores, index, epsilon=1e-6, norm_adv_by_std_in_grpo=True):
    scores = scores.clone()
    id2score, id2mean, id2std = defaultdict(list), {}, {}
    for i in range(scores.shape[0]):
        id2score[index[i]].append(scores[i])
    for idx, vals in id2score.items():
        if len(vals) == 1:
            id2mean[idx], id2std[idx] = torch.tensor(0.0), torch.tensor(1.0)
        else:
            id2mean[idx], id2std[idx] = torch.mean(torch.stack(vals)), torch.std(torch.stack(vals))
    for i in range(scores.shape[0]):
        centred = scores[i] - id2mean[index[i]]
        scores[i] = centred / (id2std[index[i]] + epsilon) if norm_adv_by_std_in_grpo else centred
    return scores


def trl_grpo_advantage(rewards, num_generations, scale_rewards="group"):
    mean_grouped = rewards.view(-1, num_generations).mean(dim=1).repeat_interleave(num_generations, dim=0)
    advantages = rewards - mean_grouped
    if scale_rewards == "group":
        std = rewards.view(-1, num_generations).std(dim=1).repeat_interleave(num_generations, dim=0)
    else:
        std = rewards.std().expand_as(rewards)
    return advantages / (std + 1e-4) if scale_rewards != "none" else advantages


# ------------------------------------------------------------------ ours

def ours(ratio, loss_name, agg, logp, old, adv, mask, **opts):
    lr, _ = RATIOS.get(ratio)(logp, old, mask)
    pg, m = POLICY_LOSSES.get(loss_name)(lr, adv, mask, **opts)
    value, _ = AGGREGATIONS.get(agg)(pg, mask)
    return value, m


def random_batch(seed, empty_rows=True, scale=0.4):
    g = torch.Generator().manual_seed(seed)
    n, t = int(torch.randint(2, 9, (1,), generator=g)), int(torch.randint(1, 12, (1,), generator=g))
    lengths = torch.randint(0 if empty_rows else 1, t + 1, (n, 1), generator=g)
    if not empty_rows:
        lengths = lengths.clamp(min=1)
    mask = (torch.arange(t) < lengths).to(F64)
    old = -torch.rand(n, t, generator=g, dtype=F64) * 3
    logp = (old + scale * torch.randn(n, t, generator=g, dtype=F64)).requires_grad_(True)
    adv = torch.randn(n, generator=g, dtype=F64)
    return logp, old, adv, mask


def both(f_ref, f_ours, logp):
    v_ref = f_ref()
    (g_ref,) = torch.autograd.grad(v_ref, logp)
    v, m = f_ours()
    (g,) = torch.autograd.grad(v, logp)
    return v_ref, g_ref, v, g, m


SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"])
def test_ppo_clip_matches_verl_vanilla(seed, agg):
    logp, old, adv, mask = random_batch(seed, empty_rows=agg != "token-mean" or seed % 2 == 0, scale=0.9)
    if mask.sum() == 0:
        mask[0, 0] = 1.0
    a = adv[:, None].expand_as(old)
    v_ref, g_ref, v, g, m = both(lambda: v_vanilla(old, logp, a, mask, agg, 0.2, 0.28)[0],
                                 lambda: ours("token", "ppo_clip", agg, logp, old, adv, mask, eps_low=0.2, eps_high=0.28, clip_ratio_c=3.0), logp)
    assert torch.allclose(v, v_ref, atol=1e-6) and torch.allclose(g, g_ref, atol=1e-6)
    assert abs(m["actor/clipfrac"] - float(v_vanilla(old, logp, a, mask, agg, 0.2, 0.28)[1])) < 1e-6


def test_dual_clip_is_exercised_by_those_cases():
    binds = []
    for seed in SEEDS:
        logp, old, adv, mask = random_batch(seed, scale=0.9)
        binds.append(bool(((torch.exp(logp.detach() - old) > 3) & (adv[:, None] < 0) & (mask > 0)).any()))
    assert any(binds)  # some case has r > 3 with A < 0, where verl's dual clip changes the loss


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ratio", ["gspo_token", "sequence"])
def test_gspo_matches_verl(seed, ratio):
    """verl's gspo is our gspo_token ratio + ppo_clip + seq-mean-token-mean; with sequence-level advantages our
    plain ``sequence`` ratio has the same value and gradient."""
    logp, old, adv, mask = random_batch(seed)
    old = logp.detach() + 1e-3 * (old - logp.detach())  # GSPO-sized steps so the 3e-4/4e-4 clip sometimes binds
    a = adv[:, None].expand_as(old)
    v_ref, g_ref, v, g, _ = both(lambda: v_gspo(old, logp, a, mask, 3e-4, 4e-4),
                                 lambda: ours(ratio, "ppo_clip", "seq-mean-token-mean", logp, old, adv, mask, eps_low=3e-4, eps_high=4e-4), logp)
    assert torch.allclose(v, v_ref, atol=1e-6) and torch.allclose(g, g_ref, atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_gmpo_matches_verl_geo_mean(seed):
    logp, old, adv, mask = random_batch(seed, empty_rows=False)
    a = adv[:, None].expand_as(old)
    v_ref, g_ref, v, g, m = both(lambda: v_geo_mean(old, logp, a, mask, 0.4, 0.4),
                                 lambda: ours("token", "gmpo", "seq-mean-token-mean", logp, old, adv, mask, eps_low=0.4, eps_high=0.4), logp)
    assert torch.allclose(v, v_ref, atol=1e-6) and torch.allclose(g, g_ref, atol=1e-6)


def test_gmpo_empty_rows_documented_difference():
    """verl averages -s_i A_i over ALL rows of the micro-batch (an empty row adds 0); we average non-empty rows."""
    logp, old, adv, mask = random_batch(3, empty_rows=False)
    mask[0] = 0.0
    a = adv[:, None].expand_as(old)
    v_ref = v_geo_mean(old, logp, a, mask, 0.4, 0.4)
    v, _ = ours("token", "gmpo", "seq-mean-token-mean", logp, old, adv, mask)
    n = mask.shape[0]
    assert torch.allclose(v * (n - 1) / n, v_ref, atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_sapo_matches_verl(seed):
    logp, old, adv, mask = random_batch(seed)
    a = adv[:, None].expand_as(old)
    v_ref, g_ref, v, g, _ = both(lambda: v_sapo(old, logp, a, mask, 1.0, 1.05),
                                 lambda: ours("token", "sapo", "seq-mean-token-mean", logp, old, adv, mask, tau_pos=1.0, tau_neg=1.05), logp)
    assert torch.allclose(v, v_ref, atol=1e-6) and torch.allclose(g, g_ref, atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_k3_matches_verl_low_var_kl(seed):
    g = torch.Generator().manual_seed(seed)
    logp = (torch.randn(5, 7, generator=g, dtype=F64) * 6).requires_grad_(True)  # wide: the clamps bind
    ref = torch.randn(5, 7, generator=g, dtype=F64) * 6
    (gr,) = torch.autograd.grad(v_low_var_kl(logp, ref).sum(), logp)
    k, _ = KL_ESTIMATORS.get("k3")(logp, ref)
    (go,) = torch.autograd.grad(k.sum(), logp)
    assert torch.allclose(k, v_low_var_kl(logp, ref), atol=1e-6) and torch.allclose(go, gr, atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("group_size", [2, 3, 8])
def test_grpo_advantage_matches_verl_and_trl(seed, group_size):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.rand(group_size * 4, generator=g)
    rewards[:group_size] = 0.5  # one zero-variance group
    index = [i // group_size for i in range(rewards.numel())]
    # The references are evaluated in float64: we compute in float64 (and zero constant groups, where
    # verl's float32 result is rounding noise; see test_constant_groups_get_exactly_zero_not_float32_noise).
    r64 = rewards.double()
    ours_verl, _ = ADVANTAGES.get("grpo")(r64, group_size)
    assert torch.allclose(ours_verl, v_grpo_advantage(r64, index), atol=1e-6)
    assert torch.allclose(ADVANTAGES.get("grpo")(r64, group_size, scale="none")[0],
                          v_grpo_advantage(r64, index, norm_adv_by_std_in_grpo=False), atol=1e-6)
    for scale in ("group", "batch", "none"):
        assert torch.allclose(ADVANTAGES.get("grpo")(r64, group_size, scale=scale, eps=1e-4)[0],
                              trl_grpo_advantage(r64, group_size, scale), atol=1e-6)


def test_grpo_singleton_group_documented_difference():
    """A group of one: verl uses mean 0, std 1 (A = R / (1 + eps)); TRL and we give 0."""
    rewards = torch.tensor([0.7, 0.2])
    assert torch.allclose(v_grpo_advantage(rewards, [0, 1]), rewards / (1 + 1e-6))
    assert torch.equal(ADVANTAGES.get("grpo")(rewards, 1)[0], torch.zeros(2))


def test_token_mean_all_masked_documented_difference():
    """verl's token-mean divides 0 by 0 on an all-masked micro-batch (NaN); we return 0."""
    loss, mask = torch.ones(2, 3), torch.zeros(2, 3)
    assert torch.isnan(v_agg_loss(loss, mask, "token-mean"))
    assert AGGREGATIONS.get("token-mean")(loss, mask)[0].item() == 0.0
