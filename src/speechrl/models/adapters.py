"""The model-adapter protocol and its registry ``MODELS`` (keyed by the config's ``model.arch``).

One :class:`ModelAdapter` per model family says how to build a tiny random-init model from config,
load a checkpoint, and make the input embeddings of a collated batch (audio placeholders filled).
Everything else (SFT, rollouts, RL, evaluation) goes through :mod:`speechrl.models.build`, which
dispatches on the model itself (:func:`adapter_for`) or on a checkpoint's ``config.json``
(:func:`adapter_for_type`), so nothing outside ``speechrl.models`` names a transformers class.

Entries (registered by their modules, imported by :mod:`speechrl.models.build`):

* ``granite_speech`` (:mod:`speechrl.models.granite`): Granite Speech, text output;
* ``qwen2_audio`` (:mod:`speechrl.models.qwen_audio`): Qwen2-Audio, text output (LEAF's second
  family, Gerogiannis et al. 2026);
* ``codec_lm`` (:mod:`speechrl.models.codec_lm`): a decoder-only LM over text + audio-codec tokens,
  audio output (Llasa, Ye et al. 2025, arXiv 2502.04128).

Processors (one per family) share one duck-typed surface the loops use: ``tokenizer``, ``output``
("text" | "audio"), ``needs_tokens``, ``encode_example``, ``collate``, ``reference_ids``,
``reference_text``, ``decode_texts``, ``decode_audio`` (audio outputs) and ``save_pretrained``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from speechrl.registry import Registry

OUTPUT_KINDS = ("text", "audio")


@dataclass(frozen=True)
class ModelAdapter:
    """One model family.

    * ``arch``: the ``model.arch`` name; ``output``: "text" or "audio";
    * ``model_types``: the transformers ``config.model_type`` values this adapter loads;
    * ``build_tiny(cfg, texts, codec) -> (model, processor)``: random init from ``model.tiny``
      (``codec``: the codec description, ``codec.json`` of the tokenize stage, for audio outputs);
    * ``load(path, device) -> (model, processor)``: ``from_pretrained`` exactly as a real checkpoint;
    * ``embeds(model, batch) -> (B, T, D)``: input embeddings of a collated batch;
    * ``lora_targets(regex) -> regex``: the LoRA target regex for this family (default: unchanged).
    """

    arch: str
    output: str
    model_types: tuple[str, ...]
    build_tiny: Callable[..., tuple[torch.nn.Module, Any]]
    load: Callable[[str | Path, str], tuple[torch.nn.Module, Any]]
    embeds: Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor]
    lora_targets: Callable[[str], str] = lambda regex: regex

    def __post_init__(self) -> None:
        if self.output not in OUTPUT_KINDS:
            raise ValueError(f"model adapter '{self.arch}': output {self.output!r}; valid: {', '.join(OUTPUT_KINDS)}")


MODELS: Registry[ModelAdapter] = Registry("model architecture")


def register_adapter(adapter: ModelAdapter) -> ModelAdapter:
    """Add ``adapter`` to :data:`MODELS` under its ``arch``."""
    return MODELS.register(adapter.arch)(adapter)


def core(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model under an optional peft wrapper."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def adapter_for_type(model_type: str, where: str = "") -> ModelAdapter:
    """The adapter whose ``model_types`` holds ``model_type`` (a transformers ``config.model_type``)."""
    for name in MODELS:
        a = MODELS.get(name)
        if model_type in a.model_types:
            return a
    known = ", ".join(f"{t} ({n})" for n in MODELS for t in MODELS.get(n).model_types)
    raise ValueError(f"{where or 'model'}: model_type {model_type!r} has no model adapter; known: {known}")


def adapter_for(model: torch.nn.Module) -> ModelAdapter:
    """The adapter of a live model (peft-wrapped too), from its config's ``model_type``."""
    return adapter_for_type(core(model).config.model_type, type(core(model)).__name__)


def checkpoint_adapter(path: str | Path) -> ModelAdapter:
    """The adapter of a checkpoint folder (its ``config.json``) or hub id (through the local HF cache)."""
    p = Path(path)
    if p.is_dir() and (p / "config.json").exists():
        raw = json.loads((p / "config.json").read_text())
    else:
        from transformers import AutoConfig

        raw = AutoConfig.from_pretrained(str(path)).to_dict()
    return adapter_for_type(str(raw.get("model_type")), f"{path}/config.json")
