"""Build, save and load speech-aware LMs through the same ``from_pretrained`` path as real checkpoints.

The module-level API every caller uses; each function dispatches to the model's adapter
(:mod:`speechrl.models.adapters`, registry ``MODELS`` keyed by ``model.arch``): a tiny model is built
from ``model.tiny`` with random weights, saved with ``save_pretrained`` and from then on always loaded
with its class's ``from_pretrained(path)`` exactly as a real checkpoint would be. LoRA adapters
(peft) are merged before saving, so every stage's output folder is a plain checkpoint.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from speechrl.config import Config, LoraConfig
from speechrl.io import atomic_dir
from speechrl.models import codec_lm as _codec_lm, granite as _granite, qwen_audio as _qwen_audio  # noqa: F401,E401  (register the adapters)
from speechrl.models.adapters import MODELS, adapter_for, checkpoint_adapter, core  # noqa: F401  (core re-exported)

log = logging.getLogger("speechrl")
Model = torch.nn.Module  # any adapter's model (annotations only)


def build_tiny(cfg: Config, texts: Iterable[str], codec: dict[str, Any] | None = None) -> tuple[Model, Any]:
    """Random-init tiny model of ``model.arch`` + tokenizer trained on ``texts``; seeded by ``cfg.seed``.

    ``codec``: the codec description (the tokenize stage's ``codec.json``), needed by audio-output
    architectures (``codec_lm``)."""
    return MODELS.get(cfg.model.arch).build_tiny(cfg, list(texts), codec)


def save(model: Model, proc: Any, out: Path) -> None:
    """Write a complete checkpoint folder atomically (LoRA merged into a copy: the live model keeps its adapters)."""
    if hasattr(model, "merge_and_unload"):
        model = copy.deepcopy(model).merge_and_unload()
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        proc.save_pretrained(tmp)


def load(path: str | Path, device: str = "cpu", codec: dict[str, Any] | None = None) -> tuple[Model, Any]:
    """Load a checkpoint folder (or hub id on a cluster) with its processor; the adapter comes from its config.json.
    ``codec``: the codec description for a codec LM checkpoint that has none (a released Llasa / UniSE)."""
    p = Path(path)
    if not p.exists() and not re.fullmatch(r"[\w.-]+/[\w.-]+", str(path)):
        raise FileNotFoundError(f"model checkpoint not found: {path}")
    adapter = checkpoint_adapter(path)
    return adapter.load(path, device, codec=codec) if codec is not None and adapter.output == "audio" else adapter.load(path, device)


def load_pretrained(name: str, device: str = "cpu", codec: dict[str, Any] | None = None) -> tuple[Model, Any]:
    """A real checkpoint (``model.pretrained``: a local folder, or a hub id already in the local HF cache).

    Offline (``HF_HUB_OFFLINE=1``, the CLI default) nothing is downloaded; a missing checkpoint stops
    with the command that fetches it."""
    try:
        return load(name, device, codec)
    except (OSError, FileNotFoundError) as e:
        raise FileNotFoundError(
            f"model.pretrained={name!r} is not available locally ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
            f"Download it on a machine with network: `huggingface-cli download {name} --local-dir /path/{Path(name).name}` "
            "and set model.pretrained to that folder (or pre-fill the Hugging Face cache and keep the hub id)."
        ) from None


def apply_lora(model: Model, lora: LoraConfig) -> Model:
    """Wrap the language model's linear layers with LoRA adapters; freeze the rest."""
    from peft import LoraConfig as PeftLora
    from peft import get_peft_model

    targets = adapter_for(model).lora_targets(lora.target_modules)
    pcfg = PeftLora(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets)
    return get_peft_model(model, pcfg)


def count_params(model: torch.nn.Module) -> dict[str, int]:
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def embeds(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, T, D) input embeddings of a collated batch, audio placeholders filled (the model's adapter)."""
    return adapter_for(model).embeds(model, batch)


merged_embeds = embeds  # the earlier name


def forward(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits (B, T, V) of a collated batch through :func:`embeds`."""
    return model(inputs_embeds=embeds(model, batch), attention_mask=batch["attention_mask"],
                 position_ids=batch["position_ids"]).logits


def output_kind(proc: Any) -> str:
    """"text" or "audio": what the model's completions are."""
    return getattr(proc, "output", "text")
