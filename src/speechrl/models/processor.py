"""Turns (audio, prompt[, answer]) into model inputs: the prompt layout and batching in one place.

Sequence layout (left-padded, so decoding and training share it)::

    <|pad|>* <|audio|>*k  prompt-tokens  <|sep|>  answer-tokens <|eos|>
             \\_ k = num_audio_tokens(clip) _/    \\_ labels (training only) _/

A tokenizer with a chat template (a real checkpoint such as Granite Speech 3.3) gets its own layout
instead: the template applied to one user turn whose content is ``<|audio|>`` x k followed by the
prompt, with the generation prompt (the assistant header) appended; the answer follows, ended by
the tokenizer's eos. This is what ``GraniteSpeechProcessor`` builds after expanding its single
audio placeholder to k tokens.

``input_features`` (B, F_max, 160) holds each clip's stacked log-mel, zero-padded, ``feature_lengths`` (B,)
its true frame count (0 for a text-only prompt); ``input_features_mask`` (B, k_max) marks the projector
outputs that belong to each clip (as GraniteSpeechProcessor). ``model_inputs`` drops ``feature_lengths``
for a plain ``model(**batch)`` call; :func:`speechrl.models.build.merged_embeds` uses it to encode every
clip unpadded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from speechrl.audio.features import FEATURE_DIM, log_mel, num_audio_tokens
from speechrl.models.tokenizer import AUDIO, SEP

IGNORE = -100


@dataclass
class SpeechProcessor:
    """Granite Speech's processor (text output); the duck-typed processor surface is listed in
    :mod:`speechrl.models.adapters`."""

    tokenizer: PreTrainedTokenizerBase
    window: int
    downsample: int
    audio_token: str = AUDIO  # the placeholder the encoder's outputs replace
    output = "text"
    needs_tokens = False  # audio features come from the wav, no codec tokens

    @property
    def audio_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(self.audio_token)

    @property
    def sep_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(SEP)

    @property
    def chat(self) -> bool:
        """True when the tokenizer brings a chat template (real checkpoints); False for the tiny layout."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    def prompt_ids(self, prompt: str, n_audio: int) -> list[int]:
        if self.chat:
            content = self.audio_token * n_audio + prompt
            ids = self.tokenizer.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                                     tokenize=True)
            ids = list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
            if ids.count(self.audio_id) != n_audio:
                raise ValueError(f"the chat template of this tokenizer produced {ids.count(self.audio_id)} audio tokens for {n_audio}; "
                                 f"is '{self.audio_token}' a special token of the tokenizer?")
            return ids
        return [self.audio_id] * n_audio + self.tokenizer.encode(prompt, add_special_tokens=False) + [self.sep_id]

    def target_ids(self, answer: str) -> list[int]:
        return self.tokenizer.encode(answer, add_special_tokens=False) + [self.tokenizer.eos_token_id]

    def features(self, wav: np.ndarray) -> tuple[torch.Tensor, int]:
        return log_mel(wav), num_audio_tokens(len(wav), self.window, self.downsample)

    def pad_features(self, feats: list[torch.Tensor], n_audio: list[int]) -> dict[str, torch.Tensor]:
        return pad_features(feats, n_audio)

    def encode_example(self, ex: Any, load_wav: Callable[[], np.ndarray], tokens: dict[str, Any] | None = None,
                       where: str = "") -> tuple[torch.Tensor, int, list[int] | None]:
        """(features, audio placeholders, target ids or None) of one manifest example; ``tokens`` unused."""
        feats, n = self.features(load_wav())
        return feats, n, None

    def collate(self, samples: Sequence[Any], with_answers: bool) -> dict[str, torch.Tensor]:
        """:meth:`batch` of ``samples`` (``training.data.Sample``); labels = each first reference."""
        return self.batch([s.features for s in samples], [s.n_audio for s in samples], [s.example.prompt for s in samples],
                          [s.example.references[0] for s in samples] if with_answers else None)

    def reference_ids(self, s: Any) -> list[int]:
        """The ground-truth completion of a sample (first reference + eos), e.g. MP-GRPO's off-policy row."""
        return self.target_ids(s.example.references[0])

    def reference_text(self, s: Any) -> str:
        return s.example.references[0]

    def decode_texts(self, ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
        """(N, C) completion ids and mask -> N stripped strings (special tokens dropped)."""
        pad = self.tokenizer.pad_token_id
        return [t.strip() for t in self.tokenizer.batch_decode(ids * mask + pad * (1 - mask), skip_special_tokens=True)]

    def save_pretrained(self, folder: Path) -> None:
        self.tokenizer.save_pretrained(folder)

    def batch(self, feats: list[torch.Tensor], n_audio: list[int], prompts: list[str],
              answers: list[str] | None = None) -> dict[str, torch.Tensor]:
        """Collate B examples. With ``answers``, ``labels`` cover answer + eos only.

        Returns input_ids / attention_mask / position_ids (B, T), labels (B, T) if answers,
        input_features (B, F_max, 160), input_features_mask (B, k_max).
        """
        seqs, labs = [], []
        for i, prompt in enumerate(prompts):
            p = self.prompt_ids(prompt, n_audio[i])
            t = self.target_ids(answers[i]) if answers is not None else []
            seqs.append(p + t)
            labs.append([IGNORE] * len(p) + t)
        T = max(map(len, seqs))
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(seqs), T), pad, dtype=torch.long)
        att = torch.zeros((len(seqs), T), dtype=torch.long)
        labels = torch.full((len(seqs), T), IGNORE, dtype=torch.long)
        for i, (s, lab) in enumerate(zip(seqs, labs)):
            ids[i, T - len(s):] = torch.tensor(s)
            att[i, T - len(s):] = 1
            labels[i, T - len(s):] = torch.tensor(lab)
        out = {"input_ids": ids, "attention_mask": att, "position_ids": (att.cumsum(-1) - 1).clamp(min=0)}
        out.update(self.pad_features(feats, n_audio))
        if answers is not None:
            out["labels"] = labels
        return out


def pad_features(feats: list[torch.Tensor], n_audio: list[int]) -> dict[str, torch.Tensor]:
    F = max(f.shape[0] for f in feats)
    x = torch.zeros((len(feats), F, FEATURE_DIM))
    for i, f in enumerate(feats):
        x[i, : f.shape[0]] = f
    k = torch.tensor(n_audio)
    return {"input_features": x, "feature_lengths": torch.tensor([f.shape[0] for f in feats]),
            "input_features_mask": torch.arange(int(k.max())).view(1, -1) < k.view(-1, 1)}


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keys ``GraniteSpeechForConditionalGeneration.forward`` takes."""
    return {k: v for k, v in batch.items() if k not in ("feature_lengths", "labels")}
