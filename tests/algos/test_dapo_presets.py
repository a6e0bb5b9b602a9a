"""DAPO extras (dynamic sampling, soft overlong penalty, overlong filter) and the presets (resolve, sources)."""

from __future__ import annotations

import math

import pytest
import torch

from speechrl.algos import (ADVANTAGES, AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES, PRESETS, RATIOS, SEGMENTERS,
                            resolve)
from speechrl.algos.dapo import dynamic_sampling_keep, overlong_filter, overlong_penalty, truncated_rows
from speechrl.config import parse_config


def test_dynamic_sampling_keeps_groups_with_reward_variance():
    r = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.5, float("nan"), float("nan"), float("nan")])
    keep, m = dynamic_sampling_keep(r, 2)
    # [1, 1] equal -> drop; [0, 1] -> keep; [0.5, NaN] one finite value -> drop; [NaN, NaN] -> drop
    assert keep.tolist() == [False, True, False, False]
    assert m["dapo/kept_groups"] == 0.25 and m["dapo/dropped_groups"] == 3.0
    assert dynamic_sampling_keep(torch.tensor([0.3, 0.3]), 1)[0].tolist() == [True, True]  # verl keeps singletons
    assert dynamic_sampling_keep(torch.tensor([0.3, 0.3]), 1, keep_singletons=False)[0].tolist() == [False, False]
    with pytest.raises(ValueError, match="group size 3 does not divide the batch: rewards has 8 entries"):
        dynamic_sampling_keep(r, 3)
    with pytest.raises(ValueError, match=r"rewards has infinite values at indices \[1\]"):
        dynamic_sampling_keep(torch.tensor([0.0, float("inf")]), 2)


def test_overlong_penalty_hand_computed():
    pen, m = overlong_penalty(torch.tensor([5, 6, 7, 8, 9, 10, 12]), max_len=10, cache_len=4)
    # L_max - L_cache = 6: 0 up to 6, then (6 - |y|) / 4, -1 at and beyond 10
    assert torch.allclose(pen, torch.tensor([0.0, 0.0, -0.25, -0.5, -0.75, -1.0, -1.0]))
    assert math.isclose(m["dapo/overlong_penalised"], 5 / 7, rel_tol=1e-6)
    assert torch.allclose(overlong_penalty(torch.tensor([8]), 10, 4, factor=0.5)[0], torch.tensor([-0.25]))
    assert overlong_penalty(torch.tensor([10, 11]), 10, 0)[0].tolist() == [0.0, -1.0]
    with pytest.raises(ValueError, match="need 0 <= cache_len <= max_len"):
        overlong_penalty(torch.tensor([1]), 10, 11)
    with pytest.raises(ValueError, match=r"lengths must be 1-D \(N,\)"):
        overlong_penalty(torch.ones(2, 2), 10, 4)


def test_overlong_filter_and_truncation():
    ids = torch.tensor([[3, 4, 1, 0], [3, 4, 5, 6], [3, 1, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]])
    trunc = truncated_rows(mask, ids, eos_id=1, max_len=4)
    assert trunc.tolist() == [False, True, False]
    out, m = overlong_filter(mask, trunc)
    assert out.tolist() == [[1, 1, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]] and out.dtype == mask.dtype
    assert math.isclose(m["dapo/overlong_filtered"], 1 / 3, rel_tol=1e-6)
    with pytest.raises(ValueError, match=r"shape mismatch: truncated \(2,\) must be \(3,\)"):
        overlong_filter(mask, torch.zeros(2, dtype=torch.bool))


EXPECTED = {  # name: (advantage, ratio, policy_loss, loss_agg, beta, loss_opts subset)
    "grpo": ("grpo", "token", "ppo_clip", "token-mean", 0.02, {"eps_low": 0.2, "eps_high": 0.2}),
    "dapo": ("grpo", "token", "ppo_clip", "token-mean", 0.0, {"eps_low": 0.2, "eps_high": 0.28}),
    "dr_grpo": ("dr_grpo", "token", "ppo_clip", "seq-mean-token-sum-norm", 0.02, {"eps_low": 0.2}),
    "mp_grpo": ("grpo", "token", "ppo_clip", "token-mean", 0.02, {"eps_low": 0.2}),
    "gspo": ("grpo", "sequence", "ppo_clip", "seq-mean-token-mean", 0.0, {"eps_low": 3e-4, "eps_high": 4e-4}),
    "gspo_token": ("grpo", "gspo_token", "ppo_clip", "seq-mean-token-mean", 0.0, {"eps_low": 3e-4, "eps_high": 4e-4}),
    "gspo_segment_window": ("grpo", "segment", "ppo_clip", "seq-mean-segment-mean", 0.0, {}),
    "gspo_segment_logprob": ("grpo", "segment", "ppo_clip", "seq-mean-segment-mean", 0.0, {}),
    "gspo_segment_tokenid": ("grpo", "segment", "ppo_clip", "seq-mean-segment-mean", 0.0, {}),
    "gmpo": ("grpo", "token", "gmpo", "seq-mean-token-mean", 0.0, {"eps_low": 0.4, "eps_high": 0.4}),
    "sapo": ("grpo", "token", "sapo", "seq-mean-token-mean", 0.0, {"tau_pos": 1.0, "tau_neg": 1.05}),
    "p_gspo": ("grpo", "p_gspo", "ppo_clip", "seq-mean-token-mean", 0.0, {"eps_low": 3e-4}),
    "leaf": ("leaf", "token", "ppo_clip", "token-mean", 0.02, {"eps_low": 0.2, "eps_high": 0.2}),
    "tars": ("modality", "token", "ppo_clip", "token-mean", 0.0, {"eps_low": 0.2, "eps_high": 0.28}),
    "tars_base": ("modality", "token", "ppo_clip", "token-mean", 0.0, {"eps_low": 0.2, "eps_high": 0.28}),
    "tars_rep": ("modality", "token", "ppo_clip", "token-mean", 0.0, {"eps_low": 0.2, "eps_high": 0.28}),
    "tars_beh": ("modality", "token", "ppo_clip", "token-mean", 0.0, {"eps_low": 0.2, "eps_high": 0.28}),
    "tars_naive": ("dr_grpo", "token", "ppo_clip", "token-mean", 0.0, {"eps_low": 0.2, "eps_high": 0.28}),
}


def test_presets_defaults_and_registry_names():
    assert set(PRESETS.names()) == set(EXPECTED)
    for name, (adv, ratio, loss, agg, beta, opts) in EXPECTED.items():
        a = PRESETS.get(name)
        assert (a.advantage, a.ratio, a.policy_loss, a.loss_agg, a.beta, a.kl_estimator) == (adv, ratio, loss, agg, beta, "k3"), name
        assert opts.items() <= a.loss_opts.items(), name
        assert a.description, name
        ADVANTAGES.get(a.advantage), RATIOS.get(a.ratio), POLICY_LOSSES.get(a.policy_loss)
        AGGREGATIONS.get(a.loss_agg), KL_ESTIMATORS.get(a.kl_estimator)
        if a.segmenter:
            SEGMENTERS.get(a.segmenter)
    assert PRESETS.get("dapo").dynamic_sampling and PRESETS.get("dapo").overlong["cache_frac"] == 0.2
    assert PRESETS.get("mp_grpo").mixed_policy and PRESETS.get("tars").modality_split
    assert PRESETS.get("p_gspo").ratio_opts == {"p": 0.5}
    # TARS's ablation: the alignment rewards each preset adds (alpha = beta = 1), all with speech / text halves
    align = {"rep_alignment": 1.0, "beh_alignment": 1.0}
    assert {n: PRESETS.get(n).state_rewards for n in ("tars", "tars_base", "tars_rep", "tars_beh", "tars_naive")} == {
        "tars": align, "tars_base": {}, "tars_rep": {"rep_alignment": 1.0}, "tars_beh": {"beh_alignment": 1.0},
        "tars_naive": align}
    assert all(PRESETS.get(n).modality_split for n in PRESETS.names() if n.startswith("tars"))
    assert not any(PRESETS.get(n).state_rewards for n in PRESETS.names() if not n.startswith("tars"))
    assert PRESETS.get("gspo_segment_window").segmenter_opts == {"window": 4}
    assert PRESETS.get("leaf").advantage_opts == {"B": 2, "zscore": "batch"}
    assert PRESETS.get("gspo").loss_opts is not PRESETS.get("gspo_token").loss_opts  # no shared mutable state


def test_resolve_overrides_go_into_the_loss_options():
    cfg = parse_config({"rl": {"beta": 0.0, "eps_high": 0.28, "loss_agg": "seq-mean-token-mean"}})
    algo = resolve("grpo", cfg.rl)
    assert (algo.beta, algo.eps_low, algo.eps_high, algo.loss_agg) == (0.0, 0.2, 0.28, "seq-mean-token-mean")
    assert algo.loss_opts == {"eps_low": 0.2, "eps_high": 0.28}
    assert PRESETS.get("grpo").loss_opts == {"eps_low": 0.2, "eps_high": 0.2}  # the preset itself is untouched
    sapo = resolve("sapo", parse_config({"rl": {"eps_low": 0.1}}).rl)
    assert sapo.loss_opts == {"tau_pos": 1.0, "tau_neg": 1.05, "eps_low": 0.1}  # ignored by the sapo loss
    assert resolve("gspo", parse_config({}).rl) == PRESETS.get("gspo")
    with pytest.raises(KeyError, match="unknown algorithm preset 'gspo2'"):
        resolve("gspo2", cfg.rl)


def test_segmenter_opts_reach_only_the_presets_whose_segmenter_takes_them():
    rl = parse_config({"rl": {"segmenter_opts": {"window": 16, "delta": 256}}}).rl
    assert resolve("gspo_segment_window", rl).segmenter_opts == {"window": 16}
    assert isinstance(resolve("gspo_segment_window", rl).segmenter_opts["window"], int)  # the segmenter's own type
    assert resolve("gspo_segment_tokenid", rl).segmenter_opts == {"delta": 256}
    assert resolve("gspo_segment_logprob", rl).segmenter_opts == {"tau": 1.0}  # takes neither: the preset's
    assert resolve("grpo", rl) == PRESETS.get("grpo")
    assert PRESETS.get("gspo_segment_window").segmenter_opts == {"window": 4}
