"""Every algorithm preset runs through the RL stage's CLI on the tiny model (a short run each)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from speechrl.algos import PRESETS, resolve
from speechrl.cli import main
from speechrl.config import dump_config, parse_config
from speechrl.models.build import load
from speechrl.training.data import load_split
from speechrl.training.groups import modality
from speechrl.training.rl import collect, fill_failed, make_run, rl_step

from conftest import tiny_dict


@pytest.mark.parametrize("preset", PRESETS.names())
def test_rl_stage_runs_every_preset(preset, tiny_data, tiny_model_dir, tmp_path):
    d = tiny_dict(tmp_path / "results")
    d["rl"].update({"algorithms": [preset], "rewards": {"chrf": 1.0}})
    cfg = tmp_path / "config.yaml"
    cfg.write_text(dump_config(parse_config(d)))
    out = tmp_path / "rl"
    main(["rl", "--config", str(cfg), "--task", "sqa", "--algo", preset, "--data", str(tiny_data["sqa"]),
          "--model", str(tiny_model_dir / "model" if (tiny_model_dir / "model").exists() else tiny_model_dir),
          "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algorithm"]["name"] == preset and len(summary["history"]) == 2
    assert all(math.isfinite(h["actor/kl"]) or h["actor/kl"] != h["actor/kl"] for h in summary["history"])
    assert (out / "model" / "config.json").exists() and (out / "manifest.json").exists()


def _run(tiny_model_dir, tiny_data, tiny_cfg, preset, **rl):
    for k, v in rl.items():
        setattr(tiny_cfg.rl, k, v)
    policy, proc = load(tiny_model_dir)
    train = load_split(tiny_data["ast"], "train", proc)
    return make_run(tiny_cfg, resolve(preset, tiny_cfg.rl), policy, proc, train)


def test_mixed_policy_group_has_the_reference(tiny_model_dir, tiny_data, tiny_cfg):
    run = _run(tiny_model_dir, tiny_data, tiny_cfg, "mp_grpo", rewards={"bleu": 1.0})
    b, _ = collect(run)
    r, rewards, g = b.rollout, b.rewards, tiny_cfg.rl.group_size
    assert r.group_size == g and r.off_policy.view(-1, g)[:, -1].all() and not r.off_policy.view(-1, g)[:, :-1].any()
    assert torch.allclose(rewards.view(-1, g)[:, -1], torch.ones(rewards.shape[0] // g))  # BLEU(reference, reference) = 1
    assert rl_step(run)["adv/abs_mean"] > 0


def test_modality_split_halves_each_group(tiny_model_dir, tiny_data, tiny_cfg):
    run = _run(tiny_model_dir, tiny_data, tiny_cfg, "tars", rewards={"chrf": 1.0})
    b, _ = collect(run)
    g = tiny_cfg.rl.group_size
    assert modality(b.rollout).view(-1, g).tolist() == [[0] * (g // 2) + [1] * (g // 2)] * (b.rewards.shape[0] // g)
    # TARS's alignment rewards: speech rows only (text rows 0), a cosine in [-1, 1]; the states come from the generation
    assert b.rollout.states is not None and b.rollout.states.shape[:2] == (b.rewards.shape[0], run.policy.config.text_config.num_hidden_layers)
    text = modality(b.rollout) == 1
    for name in ("reward/rep_alignment", "reward/beh_alignment"):
        assert (b.scores[name][text] == 0).all() and (b.scores[name].abs() <= 1 + 1e-6).all()
    parts = [b.scores[f"reward/{k}"].double() for k in ("chrf", "rep_alignment", "beh_alignment")]
    assert torch.allclose(b.rewards.double(), sum(parts), atol=1e-6)
    m = rl_step(run)
    assert "reward/speech" in m and "reward/text" in m and "reward/rep_alignment" in m and "state/rep_unpaired" in m


def test_dynamic_sampling_refills_or_skips(tiny_model_dir, tiny_data, tiny_cfg):
    # exact match of a random model is 0 for every completion: every group has zero variance and is dropped
    import dataclasses

    run = _run(tiny_model_dir, tiny_data, tiny_cfg, "dapo", rewards={"exact_match": 1.0}, max_sample_batches=3)
    run.algo = dataclasses.replace(run.algo, shapers={"dynamic_sampling": {}})  # the length penalty would add reward variance
    b, m = collect(run)
    assert m["batch/sample_batches"] == 3 and m["batch/groups_kept"] == 0 and b.rewards.numel() == 0
    before = [p.detach().clone() for p in run.policy.parameters()]
    m = rl_step(run)
    assert math.isnan(m["reward/mean"]) and all(torch.equal(a, b) for a, b in zip(before, run.policy.parameters()))
    # with chrF (varies) the batch fills at once
    tiny_cfg.rl.rewards = {"chrf": 1.0}
    b, m = collect(run)
    assert m["batch/groups_kept"] == tiny_cfg.rl.prompts_per_step and m["batch/sample_batches"] == 1
    assert b.rewards.numel() == tiny_cfg.rl.prompts_per_step * tiny_cfg.rl.group_size


def test_failed_rewards_take_the_group_mean():
    r = torch.tensor([1.0, float("nan"), 3.0, float("nan"), float("nan"), float("nan")])
    filled, failed = fill_failed(r, 3)
    assert filled.tolist() == [1.0, 2.0, 3.0, 0.0, 0.0, 0.0] and failed.tolist() == [False, True, False, True, True, True]
