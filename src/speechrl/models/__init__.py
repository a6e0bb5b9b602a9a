"""Speech-aware LMs behind one adapter protocol (registry ``MODELS``, keyed by ``model.arch``).

    from speechrl.models import build_tiny, load, save, apply_lora, embeds, forward

The module-level API lives in :mod:`speechrl.models.build`; the protocol and the registry in
:mod:`speechrl.models.adapters`; one module per family (granite, qwen_audio, codec_lm).
"""

from speechrl.models.adapters import MODELS, ModelAdapter, adapter_for
from speechrl.models.build import (apply_lora, build_tiny, core, count_params, embeds, forward, load, load_pretrained,
                                   output_kind, save)

__all__ = ["MODELS", "ModelAdapter", "adapter_for", "apply_lora", "build_tiny", "core", "count_params", "embeds",
           "forward", "load", "load_pretrained", "output_kind", "save"]
