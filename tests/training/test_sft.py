"""SFT: loss goes down on a fixed batch; early stopping keeps the best checkpoint."""

from __future__ import annotations

import dataclasses
import random

from speechrl.models.build import load
from speechrl.training.data import batches, collate, load_split
from speechrl.training.sft import lm_loss, train_sft


def test_overfits_one_batch(tiny_model_dir, tiny_data, tiny_cfg):
    import torch

    model, proc = load(tiny_model_dir)
    batch = collate(proc, load_split(tiny_data["ast"], "train", proc)[:4], with_answers=True)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss, n = lm_loss(model, batch)
        first = first if first is not None else loss.item()
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert n > 0 and loss.item() < 0.6 * first


def test_train_sft_saves_best_and_summarises(tiny_model_dir, tiny_data, tiny_cfg, tmp_path):
    model, proc = load(tiny_model_dir)
    train = load_split(tiny_data["sqa"], "train", proc)
    valid = load_split(tiny_data["sqa"], "valid", proc)
    logged = []
    s = train_sft(tiny_cfg, model, proc, train, valid, tmp_path / "sft", lambda m, step: logged.append(step))
    assert (tmp_path / "sft" / "config.json").exists()
    assert s["best_step"] in [h["step"] for h in s["history"]]
    assert s["best_valid_loss"] == min(h["valid_loss"] for h in s["history"])
    assert logged == list(range(1, s["steps"] + 1))


def test_batches_are_seeded_and_cover_the_data(tiny_model_dir, tiny_data):
    _, proc = load(tiny_model_dir)
    train = load_split(tiny_data["sqa"], "train", proc)
    take = lambda seed: [[s.example.id for s in b] for b, _ in zip(batches(train, 4, random.Random(seed)), range(3))]
    assert take(0) == take(0) != take(1)
    assert sorted(i for b in take(0) for i in b) == sorted(s.example.id for s in train)
    assert dataclasses.is_dataclass(train[0])


def _grads_after_accumulate(tiny_model_dir, tiny_data, micro):
    import torch

    from speechrl.training.backend import LocalBackend, OptimSpec
    from speechrl.training.sft import accumulate

    model, proc = load(tiny_model_dir)
    model.eval()  # no dropout: both runs see the same function
    samples = load_split(tiny_data["sqa"], "train", proc)[:6]
    loss = accumulate(LocalBackend(model, OptimSpec(1e-3, 0.0, 1.0)), proc, samples, micro)
    return loss, torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def test_gradient_accumulation_gives_the_one_batch_gradient(tiny_model_dir, tiny_data):
    import torch

    l1, g1 = _grads_after_accumulate(tiny_model_dir, tiny_data, 1)
    l3, g3 = _grads_after_accumulate(tiny_model_dir, tiny_data, 3)  # micro-batches weighted by their label tokens
    assert abs(l1 - l3) < 1e-5 and torch.allclose(g1, g3, atol=1e-6)


def test_continue_sft_is_the_control(tiny_model_dir, tiny_data, tiny_cfg, tmp_path):
    from speechrl.training.sft import continue_sft

    model, proc = load(tiny_model_dir)
    train = load_split(tiny_data["sqa"], "train", proc)
    s = continue_sft(tiny_cfg, model, proc, train, tmp_path / "m", steps=3, batch_size=4, lr=1e-3)
    assert s["steps"] == 3 and len(s["history"]) == 3 and s["batch_size"] == 4
    again, _ = load(tmp_path / "m")  # the last weights are saved (no early stopping)
    assert all((a == b).all() for a, b in zip(again.parameters(), model.parameters()))


def test_lora_sft_keeps_training_after_saving_the_best(tiny_model_dir, tiny_data, tiny_cfg, tmp_path):
    """Saving merges LoRA into a copy: the live model keeps its adapters and goes on learning."""
    from speechrl.models.build import apply_lora

    model, proc = load(tiny_model_dir)
    model = apply_lora(model, tiny_cfg.model.lora)
    train = load_split(tiny_data["sqa"], "train", proc)
    valid = load_split(tiny_data["sqa"], "valid", proc)
    tiny_cfg.sft.max_steps, tiny_cfg.sft.eval_every, tiny_cfg.sft.lr = 4, 1, 1e-2
    lora = lambda: {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}  # noqa: E731
    train_sft(tiny_cfg, model, proc, train, valid, tmp_path / "sft")
    after = lora()
    assert after and any(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)
    assert any(float(v.abs().max()) > 0 for v in after.values())  # lora_B starts at zero: the adapter was trained
    saved, _ = load(tmp_path / "sft")  # a plain merged checkpoint
    assert not any("lora_" in n for n, _ in saved.named_parameters())
