"""Group builders and batch shapers: the two registries a preset names (``Algorithm.group`` /
``Algorithm.shapers``) and the RL loop looks up, so that it never branches on a preset.

``GROUP_BUILDERS``: ``fn(run, model, prompts, keys) -> Rollout`` forms the G rows of each prompt's group.
  * ``plain``: G sampled completions.
  * ``reference``: G-1 samples + the ground-truth reference as an off-policy member (``old_logp = 0``,
    ``off_policy`` set): MP-GRPO (Elmakies et al. 2025, arXiv 2509.16990; LUFFY style).
  * ``modality``: G/2 completions of the speech prompt + G/2 of its transcript as a text prompt (TARS,
    arXiv 2601.05543): one group = two prompt rows.

``BATCH_SHAPERS``: ``fn(run, batch, **opts) -> (batch, metrics)`` reshape one drawn, scored batch
(DAPO, Yu et al. 2025, arXiv 2503.14476).
  * ``overlong_penalty``: soft length penalty added to the rewards (``cache_frac`` x max_new_tokens, ``factor``).
  * ``overlong_filter``: truncated completions masked out of the loss.
  * ``dynamic_sampling``: groups whose rewards are all equal are dropped (the loop draws more prompts
    until ``rl.prompts_per_step`` groups are kept or ``rl.max_sample_batches`` batches were drawn).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from speechrl.algos import dapo
from speechrl.registry import Registry
from speechrl.training.rollout import Rollout, concat, sample, select, text_variant, with_reference

GROUP_BUILDERS: Registry = Registry("group builder")
BATCH_SHAPERS: Registry = Registry("batch shaper")


@dataclass
class Batch:
    """A scored rollout: ``rollout`` (N rows), ``rewards`` (N,) float (NaN = scorer failed), ``mask``
    (N, C) the loss mask, ``scores`` per reward name (N,) (NaN where it does not apply), and
    ``group_size`` G rows per group (a group may span several prompt rows of the rollout)."""

    rollout: Rollout
    rewards: torch.Tensor
    mask: torch.Tensor
    scores: dict[str, torch.Tensor]
    group_size: int

    @property
    def n_groups(self) -> int:
        return self.rewards.shape[0] // self.group_size

    @property
    def prompts_per_group(self) -> int:
        return self.group_size // self.rollout.group_size

    def rows(self, groups: list[int]) -> torch.Tensor:
        """(len(groups) * G,) row indices of whole groups, in the given order."""
        g = self.group_size
        return torch.tensor([k * g + j for k in groups for j in range(g)], dtype=torch.long)

    def groups(self, groups: list[int]) -> "Batch":
        """The batch restricted to whole groups (in the given order)."""
        k = self.prompts_per_group
        rows = self.rows(groups)
        dev = self.mask.device
        return Batch(select(self.rollout, [p * k + j for p in groups for j in range(k)]), self.rewards[rows],
                     self.mask[rows.to(dev)], {n: v[rows] for n, v in self.scores.items()}, self.group_size)


def concat_batches(parts: list[Batch], pad_id: int) -> Batch:
    """Stack batches of the same group size (completions re-padded to the widest)."""
    if len(parts) == 1:
        return parts[0]
    roll = concat([b.rollout for b in parts], pad_id)
    width = roll.completion_ids.shape[1]
    mask = torch.cat([torch.nn.functional.pad(b.mask, (0, width - b.mask.shape[1])) for b in parts])
    return Batch(roll, torch.cat([b.rewards for b in parts]), mask,
                 {n: torch.cat([b.scores[n] for b in parts]) for n in parts[0].scores}, parts[0].group_size)


# ----------------------------------------------------------------------------------- group builders
def _kw(run: Any) -> dict[str, Any]:
    rl = run.cfg.rl
    needs_states = "rep_alignment" in run.algo.state_rewards  # pooled hidden states from the generation (TARS R_rep)
    return dict(temperature=rl.temperature, top_p=rl.top_p, max_new_tokens=rl.max_new_tokens, states=needs_states)


@GROUP_BUILDERS.register("plain")
def plain_groups(run: Any, model: torch.nn.Module, prompts: list, keys: list[str]) -> Rollout:
    return sample(model, run.proc, prompts, run.cfg.rl.group_size, keys=keys, **_kw(run))


@GROUP_BUILDERS.register("reference")
def reference_groups(run: Any, model: torch.nn.Module, prompts: list, keys: list[str]) -> Rollout:
    return with_reference(sample(model, run.proc, prompts, run.cfg.rl.group_size - 1, keys=keys, **_kw(run)), run.proc)


@GROUP_BUILDERS.register("modality")
def modality_groups(run: Any, model: torch.nn.Module, prompts: list, keys: list[str]) -> Rollout:
    g = run.cfg.rl.group_size
    if g % 2:
        raise ValueError(f"rl.group_size={g}: preset '{run.algo.name}' splits each group into speech and text halves; use an even group size")
    mixed = [v for s in prompts for v in (s, text_variant(s))]
    return sample(model, run.proc, mixed, g // 2, keys=[f"{k}:{m}" for k in keys for m in ("speech", "text")], **_kw(run))


def modality(r: Rollout) -> torch.Tensor:
    """(N,) 0 for rows of speech prompts, 1 for text-only prompts."""
    return torch.tensor([int(s.n_audio == 0) for s in r.samples for _ in range(r.group_size)])


# ----------------------------------------------------------------------------------- batch shapers
@BATCH_SHAPERS.register("overlong_penalty")
def overlong_penalty(run: Any, b: Batch, *, cache_frac: float = 0.2, factor: float = 1.0) -> tuple[Batch, dict[str, float]]:
    n = run.cfg.rl.max_new_tokens
    pen, m = dapo.overlong_penalty(b.rollout.completion_mask.sum(-1).cpu(), n, round(cache_frac * n), factor=factor)
    return replace(b, rewards=b.rewards + pen), m


@BATCH_SHAPERS.register("overlong_filter")
def overlong_filter(run: Any, b: Batch) -> tuple[Batch, dict[str, float]]:
    r = b.rollout
    truncated = dapo.truncated_rows(b.mask, r.completion_ids, run.proc.tokenizer.eos_token_id, run.cfg.rl.max_new_tokens)
    mask, m = dapo.overlong_filter(b.mask, truncated)
    return replace(b, mask=mask), m


@BATCH_SHAPERS.register("dynamic_sampling")
def dynamic_sampling(run: Any, b: Batch) -> tuple[Batch, dict[str, float]]:
    keep, m = dapo.dynamic_sampling_keep(b.rewards, b.group_size)
    return b.groups(keep.nonzero().flatten().tolist()), m
