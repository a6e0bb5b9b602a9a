"""``granite_speech``: Granite Speech (conformer encoder -> Q-Former window projector -> Granite decoder).

A tiny model is created from ``model.tiny`` with random weights, saved with ``save_pretrained`` and
from then on always loaded with ``GraniteSpeechForConditionalGeneration.from_pretrained(path)``
exactly as ``ibm-granite/granite-speech-3.3-2b`` would be. Processor: :class:`SpeechProcessor`
(log-mel features, the prompt layout of :mod:`speechrl.models.processor`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, GraniteSpeechConfig, GraniteSpeechForConditionalGeneration

from speechrl.audio.features import FEATURE_DIM
from speechrl.config import Config, TinyModelConfig
from speechrl.models.adapters import ModelAdapter, core, register_adapter
from speechrl.models.processor import SpeechProcessor
from speechrl.models.tokenizer import AUDIO, train_tokenizer

Model = GraniteSpeechForConditionalGeneration


def tiny_config(t: TinyModelConfig, vocab_size: int, audio_id: int, pad_id: int, eos_id: int) -> GraniteSpeechConfig:
    head_dim = t.hidden_size // t.num_heads
    text = dict(model_type="granite", vocab_size=vocab_size, hidden_size=t.hidden_size,
                intermediate_size=t.intermediate_size, num_hidden_layers=t.num_layers,
                num_attention_heads=t.num_heads, num_key_value_heads=t.num_heads,
                max_position_embeddings=2048, pad_token_id=pad_id, bos_token_id=eos_id, eos_token_id=eos_id,
                attention_multiplier=head_dim**-0.5, tie_word_embeddings=True)
    encoder = dict(input_dim=FEATURE_DIM, num_layers=t.encoder_layers, hidden_dim=t.encoder_hidden_size,
                   num_heads=t.encoder_heads, output_dim=42, context_size=t.encoder_context, max_pos_emb=512,
                   dropout=0.1, conv_kernel_size=15)
    projector = dict(model_type="blip_2_qformer", hidden_size=t.encoder_hidden_size, num_hidden_layers=1,
                     num_attention_heads=t.encoder_heads, intermediate_size=2 * t.encoder_hidden_size,
                     encoder_hidden_size=t.encoder_hidden_size, cross_attention_frequency=1)
    return GraniteSpeechConfig(text_config=text, encoder_config=encoder, projector_config=projector,
                               audio_token_index=audio_id, window_size=t.projector_window,
                               downsample_rate=t.projector_downsample, has_lora_adapter=False,
                               tie_word_embeddings=True)


def build_tiny(cfg: Config, texts: Iterable[str], codec: dict[str, Any] | None = None) -> tuple[Model, SpeechProcessor]:
    """Random-init tiny model + tokenizer trained on ``texts``; seeded by ``cfg.seed`` (``codec`` unused)."""
    t = cfg.model.tiny
    tok = train_tokenizer(texts, t.vocab_size)
    mcfg = tiny_config(t, len(tok), tok.convert_tokens_to_ids(AUDIO), tok.pad_token_id, tok.eos_token_id)
    torch.manual_seed(cfg.seed)
    model = Model(mcfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model, SpeechProcessor(tok, t.projector_window, t.projector_downsample)


def load(path: str | Path, device: str = "cpu") -> tuple[Model, SpeechProcessor]:
    model = Model.from_pretrained(str(path), dtype=torch.float32).to(device)
    tok = AutoTokenizer.from_pretrained(str(path))
    tok.padding_side = "left"
    return model, SpeechProcessor(tok, model.config.window_size, model.config.downsample_rate)


def embeds(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, T, D) input embeddings with each clip's projector outputs in its audio placeholders.

    Each clip is encoded on its own, unpadded (``feature_lengths``): the Granite conformer has no
    padding mask, so in a padded batch a clip's encoding depends on its batch-mates' lengths (as in
    transformers' own batched path). Encoding per clip makes training, rollouts and evaluation
    independent of batch composition, and lets rollouts from different batches be concatenated.
    RL also reuses one prompt's embeddings for its G completions instead of encoding the clip G times.
    Text-only prompts (length 0) have no audio placeholders.
    """
    inner = core(model).model
    ids = batch["input_ids"]
    is_audio = ids == inner.config.audio_token_id
    emb = inner.get_input_embeddings()(torch.where(is_audio, torch.zeros_like(ids), ids))
    feats = batch["input_features"].to(emb.dtype)  # bf16 / fp16 weights under DeepSpeed take features in their dtype
    clips = [
        inner.get_audio_features(feats[i:i + 1, :n], return_dict=True).pooler_output[0]
        for i, n in enumerate(batch["feature_lengths"].tolist()) if n > 0
    ]
    if clips:
        audio = torch.cat(clips).to(emb.dtype)
        if audio.shape[0] != int(is_audio.sum()):
            raise ValueError(f"audio placeholders ({int(is_audio.sum())}) do not match projector outputs ({audio.shape[0]})")
        emb = emb.masked_scatter(is_audio.unsqueeze(-1).expand_as(emb), audio)
    return emb


ADAPTER = register_adapter(ModelAdapter("granite_speech", "text", ("granite_speech",), build_tiny, load, embeds))
