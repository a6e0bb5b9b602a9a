"""Rollouts and the RL step on the tiny model: log-prob identity, masks, an update that moves weights."""

from __future__ import annotations

import math

import pytest
import torch

from speechrl.algos import resolve
from speechrl.models.build import load
from speechrl.training.data import load_split
from speechrl.training.rl import rl_step, train_rl
import random

from speechrl.training.rollout import completion_mask, concat, sample, select, text_variant, token_logp, with_reference
from speechrl.training.optim import adamw, warmup_constant


def test_completion_mask_keeps_through_first_eos():
    ids = torch.tensor([[5, 1, 7, 1], [5, 6, 7, 8], [1, 0, 0, 0]])
    assert completion_mask(ids, eos_id=1).tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]


def test_rollout_logprobs_equal_teacher_forced_forward(tiny_model_dir, tiny_data):
    model, proc = load(tiny_model_dir)
    model.eval()
    prompts = load_split(tiny_data["sqa"], "train", proc)[:3]
    torch.manual_seed(0)
    r = sample(model, proc, prompts, 4, temperature=0.7, max_new_tokens=6)
    assert r.completion_ids.shape[0] == 12 and len(r.texts) == 12
    with torch.no_grad():
        logp, ent = token_logp(model, r, 0.7, with_entropy=True)
    m = r.completion_mask.bool()
    assert torch.allclose(logp[m], r.old_logp[m], atol=1e-4)
    assert (ent[m] >= 0).all()


def test_rl_step_updates_policy_and_reports_metrics(tiny_model_dir, tiny_data, tiny_cfg):
    policy, proc = load(tiny_model_dir)
    ref, _ = load(tiny_model_dir)
    train = load_split(tiny_data["ast"], "train", proc)
    tiny_cfg.rl.rewards = {"chrf": 1.0}  # varies even for a random model (BLEU is 0 for every sample)
    before = [p.detach().clone() for p in policy.parameters()]
    opt = adamw(policy, 1e-2, 0.0)
    m = rl_step(tiny_cfg, resolve("grpo", tiny_cfg.rl), policy.eval(), ref.eval(), proc, train[:2], opt,
                warmup_constant(opt, 1), random.Random(0))
    assert m["adv/abs_mean"] > 0
    for key in ("reward/mean", "reward/chrf", "actor/kl", "actor/entropy", "response/length", "actor/clipfrac"):
        assert key in m and math.isfinite(m[key]), key
    assert m["actor/kl"] == 0.0  # policy == reference before the first update
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))


def test_train_rl_is_deterministic(tiny_model_dir, tiny_data, tiny_cfg, tmp_path):
    runs = []
    for i in range(2):
        policy, proc = load(tiny_model_dir)
        train = load_split(tiny_data["sqa"], "train", proc)
        runs.append(train_rl(tiny_cfg, resolve("grpo", tiny_cfg.rl), policy, proc, train, tmp_path / f"m{i}"))
    assert [h["reward/mean"] for h in runs[0]["history"]] == [h["reward/mean"] for h in runs[1]["history"]]
    a, _ = load(tmp_path / "m0")
    b, _ = load(tmp_path / "m1")
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def _rollout(tiny_model_dir, tiny_data, n_prompts=3, g=4, seed=0):
    model, proc = load(tiny_model_dir)
    model.eval()
    prompts = load_split(tiny_data["sqa"], "train", proc)[:n_prompts]
    torch.manual_seed(seed)
    return model, proc, prompts, sample(model, proc, prompts, g, max_new_tokens=6)


def test_concat_and_select_keep_logprobs(tiny_model_dir, tiny_data):
    """Rollouts from different batches concatenate without changing any row's log-probs."""
    model, proc, prompts, r1 = _rollout(tiny_model_dir, tiny_data)
    r2 = sample(model, proc, load_split(tiny_data["ast"], "train", proc)[:2], 4, max_new_tokens=9)
    both = concat([r1, select(r2, [1])], proc.tokenizer.pad_token_id)
    assert both.completion_ids.shape[0] == 16 and len(both.texts) == 16 and len(both.samples) == 4
    with torch.no_grad():
        lp, _ = token_logp(model, both)
    m = both.completion_mask.bool()
    assert torch.allclose(lp[m], both.old_logp[m], atol=1e-4)


def test_reference_member_is_off_policy(tiny_model_dir, tiny_data):
    model, proc, prompts, r = _rollout(tiny_model_dir, tiny_data, g=3)
    mp = with_reference(r, proc)
    assert mp.group_size == 4 and mp.off_policy.tolist() == [False, False, False, True] * 3
    ref_row = mp.completion_ids[3][mp.completion_mask[3].bool()].tolist()
    assert ref_row == proc.target_ids(prompts[0].example.references[0])
    assert mp.texts[3] == prompts[0].example.references[0] and mp.old_logp[3].abs().sum() == 0


def test_text_variant_has_no_audio(tiny_model_dir, tiny_data):
    model, proc, prompts, _ = _rollout(tiny_model_dir, tiny_data)
    t = text_variant(prompts[0])
    assert t.n_audio == 0 and prompts[0].example.extra["transcript"] in t.example.prompt
    r = sample(model, proc, [prompts[0], t], 2, max_new_tokens=5)
    assert len(r.texts) == 4 and int((r.prompt["input_ids"][1] == proc.audio_id).sum()) == 0


def _step_params(tiny_model_dir, tiny_data, tiny_cfg, seed=0, **rl):
    """Parameters after one rl_step with plain SGD (so equal gradients give equal weights)."""
    policy, proc = load(tiny_model_dir)
    train = load_split(tiny_data["ast"], "train", proc)
    tiny_cfg.rl.rewards = {"chrf": 1.0}
    tiny_cfg.rl.prompts_per_step = 4
    for k, v in rl.items():
        setattr(tiny_cfg.rl, k, v)
    tiny_cfg.rl.loss_agg = "seq-mean-token-mean"
    algo = resolve("grpo", tiny_cfg.rl)
    opt = torch.optim.SGD([p for p in policy.parameters() if p.requires_grad], lr=1.0)
    torch.manual_seed(seed)
    m = rl_step(tiny_cfg, algo, policy.eval(), None, proc, train[:6], opt, warmup_constant(opt, 1), random.Random(seed))
    return torch.cat([p.detach().flatten() for p in policy.parameters()]), m


def test_gradient_accumulation_equals_one_batch(tiny_model_dir, tiny_data, tiny_cfg):
    # seq-mean-token-mean over equal micro-batches: the mean of micro means is the batch mean
    full, m1 = _step_params(tiny_model_dir, tiny_data, tiny_cfg, grad_accum=1)
    acc, m2 = _step_params(tiny_model_dir, tiny_data, tiny_cfg, grad_accum=2)
    assert m1["actor/updates"] == m2["actor/updates"] == 1
    assert torch.allclose(full, acc, atol=1e-6)


def test_epochs_and_minibatches_make_several_updates(tiny_model_dir, tiny_data, tiny_cfg):
    _, one = _step_params(tiny_model_dir, tiny_data, tiny_cfg, epochs=1, minibatches=1)
    assert one["actor/updates"] == 1 and one["actor/ratio_max"] == pytest.approx(1.0, abs=1e-5)  # pi == pi_old
    _, m = _step_params(tiny_model_dir, tiny_data, tiny_cfg, epochs=2, minibatches=2)
    assert m["actor/updates"] == 4
    # the last minibatch sees a policy moved by 3 updates against the kept old log-probs
    assert abs(m["actor/ratio_max"] - 1.0) > 1e-3 and math.isfinite(m["actor/loss"])


def test_lora_reference_is_the_adapter_disabled_base(tiny_model_dir, tiny_data, tiny_cfg):
    from speechrl.models.build import apply_lora
    from speechrl.training.rl import reference_logp

    base, proc = load(tiny_model_dir)
    policy, _ = load(tiny_model_dir)
    policy = apply_lora(policy, tiny_cfg.model.lora)
    for n, p in policy.named_parameters():  # move the adapter away from its zero init
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.5)
    train = load_split(tiny_data["sqa"], "train", proc)[:2]
    torch.manual_seed(0)
    r = sample(policy.eval(), proc, train, 3, max_new_tokens=5)
    m = r.completion_mask.bool()
    with torch.no_grad():
        base_logp = token_logp(base.eval(), r)[0]
        policy_logp = token_logp(policy, r)[0]
    ref = reference_logp(policy, None, r, 1.0)
    assert torch.allclose(ref[m], base_logp[m], atol=1e-5)
    assert not torch.allclose(policy_logp[m], base_logp[m], atol=1e-3)  # the adapter is back on afterwards
