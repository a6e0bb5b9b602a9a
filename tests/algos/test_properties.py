"""Property tests (hypothesis): random shapes, group sizes 1..16, masks with empty rows and all-masked batches,
log-ratios up to +-50 and garbage in the padding. Every preset's full objective (segmenter, ratio, advantage,
policy loss, KL, aggregation) stays finite, its gradient is finite, padding gets exactly zero gradient and
changing the padding changes nothing."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from speechrl.algos import ADVANTAGES, AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES, PRESETS, RATIOS, SEGMENTERS

SETTINGS = settings(max_examples=60, deadline=None)


def batch(seed: int, groups: int, g: int, t: int, scale: float, empty: str):
    gen = torch.Generator().manual_seed(seed)
    n = groups * g
    lengths = torch.randint(0, t + 1, (n, 1), generator=gen)
    if empty == "all":
        lengths.zero_()
    elif empty == "none":
        lengths.clamp_(min=1)
    mask = (torch.arange(t) < lengths).long()
    old = -torch.rand(n, t, generator=gen) * 10
    noise = torch.randn(n, t, generator=gen) * scale
    extreme = torch.rand(n, t, generator=gen) < 0.2
    noise = torch.where(extreme, torch.sign(noise) * 50.0, noise)               # log-ratios of exactly +-50
    logp = old + noise
    ref = old + torch.randn(n, t, generator=gen) * scale
    ids = torch.randint(0, 3, (n, t), generator=gen) * 700                      # shared prefixes, id jumps
    rewards = torch.randint(0, 4, (n,), generator=gen).float() / 3
    modality = torch.arange(n) % 2
    return logp, old, ref, ids, mask, rewards, modality


def objective(name: str, logp, old, ref, ids, mask, rewards, modality, g):
    a = PRESETS.get(name)
    segments = None
    if a.segmenter:
        segments, _ = SEGMENTERS.get(a.segmenter)(old, ids, mask, **a.segmenter_opts)
    adv, _ = ADVANTAGES.get(a.advantage)(rewards, g, mask=mask, ids=ids, surprisal=-old, modality=modality, **a.advantage_opts)
    lr, _ = RATIOS.get(a.ratio)(logp, old, mask, segments=segments, **a.ratio_opts)
    off = (torch.arange(logp.shape[0]) % g == g - 1) if a.mixed_policy else None
    pg, metrics = POLICY_LOSSES.get(a.policy_loss)(lr, adv, mask, off_policy=off, **a.loss_opts)
    kl, _ = KL_ESTIMATORS.get(a.kl_estimator)(logp, ref)
    loss, _ = AGGREGATIONS.get(a.loss_agg)(pg + a.beta * kl, mask, norm_constant=logp.shape[1], segments=segments)
    return loss, adv, metrics


shapes = dict(seed=st.integers(0, 2**31 - 1), groups=st.integers(1, 4), g=st.integers(1, 16), t=st.integers(1, 12),
              scale=st.sampled_from([0.0, 0.3, 5.0, 50.0]), empty=st.sampled_from(["some", "none", "all"]),
              name=st.sampled_from(sorted(PRESETS.names())))


@SETTINGS
@given(**shapes)
def test_every_preset_is_finite_and_ignores_padding(seed, groups, g, t, scale, empty, name):
    logp, old, ref, ids, mask, rewards, modality = batch(seed, groups, g, t, scale, empty)
    x = logp.clone().requires_grad_(True)
    loss, adv, metrics = objective(name, x, old, ref, ids, mask, rewards, modality, g)
    assert torch.isfinite(loss) and torch.isfinite(adv).all()
    assert all(v == v and abs(v) != float("inf") for v in metrics.values()), metrics
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(grad).all()
    assert (grad[mask == 0] == 0).all()
    # garbage in the padding (of logp, old_logp, ref_logp and ids) changes neither value nor gradient
    pad = mask == 0
    y = torch.where(pad, torch.full_like(logp, 1e4), logp).requires_grad_(True)
    loss2, _, _ = objective(name, y, torch.where(pad, -1e4, old), torch.where(pad, 3e3, ref),
                            torch.where(pad, 99999, ids), mask, rewards, modality, g)
    (grad2,) = torch.autograd.grad(loss2, y)
    assert torch.allclose(loss, loss2, atol=1e-6, rtol=1e-5) and torch.allclose(grad, grad2, atol=1e-6, rtol=1e-5)
    if empty == "all":
        assert loss.item() == 0.0


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), groups=st.integers(1, 4), g=st.integers(1, 16),
       scale=st.sampled_from([1e-3, 1.0, 1e6]), name=st.sampled_from(["grpo", "dr_grpo", "modality"]))
def test_advantages_are_finite_and_group_relative(seed, groups, g, scale, name):
    gen = torch.Generator().manual_seed(seed)
    r = torch.randn(groups * g, generator=gen) * scale
    adv, _ = ADVANTAGES.get(name)(r, g, modality=torch.arange(groups * g) % 2)
    assert adv.shape == r.shape and torch.isfinite(adv).all()
    if name != "modality":  # each group's advantages sum to 0
        assert torch.allclose(adv.view(groups, g).sum(1), torch.zeros(groups), atol=1e-3 * max(1.0, scale))
    for scale_opt in ("group", "batch", "none"):
        assert torch.isfinite(ADVANTAGES.get("grpo")(r, g, scale=scale_opt)[0]).all()


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), t=st.integers(1, 16), window=st.integers(1, 6),
       tau=st.sampled_from([0.0, 0.5, 3.0]), delta=st.sampled_from([0, 100, 5000]))
def test_segmenters_are_contiguous_and_cover_the_mask(seed, t, window, tau, delta):
    gen = torch.Generator().manual_seed(seed)
    n = 6
    mask = (torch.arange(t) < torch.randint(0, t + 1, (n, 1), generator=gen)).long()
    logp, ids = -torch.rand(n, t, generator=gen) * 4, torch.randint(0, 10000, (n, t), generator=gen)
    for name, opts in (("fixed", {"window": window}), ("logprob_jump", {"tau": tau}), ("tokenid_jump", {"delta": delta})):
        seg, _ = SEGMENTERS.get(name)(logp, ids, mask, **opts)
        assert seg.dtype == torch.long and ((seg >= 0) == mask.bool()).all()
        inside = seg[:, 1:][mask[:, 1:].bool()] - seg[:, :-1][mask[:, 1:].bool()]
        assert ((inside == 0) | (inside == 1)).all()          # ids grow by 0 or 1 along a row
        first = seg[:, 0][mask[:, 0].bool()]
        assert (first == 0).all()
        if name == "fixed":
            counts = seg.max(1).values + 1
            assert (counts == torch.div(mask.sum(1) + window - 1, window, rounding_mode="floor")).all()  # ceil(|y| / W)
