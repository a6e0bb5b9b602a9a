"""Tiny Granite Speech: built from config, saved, reloaded via from_pretrained, LoRA, processor layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import GraniteSpeechForConditionalGeneration

from speechrl.models.build import apply_lora, count_params, forward, load, merged_embeds, save
from speechrl.models.processor import model_inputs


def test_reload_is_the_same_model(tiny_model_dir, tiny_cfg):
    model, proc = load(tiny_model_dir)
    assert isinstance(model, GraniteSpeechForConditionalGeneration)
    assert model.config.window_size == tiny_cfg.model.tiny.projector_window
    wav = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    feats, k = proc.features(wav)
    batch = proc.batch([feats], [k], ["Question?"])
    again, _ = load(tiny_model_dir)
    with torch.no_grad():
        a = model(**model_inputs(batch)).logits
        b = again(**model_inputs(batch)).logits
        # the merged-embeddings path (training, rollouts) equals transformers' input_ids + input_features path
        c = forward(model, batch)
    assert torch.equal(a, b)
    assert torch.allclose(a, c, atol=1e-5)


def test_embeddings_do_not_depend_on_batch_mates(tiny_model_dir):
    """Per-clip encoding: a clip gives the same logits alone and next to a longer clip."""
    model, proc = load(tiny_model_dir)
    rng = np.random.default_rng(2)
    short, long_ = (rng.standard_normal(n).astype(np.float32) * 0.1 for n in (8000, 40000))
    (fs, ks), (fl, kl) = proc.features(short), proc.features(long_)
    with torch.no_grad():
        alone = forward(model, proc.batch([fs], [ks], ["Q?"]))[0]
        paired = forward(model, proc.batch([fs, fl], [ks, kl], ["Q?", "Q?"]))[0]
    assert torch.allclose(alone, paired[-alone.shape[0]:], atol=1e-5)


def test_processor_layout_and_labels(tiny_model_dir):
    _, proc = load(tiny_model_dir)
    f1, k1 = proc.features(np.zeros(16000, np.float32) + 0.01)
    f2, k2 = proc.features(np.zeros(8000, np.float32) + 0.01)
    b = proc.batch([f1, f2], [k1, k2], ["a b", "c"], ["yes", "no"])
    ids, att, lab = b["input_ids"], b["attention_mask"], b["labels"]
    assert ids.shape == att.shape == lab.shape
    for i, k in enumerate((k1, k2)):
        assert int((ids[i] == proc.audio_id).sum()) == k == int(b["input_features_mask"][i].sum())
        target = lab[i][lab[i] != -100].tolist()
        assert target[-1] == proc.tokenizer.eos_token_id
        assert proc.tokenizer.decode(target[:-1]) == ["yes", "no"][i]
    assert att[1, 0] == 0 and att[1, -1] == 1  # left padding


def test_lora_trains_only_adapters_and_merges(tiny_model_dir, tmp_path, tiny_cfg):
    model, proc = load(tiny_model_dir)
    lora = apply_lora(model, tiny_cfg.model.lora)
    n = count_params(lora)
    assert 0 < n["trainable"] < n["total"]
    assert all("lora_" in name for name, p in lora.named_parameters() if p.requires_grad)
    for name, p in lora.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)
    wav = np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1
    feats, k = proc.features(wav)
    batch = proc.batch([feats], [k], ["Q"])
    with torch.no_grad():
        adapted = forward(lora, batch)
    save(lora, proc, tmp_path / "merged")
    merged, _ = load(tmp_path / "merged")
    with torch.no_grad():
        assert torch.allclose(forward(merged, batch), adapted, atol=1e-4)


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="model checkpoint not found"):
        load(tmp_path / "nothing")
