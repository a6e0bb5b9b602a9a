"""Model adapters (MODELS): each architecture builds tiny, saves, reloads through from_pretrained with the
same logits, generates; codec_lm trains (SFT + a GSPO step on an audio reward) and evaluates with audio
outputs; invalid token ids in an output are dropped and counted."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechrl.algos import resolve
from speechrl.config import ConfigError, parse_config
from speechrl.data.manifest import read_manifest
from speechrl.models import MODELS, adapter_for, build_tiny, forward, load, save
from speechrl.training.data import TokensError, collate, load_job_data
from speechrl.training.rollout import sample

from conftest import tiny_dict

CODEC = {"name": "codec2", "options": {"mode": 700, "tokens_per_frame": 4}}


def test_registry_lists_the_architectures():
    assert {"granite_speech", "qwen2_audio", "codec_lm"} <= set(MODELS.names())
    assert MODELS.get("codec_lm").output == "audio" and MODELS.get("granite_speech").output == "text"
    with pytest.raises(KeyError, match="valid: codec_lm, granite_speech"):
        MODELS.get("granite")


# ------------------------------------------------------------------------------------ codec_lm
@pytest.fixture(scope="module")
def codec():
    from speechrl.audio.codecs import load_codec

    return load_codec(CODEC["name"], **CODEC["options"])


@pytest.fixture(scope="module")
def se_data(tiny_data, tmp_path_factory, codec) -> tuple[Path, Path]:
    """A tiny SE set from the synthetic spoken clips (0.6 s clean, + white noise = noisy) and its codec
    tokens written as the tokenize stage does ({id, input, target} per line, codec.json)."""
    root = tmp_path_factory.mktemp("se")
    data, tokens = root / "data", root / "tokens"
    (data / "wavs").mkdir(parents=True)
    tokens.mkdir()
    (tokens / "codec.json").write_text(json.dumps(codec.info()))
    rng = np.random.default_rng(0)
    for split in ("train", "valid", "test"):
        rows, trows = [], []
        for ex in read_manifest(tiny_data["sqa"] / f"{split}.jsonl"):
            wav, sr = sf.read(ex.audio_path(tiny_data["sqa"]), dtype="float32")
            clean = wav[: int(0.6 * sr)]
            noisy = np.clip(clean + 0.03 * rng.standard_normal(len(clean)).astype(np.float32), -1, 1)
            for kind, x in (("clean", clean), ("noisy", noisy)):
                sf.write(data / "wavs" / f"{ex.id}.{kind}.wav", x, sr, subtype="PCM_16")
            text = ex.extra["transcript"]
            rows.append({"id": ex.id, "audio": f"wavs/{ex.id}.noisy.wav", "prompt": "Enhance the speech.", "references": [text],
                         "task": "se", "language": "en", "split": split,
                         "extra": {"clean_audio": f"wavs/{ex.id}.clean.wav", "transcript": text}})
            trows.append({"id": ex.id, "input": codec.encode(noisy, sr), "target": codec.encode(clean, sr)})
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (tokens / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in trows))
    return data, tokens


def _codec_cfg(tmp_path: Path, on_bad_sample: str = "error", **rl):
    d = tiny_dict(tmp_path / "results")
    d["model"]["arch"] = "codec_lm"
    d["data"]["on_bad_sample"] = on_bad_sample
    d["sft"].update(max_steps=20, lr=1e-2, eval_every=10, warmup_steps=0)
    d["rl"].update({"rewards": {"si_sdr": 1.0}, "max_new_tokens": 24, **rl})
    d["evaluate"].update(metrics=["si_sdr"], max_new_tokens=24)
    return parse_config(d)


@pytest.fixture(scope="module")
def codec_model_dir(se_data, tmp_path_factory, codec) -> Path:
    out = tmp_path_factory.mktemp("codec_lm") / "base"
    cfg = _codec_cfg(out.parent)
    texts = [t for ex in read_manifest(se_data[0] / "train.jsonl") for t in (ex.prompt, *ex.references)]
    model, proc = build_tiny(cfg, texts, codec.info())
    save(model, proc, out)
    return out


def test_codec_lm_reloads_with_the_same_logits_and_layout(codec_model_dir, se_data, tmp_path):
    model, proc = load(codec_model_dir)
    assert type(model).__name__ == "LlamaForCausalLM" and adapter_for(model).arch == "codec_lm"
    assert json.loads((codec_model_dir / "codec.json").read_text())["vocab_size"] == proc.vocab_size == 512
    cfg = _codec_cfg(tmp_path)
    train = load_job_data(se_data[0], ("train",), proc, cfg, tokens_dir=se_data[1])[0]["train"][:2]
    s = train[0]
    assert s.input_audio == str((se_data[0] / "wavs" / f"{s.example.id}.noisy.wav").absolute())
    assert s.example.extra["clean_audio"] == str(se_data[0] / "wavs" / f"{s.example.id}.clean.wav")
    batch = collate(proc, train, with_answers=True)
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0]
    tok = proc.tokenizer
    start, end = ids.index(tok.convert_tokens_to_ids("<|in|>")), ids.index(tok.convert_tokens_to_ids("<|/in|>"))
    assert [i - proc.offset for i in ids[start + 1:end]] == s.features.tolist()  # the noisy input's codec ids
    assert ids[end + 1] == proc.sep_id
    assert labels[labels != -100].tolist() == [proc.offset + c for c in s.target] + [tok.eos_token_id]
    again, _ = load(codec_model_dir)
    with torch.no_grad():
        assert torch.equal(forward(model, batch), forward(again, batch))
        direct = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       position_ids=batch["position_ids"]).logits
        assert torch.allclose(direct, forward(model, batch), atol=1e-6)
    r = sample(model.eval(), proc, train, 2, max_new_tokens=8)
    assert r.completion_ids.shape[0] == 4 and r.texts == [""] * 4


def test_codec_lm_lora_targets_its_decoder_and_merges(codec_model_dir, se_data, tmp_path):
    """model.lora.target_modules names 'language_model'; a codec LM is all language model (model.layers.*)."""
    from speechrl.models import apply_lora, count_params

    cfg = _codec_cfg(tmp_path)
    model, proc = load(codec_model_dir)
    lora = apply_lora(model, cfg.model.lora)
    n = count_params(lora)
    assert 0 < n["trainable"] < n["total"]
    assert all("lora_" in k and ".layers." in k for k, p in lora.named_parameters() if p.requires_grad)
    for k, p in lora.named_parameters():
        if "lora_B" in k:
            torch.nn.init.normal_(p, std=0.5)
    batch = collate(proc, load_job_data(se_data[0], ("valid",), proc, cfg, tokens_dir=se_data[1])[0]["valid"], with_answers=False)
    with torch.no_grad():
        adapted = forward(lora, batch)
    save(lora, proc, tmp_path / "merged")
    merged, _ = load(tmp_path / "merged")
    with torch.no_grad():
        assert torch.allclose(forward(merged, batch), adapted, atol=1e-4)


def test_codec_lm_drops_and_counts_invalid_ids(codec_model_dir, codec):
    _, proc = load(codec_model_dir)
    wav = (0.3 * np.sin(np.arange(8000) * 2 * np.pi * 220 / 16000)).astype(np.float32)
    codes = codec.encode(wav, 16000)[:8]  # two whole frames
    text_id = proc.tokenizer.convert_tokens_to_ids("<|sep|>")
    ids = proc.codec_tokens(codes[:3]) + [text_id, 7] + proc.codec_tokens(codes[3:]) + [proc.tokenizer.eos_token_id, 9, 9]
    assert proc.codec_ids(ids) == (codes, 2)  # two non-codec ids dropped, nothing after eos read
    out, n_invalid = proc.decode_audio(ids)
    assert out is not None and out.dtype == np.float32 and len(out) > 0 and n_invalid == 2
    # a frame out of order: the codec drops the ids that do not fit its layout and counts them
    _, n_bad = proc.decode_audio(proc.codec_tokens([codes[1], *codes]))
    assert n_bad >= 1
    assert proc.decode_audio([text_id, 7]) == (None, 2)  # nothing decodable


def test_codec_lm_data_needs_its_tokens(codec_model_dir, se_data, tmp_path):
    _, proc = load(codec_model_dir)
    cfg = _codec_cfg(tmp_path)
    with pytest.raises(TokensError, match="run the tokenize stage"):
        load_job_data(se_data[0], ("train",), proc, cfg)
    partial = tmp_path / "tokens"
    partial.mkdir()
    lines = (se_data[1] / "train.jsonl").read_text().splitlines()
    (partial / "train.jsonl").write_text("\n".join(lines[1:]) + "\n")
    missing = json.loads(lines[0])["id"]
    with pytest.raises(TokensError, match=rf"id={missing} at .*train.jsonl:1: no codec tokens for this id in {partial}"):
        load_job_data(se_data[0], ("train",), proc, cfg, tokens_dir=partial)
    data, skipped = load_job_data(se_data[0], ("train",), proc, _codec_cfg(tmp_path, "skip"), tokens_dir=partial)
    assert [b["id"] for b in skipped] == [missing] and len(data["train"]) == len(lines) - 1
    other = dict(json.loads((se_data[1] / "codec.json").read_text()), options={"mode": 1300, "tokens_per_frame": 4})
    (partial / "codec.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="tokenize with the model's codec"):
        load_job_data(se_data[0], ("train",), proc, cfg, tokens_dir=partial)


def test_codec_lm_sft_gspo_step_and_evaluation(codec_model_dir, se_data, tmp_path, monkeypatch):
    """SFT, then one GSPO step scored by SI-SDR of the decoded audio vs the clean speech (the real
    rl_step: decode -> wav files -> reward columns), then evaluation writing audio outputs."""
    from speechrl.evaluation.evaluate import evaluate
    from speechrl.rewards import REWARDS
    from speechrl.training.rl import make_run, rl_step
    from speechrl.training.sft import train_sft

    if "si_sdr" not in REWARDS:
        pytest.skip("the si_sdr scorer is not registered")
    monkeypatch.setenv("SPEECHRL_AUDIO_WORKERS", "0")
    cfg = _codec_cfg(tmp_path)
    model, proc = load(codec_model_dir)
    data = load_job_data(se_data[0], ("train", "valid", "test"), proc, cfg, tokens_dir=se_data[1])[0]
    summary = train_sft(cfg, model, proc, data["train"], data["valid"], tmp_path / "sft")
    assert summary["best_valid_loss"] < math.log(len(proc.tokenizer))  # learnt something over uniform
    policy, proc = load(tmp_path / "sft")
    before = [p.detach().clone() for p in policy.parameters()]
    run = make_run(cfg, resolve("gspo", cfg.rl), policy, proc, data["train"], audio_dir=tmp_path / "rollout_audio")
    run.step = 1
    m = rl_step(run)
    n_rows = cfg.rl.prompts_per_step * cfg.rl.group_size
    wavs = sorted((tmp_path / "rollout_audio" / "step-1").glob("*.wav"))
    assert len(wavs) == n_rows - m["decode/failed"] and len(wavs) > 0
    assert math.isfinite(m["reward/si_sdr"]) and m["reward/failed"] == 0  # undecodable rows: reward 0, not NaN
    assert m["decode/invalid_tokens"] >= 0
    for k in ("time/generate_s", "time/decode_s", "time/score_s", "time/update_s"):
        assert m[k] >= 0, k
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))
    run.step = 2
    rl_step(run)
    assert [p.name for p in (tmp_path / "rollout_audio").iterdir()] == ["step-2"]  # only the last step's audio

    out = tmp_path / "eval"
    result, rows = evaluate(cfg, policy, proc, data["test"], out_dir=out)
    assert set(result["decode"]) == set(cfg.evaluate.decodings)
    row, s = rows[0], data["test"][0]
    assert row["inputs"] == {"audio": s.input_audio, "clean_audio": s.example.extra["clean_audio"]}
    for mode in cfg.evaluate.decodings:
        rel = row["outputs"][mode]
        if rel is not None:
            assert rel == f"audio/{s.example.id}.{mode}.wav" and sf.info(str(out / rel)).samplerate == 16000
        assert all(math.isfinite(v) for v in result["decodings"][mode].values()) or result["decode"][mode]["decode/failed"] == len(rows)


def test_an_output_with_no_audio_gets_the_lowest_reward(codec_model_dir, se_data, tmp_path, monkeypatch):
    """A row that decodes to nothing scores UNDECODABLE_REWARD (0), not NaN (which would take its group's mean)."""
    from speechrl.rewards import REWARDS
    from speechrl.training.rl import UNDECODABLE_REWARD, collect, make_run, score

    if "si_sdr" not in REWARDS:
        pytest.skip("the si_sdr scorer is not registered")
    monkeypatch.setenv("SPEECHRL_AUDIO_WORKERS", "0")
    cfg = _codec_cfg(tmp_path)
    policy, proc = load(codec_model_dir)
    train = load_job_data(se_data[0], ("train",), proc, cfg, tokens_dir=se_data[1])[0]["train"]
    run = make_run(cfg, resolve("gspo", cfg.rl), policy, proc, train, audio_dir=tmp_path / "a")
    run.step = 1
    b, _ = collect(run)
    n = b.rollout.completion_ids.shape[0]
    clean = [s.example.extra["clean_audio"] for s in b.rollout.samples for _ in range(b.group_size)]
    scored, _ = score(run, b.rollout, audio=[None] + clean[1:])
    assert scored.rewards[0].item() == UNDECODABLE_REWARD == 0.0
    assert bool(torch.isfinite(scored.rewards).all()) and scored.rewards[1:].min() > 0.5 and n > 1  # clean vs clean


def test_scoring_overlap_does_not_change_the_batch(codec_model_dir, se_data, tmp_path, monkeypatch):
    """Generating in chunks while the previous chunk is decoded and scored (RLRun.overlap) gives the same
    completions, rewards and update as one chunk (sampling is keyed per completion)."""
    from speechrl.rewards import REWARDS
    from speechrl.training.rl import collect, make_run, rl_step

    if "si_sdr" not in REWARDS:
        pytest.skip("the si_sdr scorer is not registered")
    monkeypatch.setenv("SPEECHRL_AUDIO_WORKERS", "0")
    cfg = _codec_cfg(tmp_path, prompts_per_step=4)
    runs, batches = [], []
    for overlap in (1, 3):
        policy, proc = load(codec_model_dir)
        train = load_job_data(se_data[0], ("train",), proc, cfg, tokens_dir=se_data[1])[0]["train"]
        run = make_run(cfg, resolve("gspo", cfg.rl), policy, proc, train, audio_dir=tmp_path / f"a{overlap}", overlap=overlap)
        run.step = 1
        b, m = collect(run)
        batches.append(b)
        runs.append(run)
        assert m["time/score_wait_s"] >= 0 and (overlap == 1) == (m["time/score_wait_s"] == 0)
    one, three = batches
    width = one.rollout.completion_ids.shape[1]
    assert torch.equal(one.rollout.completion_ids * one.mask, (three.rollout.completion_ids * three.mask)[:, :width])
    assert torch.allclose(one.rewards, three.rewards, equal_nan=True)
    assert sorted(p.name for p in (tmp_path / "a3" / "step-1").glob("*-c2-*.wav"))  # the third chunk's audio
    assert [s.example.id for s in one.rollout.samples] == [s.example.id for s in three.rollout.samples]
    m1, m3 = (rl_step(r) for r in runs)  # the next step, from the same weights: same update
    assert m1["reward/mean"] == m3["reward/mean"] or (math.isnan(m1["reward/mean"]) and math.isnan(m3["reward/mean"]))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(runs[0].policy.parameters(), runs[1].policy.parameters()))


# ------------------------------------------------------------------------------------ qwen2_audio
@pytest.fixture(scope="module")
def qwen_model_dir(tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qwen2_audio") / "base"
    d = tiny_dict(out.parent / "results")
    d["model"]["arch"] = "qwen2_audio"
    texts = [t for ex in read_manifest(tiny_data["sqa"] / "train.jsonl") for t in (ex.prompt, *ex.references)]
    model, proc = build_tiny(parse_config(d, registries=False), texts)
    save(model, proc, out)
    return out


def test_qwen2_audio_reloads_and_matches_the_transformers_path(qwen_model_dir, tiny_data):
    from speechrl.models.qwen_audio import output_tokens
    from speechrl.training.data import load_split

    model, proc = load(qwen_model_dir)
    assert type(model).__name__ == "Qwen2AudioForConditionalGeneration" and adapter_for(model).arch == "qwen2_audio"
    assert (qwen_model_dir / "preprocessor_config.json").exists() and proc.frames == 3000
    assert [output_tokens(n) for n in (1, 4, 5, 7, 100, 3000)] == [0, 1, 1, 2, 25, 750]
    train = load_split(tiny_data["sqa"], "train", proc)[:3]
    batch = collate(proc, train, with_answers=True)
    again, _ = load(qwen_model_dir)
    # the Whisper extractor's own padded features, through transformers' merge path
    wavs = [sf.read(s.input_audio, dtype="float32")[0] for s in train]
    full = proc.feature_extractor(wavs, sampling_rate=16000, padding="max_length", return_attention_mask=True, return_tensors="pt")
    assert torch.equal(full["input_features"], batch["input_features"])
    with torch.no_grad():
        ours = forward(model, batch)
        assert torch.equal(ours, forward(again, batch))
        theirs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       input_features=full["input_features"], feature_attention_mask=full["attention_mask"]).logits
        assert torch.allclose(ours, theirs, atol=1e-5)
        alone = forward(model, collate(proc, train[1:2], with_answers=False))[0]
        paired = forward(model, collate(proc, train[:2], with_answers=False))[1]
        assert torch.allclose(alone, paired[-alone.shape[0]:], atol=1e-5)  # independent of batch-mates
    assert all(int((batch["input_ids"][i] == proc.audio_id).sum()) == s.n_audio for i, s in enumerate(train))
    r = sample(model.eval(), proc, train, 2, max_new_tokens=5)
    assert r.completion_ids.shape[0] == 6 and len(r.texts) == 6


def test_qwen2_audio_sft_then_grpo(qwen_model_dir, tiny_data, tiny_cfg, tmp_path):
    """The SFT and RL loops run unchanged on the second model family (SFT, then 2 GRPO steps)."""
    from speechrl.training.data import load_split
    from speechrl.training.rl import train_rl
    from speechrl.training.sft import train_sft

    model, proc = load(qwen_model_dir)
    train, valid = (load_split(tiny_data["sqa"], s, proc) for s in ("train", "valid"))
    s = train_sft(tiny_cfg, model, proc, train, valid, tmp_path / "sft")
    assert math.isfinite(s["best_valid_loss"]) and (tmp_path / "sft" / "preprocessor_config.json").exists()
    policy, proc = load(tmp_path / "sft")
    before = [p.detach().clone() for p in policy.parameters()]
    tiny_cfg.rl.rewards, tiny_cfg.rl.lr = {"chrf": 1.0}, 1e-2
    out = train_rl(tiny_cfg, resolve("grpo", tiny_cfg.rl), policy, proc, train, tmp_path / "rl")
    assert len(out["history"]) == 2 and all(math.isfinite(h["reward/mean"]) for h in out["history"])
    after, _ = load(tmp_path / "rl")
    assert type(after).__name__ == "Qwen2AudioForConditionalGeneration"
    assert any(not torch.equal(a, b) for a, b in zip(before, after.parameters()))


def test_a_released_codec_lm_gets_its_codec_and_the_layout_markers(se_data, codec, tmp_path):
    """A released codec LM (Llasa style: '<|s_N|>' tokens, no pad / <|sep|> / <|in|>, no codec.json) loads with the
    tokenize stage's codec description, gains the markers (new embedding rows), and saves as a complete checkpoint."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from speechrl.models import load_pretrained
    from speechrl.training.data import collate

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(["Enhance the speech.", "a duck likes the warm water"],
                            trainers.BpeTrainer(vocab_size=300, special_tokens=["<|end|>"], show_progress=False,
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|end|>")
    tok.add_tokens([f"<|s_{i}|>" for i in range(codec.vocab_size)])
    release = tmp_path / "released"
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2, eos_token_id=tok.eos_token_id)).save_pretrained(release)
    tok.save_pretrained(release)
    with pytest.raises(ConfigError, match="codec.json not found"):
        load_pretrained(str(release))
    model, proc = load_pretrained(str(release), codec=codec.info())
    assert proc.token_format == "<|s_{}|>" and proc.tokenizer.pad_token is not None
    assert model.get_input_embeddings().num_embeddings == len(proc.tokenizer) == len(tok) + 4  # pad, sep, in, /in
    samples = load_job_data(se_data[0], ("train",), proc, _codec_cfg(tmp_path), tokens_dir=se_data[1])[0]["train"][:2]
    batch = collate(proc, samples, with_answers=True)
    assert model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.shape[-1] == len(proc.tokenizer)
    save(model, proc, tmp_path / "saved")
    again, proc2 = load(tmp_path / "saved")  # codec.json now in the folder
    assert proc2.codec_info == codec.info() and len(proc2.tokenizer) == len(proc.tokenizer)
