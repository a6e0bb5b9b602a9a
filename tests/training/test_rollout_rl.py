"""Rollouts and the RL step on the tiny model: log-prob identity, masks, an update that moves weights."""

from __future__ import annotations

import math

import pytest
import torch

from speechrl.algos import resolve
from speechrl.models.build import load
from speechrl.training.data import load_split
from speechrl.training.rl import advantages, backward_minibatch, collect, make_run, rl_step, train_rl
from speechrl.training.rollout import completion_mask, concat, sample, select, text_variant, token_logp, with_reference


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
    train = load_split(tiny_data["ast"], "train", proc)
    tiny_cfg.rl.rewards = {"chrf": 1.0}  # varies even for a random model (BLEU is 0 for every sample)
    tiny_cfg.rl.lr = 1e-2
    before = [p.detach().clone() for p in policy.parameters()]
    run = make_run(tiny_cfg, resolve("grpo", tiny_cfg.rl), policy, proc, train[:2])
    m = rl_step(run)
    assert m["adv/abs_mean"] > 0
    for key in ("reward/mean", "reward/chrf", "actor/kl", "actor/entropy", "response/length", "actor/clipfrac"):
        assert key in m and math.isfinite(m[key]), key
    assert m["actor/kl"] == 0.0  # policy == reference before the first update
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))


def test_keyed_sampling_does_not_depend_on_batch_mates(tiny_model_dir, tiny_data):
    """A completion keyed by its prompt's key is the same alone or in a batch (so 1 or N ranks sample alike)."""
    model, proc = load(tiny_model_dir)
    model.eval()
    prompts = load_split(tiny_data["sqa"], "train", proc)[:3]
    both = sample(model, proc, prompts, 4, max_new_tokens=6, keys=["a", "b", "c"])
    alone = sample(model, proc, prompts[1:2], 4, max_new_tokens=6, keys=["b"])
    width = alone.completion_ids.shape[1]
    assert torch.equal(both.completion_ids[4:8, :width] * both.completion_mask[4:8, :width], alone.completion_ids * alone.completion_mask)
    other = sample(model, proc, prompts[1:2], 4, max_new_tokens=6, keys=["z"])
    assert not torch.equal(other.completion_ids, alone.completion_ids)  # the key decides the draw
    m = both.completion_mask.bool()
    with torch.no_grad():
        assert torch.allclose(token_logp(model, both)[0][m], both.old_logp[m], atol=1e-4)


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


def _grads(tiny_model_dir, tiny_data, tiny_cfg, grad_accum, loss_agg, preset="grpo"):
    """Gradient of one minibatch (the whole rollout batch) through the RL loop's backward."""
    policy, proc = load(tiny_model_dir)
    train = load_split(tiny_data["ast"], "train", proc)
    tiny_cfg.rl.rewards, tiny_cfg.rl.prompts_per_step, tiny_cfg.rl.grad_accum = {"chrf": 1.0}, 4, grad_accum
    tiny_cfg.rl.loss_agg = loss_agg
    run = make_run(tiny_cfg, resolve(preset, tiny_cfg.rl), policy, proc, train[:6])
    batch, _ = collect(run)
    adv, _, _ = advantages(run, batch)
    m = backward_minibatch(run, batch, adv, list(range(batch.n_groups)))
    return torch.cat([p.grad.flatten() for p in policy.parameters() if p.grad is not None]), m


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"])
def test_gradient_accumulation_equals_one_batch(tiny_model_dir, tiny_data, tiny_cfg, agg):
    # global normalisers: 4 micro-batches of unequal token counts give the one-batch gradient in every mode
    full, m1 = _grads(tiny_model_dir, tiny_data, tiny_cfg, 1, agg)
    acc, m4 = _grads(tiny_model_dir, tiny_data, tiny_cfg, 4, agg)
    assert full.abs().max() > 1e-4  # a real gradient, not zeros
    assert torch.allclose(full, acc, atol=1e-6, rtol=0)
    assert m1["loss"] == pytest.approx(m4["loss"], abs=1e-6)


def _updates(tiny_model_dir, tiny_data, tiny_cfg, **rl):
    policy, proc = load(tiny_model_dir)
    train = load_split(tiny_data["ast"], "train", proc)
    tiny_cfg.rl.rewards, tiny_cfg.rl.prompts_per_step = {"chrf": 1.0}, 4
    for k, v in rl.items():
        setattr(tiny_cfg.rl, k, v)
    return rl_step(make_run(tiny_cfg, resolve("grpo", tiny_cfg.rl), policy, proc, train[:6]))


def test_epochs_and_minibatches_make_several_updates(tiny_model_dir, tiny_data, tiny_cfg):
    one = _updates(tiny_model_dir, tiny_data, tiny_cfg, epochs=1, minibatches=1)
    assert one["actor/updates"] == 1 and one["actor/ratio_max"] == pytest.approx(1.0, abs=1e-5)  # pi == pi_old
    m = _updates(tiny_model_dir, tiny_data, tiny_cfg, epochs=2, minibatches=2, lr=1e-2)
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
