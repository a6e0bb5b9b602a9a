"""Model-state rewards: rewards computed from the policy's own hidden states or an embedding model during RL.

TARS (Trajectory Alignment for Reasoning in Speech; ACL 2026, arXiv 2601.05543) gives the speech-prompted
completions of a group two dense rewards that pull them towards the text-prompted completions of the same
question:

* ``rep_alignment``: R_rep = 1/L sum_l cos(h_speech^(l), h_text^(l)), h^(l) the hidden states of layer l
  mean-pooled over the completion (:func:`pool_states`);
* ``beh_alignment``: R_beh = cos(E(y_speech), E(y_text*)), E a sentence-embedding model
  (:func:`speechrl.rewards.embedding.encode`: all-MiniLM-L6-v2 offline, ``SPEECHRL_EMBEDDING_MODEL`` on a cluster,
  e.g. the paper's Qwen3-Embedding-0.6B).

They are not scorers of :data:`speechrl.rewards.REWARDS`: their value depends on the policy's states and on
the other rows of the group, so they are never cached by string. Registry ``STATE_REWARDS``:
``fn(batch: StateBatch) -> (rewards (N,) float tensor, metrics)``.

Pairing rule (the paper leaves it open; ours): a speech row pairs with every *correct* text-prompted row of
its question (accuracy reward 1) and averages the cosines over them. When no text row of the question is
correct there is no trajectory to align to: R_rep = 0 (counted, ``state/rep_unpaired``) and R_beh falls back to
the question's reference text (the dataset answer, the paper's y_text*). Text-prompted rows get 0 for both: the
paper optimises the text branch for accuracy only, and with modality-specific advantages a constant per
modality does not change any advantage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from speechrl.registry import Registry

STATE_REWARDS: Registry = Registry("model-state reward")


@dataclass
class StateBatch:
    """What a model-state reward reads, for the N rows of a rollout batch."""

    modality: torch.Tensor
    """(N,) 0 for a speech-prompted row, 1 for a text-prompted one (:func:`speechrl.training.groups.modality`)."""
    question: torch.Tensor
    """(N,) index of the row's question: both halves of a TARS group share it."""
    correct: torch.Tensor
    """(N,) bool: the row's accuracy reward is 1."""
    pooled: torch.Tensor | None = None
    """(N, L, H) hidden states of layers 1..L mean-pooled over the completion (:func:`pool_states`)."""
    texts: Sequence[str] = ()
    """(N,) completion texts."""
    references: Sequence[str] = ()
    """(N,) the reference answer text of each row's question."""
    embed: Callable[[list[str]], torch.Tensor] | None = None
    """texts -> (n, D) L2-normalised sentence embeddings."""


def pool_states(hidden: Sequence[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """Mean over the completion of each layer's hidden states: L + 1 tensors (N, T, H) (the embeddings, then
    layers 1..L, as transformers' ``hidden_states``) and ``mask`` (N, T) -> (N, L, H) for layers 1..L.

    Pooling span: the positions whose states predict the completion tokens (in generation, the last prompt
    position and completion tokens 1..|y|-1), which is where ``mask`` is 1. A row with an empty completion
    pools to 0."""
    if len(hidden) < 2:
        raise ValueError(f"pool_states needs the embeddings and at least one layer, got {len(hidden)} tensor(s)")
    m = mask.to(hidden[1].dtype).unsqueeze(-1)                     # (N, T, 1)
    n = m.sum(1).clamp(min=1.0)                                     # (N, 1)
    return torch.stack([(h * m).sum(1) / n for h in hidden[1:]], dim=1)


def text_partners(b: StateBatch) -> list[list[int]]:
    """For each row: the correct text-prompted rows of its question if the row is speech-prompted, else []."""
    speech = (b.modality == 0).tolist()
    good = ((b.modality == 1) & b.correct.bool()).tolist()
    q = b.question.tolist()
    by_q: dict[int, list[int]] = {}
    for j, ok in enumerate(good):
        if ok:
            by_q.setdefault(q[j], []).append(j)
    return [by_q.get(q[i], []) if speech[i] else [] for i in range(len(q))]


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1, eps=1e-8)


@STATE_REWARDS.register("rep_alignment")
def rep_alignment(b: StateBatch) -> tuple[torch.Tensor, dict[str, float]]:
    """R_rep of each row (see the module docstring): (N,), in [-1, 1]."""
    if b.pooled is None:
        raise ValueError("rep_alignment needs pooled hidden states (StateBatch.pooled)")
    partners = text_partners(b)
    out = torch.zeros(len(partners))
    for i, js in enumerate(partners):
        if js:  # mean over partners of the mean over layers of the cosine
            out[i] = _cos(b.pooled[i].unsqueeze(0), b.pooled[js]).mean()
    speech = int((b.modality == 0).sum())
    unpaired = sum(1 for i, js in enumerate(partners) if not js and int(b.modality[i]) == 0)
    return out, {"state/rep_unpaired": unpaired / speech if speech else 0.0}


@STATE_REWARDS.register("beh_alignment")
def beh_alignment(b: StateBatch) -> tuple[torch.Tensor, dict[str, float]]:
    """R_beh of each row (see the module docstring): (N,), in [-1, 1]."""
    if b.embed is None:
        raise ValueError("beh_alignment needs an embedding function (StateBatch.embed)")
    partners = text_partners(b)
    speech = [i for i in range(len(partners)) if int(b.modality[i]) == 0]
    out = torch.zeros(len(partners))
    if not speech:
        return out, {"state/beh_fallback": 0.0}
    emb = b.embed(list(b.texts))                                     # (N, D)
    refs = b.embed([b.references[i] for i in speech])                # (S, D)
    for k, i in enumerate(speech):
        target = emb[partners[i]] if partners[i] else refs[k].unsqueeze(0)
        out[i] = _cos(emb[i].unsqueeze(0), target).mean()
    return out, {"state/beh_fallback": sum(not partners[i] for i in speech) / len(speech)}
