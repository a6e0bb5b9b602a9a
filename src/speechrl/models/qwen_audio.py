"""``qwen2_audio``: Qwen2-Audio (Whisper-style encoder -> linear projector -> Qwen2 decoder), text output.

Qwen2-Audio (Chu et al. 2024, arXiv 2407.10759) is LEAF's second model family (Gerogiannis et al.
2026). A tiny model is built from ``model.tiny`` (hidden_size, num_layers, num_heads,
intermediate_size and vocab_size for the Qwen2 decoder; encoder_hidden_size, encoder_layers and
encoder_heads for the audio encoder, whose FFN is 2 x its width; encoder_context and the projector
sizes do not apply) and from then on loaded with
``Qwen2AudioForConditionalGeneration.from_pretrained(path)`` like ``Qwen/Qwen2-Audio-7B-Instruct``.

Features: Whisper log-mel (``WhisperFeatureExtractor(feature_size=128)``, as Qwen2-Audio's own
processor, saved with the checkpoint), padded to the encoder's fixed window of
``2 x max_source_positions`` frames (1500 positions = 30 s, the real model's). A clip of L mel frames
gives ``((L - 1) // 2 + 1 - 2) // 2 + 1`` audio tokens (the encoder's stride-2 conv, then its
2 x average pool); the processor puts that many placeholders in the prompt (the layout of
:mod:`speechrl.models.processor`).

Storage: a sample keeps its clip's frames plus a few beyond it (the window's frames past L are
silence: Whisper pads the waveform with zeros), as a ``(rows, 129)`` tensor, time first: 128 mel
bins and a last column that is 1 on the clip's L frames. Collation pads each clip to the window by
repeating its last (silent) frame, which reproduces the extractor's padded output exactly; this
keeps ~1.5 MB of padding per sample out of memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer, Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, WhisperFeatureExtractor
from transformers.masking_utils import create_bidirectional_mask

from speechrl.audio.io import AudioError
from speechrl.config import Config
from speechrl.models.adapters import ModelAdapter, core, register_adapter
from speechrl.models.processor import SpeechProcessor
from speechrl.models.tokenizer import AUDIO, train_tokenizer

Model = Qwen2AudioForConditionalGeneration
N_MELS = 128
SOURCE_POSITIONS = 1500  # encoder positions: a 30 s window of 3000 mel frames (10 ms hop)
EXTRA_FRAMES = 4  # frames kept past the clip: the boundary frames the stride-2 convolutions still read


def output_tokens(frames: int) -> int:
    """Audio tokens of a clip of ``frames`` mel frames (conv stride 2, then average pool 2)."""
    return ((frames - 1) // 2 + 1 - 2) // 2 + 1 if frames > 0 else 0


def extractor(positions: int = SOURCE_POSITIONS) -> WhisperFeatureExtractor:
    return WhisperFeatureExtractor(feature_size=N_MELS, chunk_length=2 * positions // 100, return_attention_mask=True)


@dataclass
class QwenAudioProcessor(SpeechProcessor):
    """:class:`SpeechProcessor`'s prompt layout with Whisper features (``window`` / ``downsample`` unused)."""

    feature_extractor: WhisperFeatureExtractor = field(default_factory=extractor)

    @property
    def frames(self) -> int:
        """The encoder's fixed input length in mel frames."""
        return int(self.feature_extractor.nb_max_frames)

    def features(self, wav: np.ndarray) -> tuple[torch.Tensor, int]:
        """(rows, 129) clip frames + silence frames, flag column; and the clip's audio tokens (see the module docstring)."""
        out = self.feature_extractor(wav, sampling_rate=self.feature_extractor.sampling_rate, padding="max_length",
                                     return_attention_mask=True, return_tensors="np")
        frames = int(out["attention_mask"][0].sum())
        if frames > self.frames:
            raise AudioError(f"clip of {frames} mel frames is longer than the encoder's window of {self.frames}")
        rows = min(self.frames, frames + EXTRA_FRAMES)
        mel = torch.from_numpy(out["input_features"][0, :, :rows].T.copy())
        flag = (torch.arange(rows) < frames).float().unsqueeze(1)
        n = output_tokens(frames)
        if n < 2:
            raise AudioError(f"clip too short for Qwen2-Audio: {frames} mel frames give {n} audio token(s), at least 2 are needed")
        return torch.cat([mel, flag], dim=1), n

    def pad_features(self, feats: list[torch.Tensor], n_audio: list[int]) -> dict[str, torch.Tensor]:
        """input_features (B, 128, window), feature_attention_mask (B, window), feature_lengths (B,) mel frames."""
        B, T = len(feats), self.frames
        x = torch.zeros((B, N_MELS, T))
        mask = torch.zeros((B, T), dtype=torch.long)
        for i, f in enumerate(feats):
            if f.shape[0] == 0:  # a text-only prompt
                continue
            x[i, :, : f.shape[0]] = f[:, :N_MELS].T
            x[i, :, f.shape[0]:] = f[-1, :N_MELS].unsqueeze(1)
            mask[i, : int(f[:, N_MELS].sum())] = 1
        return {"input_features": x, "feature_attention_mask": mask, "feature_lengths": mask.sum(-1)}

    def save_pretrained(self, folder: Path) -> None:
        self.tokenizer.save_pretrained(folder)
        self.feature_extractor.save_pretrained(folder)


def build_tiny(cfg: Config, texts: list[str], codec: dict[str, Any] | None = None) -> tuple[Model, QwenAudioProcessor]:
    """Random-init tiny Qwen2-Audio + tokenizer trained on ``texts``; seeded by ``cfg.seed`` (``codec`` unused)."""
    t = cfg.model.tiny
    tok = train_tokenizer(texts, t.vocab_size)
    text = dict(model_type="qwen2", vocab_size=len(tok), hidden_size=t.hidden_size, intermediate_size=t.intermediate_size,
                num_hidden_layers=t.num_layers, num_attention_heads=t.num_heads, num_key_value_heads=t.num_heads,
                max_position_embeddings=4096, pad_token_id=tok.pad_token_id, bos_token_id=tok.eos_token_id,
                eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    audio = dict(model_type="qwen2_audio_encoder", num_mel_bins=N_MELS, encoder_layers=t.encoder_layers,
                 encoder_attention_heads=t.encoder_heads, encoder_ffn_dim=2 * t.encoder_hidden_size,
                 d_model=t.encoder_hidden_size, max_source_positions=SOURCE_POSITIONS)
    mcfg = Qwen2AudioConfig(audio_config=audio, text_config=text, audio_token_index=tok.convert_tokens_to_ids(AUDIO))
    torch.manual_seed(cfg.seed)
    model = Model(mcfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model, QwenAudioProcessor(tok, 0, 0, AUDIO, extractor(SOURCE_POSITIONS))


def load(path: str | Path, device: str = "cpu") -> tuple[Model, QwenAudioProcessor]:
    model = Model.from_pretrained(str(path), dtype=torch.float32).to(device)
    tok = AutoTokenizer.from_pretrained(str(path))
    tok.padding_side = "left"
    positions = model.config.audio_config.max_source_positions
    p = Path(path)
    fe = WhisperFeatureExtractor.from_pretrained(str(path)) if (p / "preprocessor_config.json").exists() or not p.exists() \
        else extractor(positions)
    token = tok.convert_ids_to_tokens(model.config.audio_token_id)
    return model, QwenAudioProcessor(tok, 0, 0, token, fe)


def embeds(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, T, D) input embeddings with each clip's projected encoder outputs in its audio placeholders.

    As transformers' own path (padded window, padding masked in the encoder's attention), run only on
    the rows that have audio; a clip's encoding does not depend on its batch-mates (fixed window)."""
    inner = core(model).model
    ids = batch["input_ids"]
    is_audio = ids == inner.config.audio_token_id
    emb = inner.get_input_embeddings()(torch.where(is_audio, torch.zeros_like(ids), ids))
    lengths = batch["feature_lengths"]
    rows = (lengths > 0).nonzero().flatten()
    if len(rows):
        tower = inner.audio_tower
        feats = batch["input_features"][rows].to(tower.conv1.weight.dtype)
        conv_len, out_len = tower._get_feat_extract_output_lengths(lengths[rows])
        seq = (feats.shape[-1] - 2) // 2 + 1
        att2d = (torch.arange(seq, device=feats.device)[None, :] < conv_len[:, None]).long()
        dummy = torch.zeros((len(rows), seq, 1), dtype=emb.dtype, device=emb.device)
        mask = create_bidirectional_mask(config=tower.config, inputs_embeds=dummy, attention_mask=att2d)
        audio = inner.multi_modal_projector(tower(feats, attention_mask=mask).last_hidden_state)
        keep = torch.arange(audio.shape[1], device=audio.device)[None, :] < out_len[:, None]
        audio = audio[keep].to(emb.dtype)
        if audio.shape[0] != int(is_audio.sum()):
            raise ValueError(f"audio placeholders ({int(is_audio.sum())}) do not match encoder outputs ({audio.shape[0]})")
        emb = emb.masked_scatter(is_audio.unsqueeze(-1).expand_as(emb), audio)
    return emb


ADAPTER = register_adapter(ModelAdapter("qwen2_audio", "text", ("qwen2_audio",), build_tiny, load, embeds))
