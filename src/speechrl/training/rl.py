"""The RL trainer loop: rollout -> rewards -> advantages -> clipped policy loss + KL -> update.

Every algorithmic choice is a registry lookup (``speechrl.algos``); this file is only the loop.
Each rollout batch is used for ``rl.epochs`` (mu) passes of ``rl.minibatches`` optimizer steps,
each minibatch holding whole groups; old log-probs stay those of sampling, so the ratio is 1 on
the first minibatch only. ``rl.grad_accum`` splits a minibatch into micro-batches whose losses are
scaled by 1/grad_accum (for token-mean aggregation this weights micro-batches equally rather than
by their token counts, as verl does). Advantages are computed once per rollout batch.

Reference policy (KL): the SFT model as loaded; with LoRA, the same weights with the adapter
disabled (no second copy); not computed at all when the preset's beta is 0.
Dropout is off during RL (``model.eval()``), so sampling and the update see the same function.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import torch

from speechrl.algos import ADVANTAGES, AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES, RATIOS, SEGMENTERS, Algorithm, dapo
from speechrl.config import Config
from speechrl.models.build import Model, save
from speechrl.models.processor import SpeechProcessor
from speechrl.progress import Progress
from speechrl.rewards import combine
from speechrl.training.data import Sample
from speechrl.training.optim import adamw, step, warmup_constant, warmup_cosine
from speechrl.training.rollout import Rollout, concat, sample, select, text_variant, token_logp, with_reference

log = logging.getLogger("speechrl")


HISTORY_KEYS = ("reward/mean", "actor/kl", "response/length", "actor/entropy")


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    m = mask.to(x.dtype)
    return float((x * m).sum() / m.sum().clamp(min=1))


def rewards_for(cfg: Config, r: Rollout) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted reward per completion (N,); a failed scorer gives NaN (counted; advantage 0)."""
    stats: dict[str, float] = {}
    total, per = combine(cfg.rl.rewards, r.texts, r.references, stats=stats)
    rewards = torch.tensor([math.nan if v is None else v for v in total], dtype=torch.float32)
    on = ~r.off_policy.cpu()
    metrics = {f"reward/{k}": _mean([x for x, o in zip(v, on.tolist()) if x is not None and o]) for k, v in per.items()}
    metrics["reward/cache_hits"] = float(stats.get("reward/cache_hits", 0))
    metrics["reward/failed"] = float(torch.isnan(rewards).sum())
    return rewards, metrics


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def fill_failed(rewards: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """NaN rewards -> the mean of the finite rewards of their group (0 if none), and the NaN mask.

    The filled value leaves the group's mean unchanged, so a failed sample neither pulls the
    baseline nor (after its advantage is zeroed) receives credit."""
    failed = torch.isnan(rewards)
    g = rewards.view(-1, group_size)
    ok = ~failed.view(-1, group_size)
    means = torch.where(ok, g, torch.zeros_like(g)).sum(1, keepdim=True) / ok.sum(1, keepdim=True).clamp(min=1)
    return torch.where(ok, g, means.expand_as(g)).flatten(), failed


def rollout_for(cfg: Config, algo: Algorithm, policy: Model, proc: SpeechProcessor, prompts: list[Sample]) -> Rollout:
    """One rollout batch shaped by the preset: plain groups of G, G-1 samples + the reference
    (mixed policy), or G/2 speech-prompted + G/2 text-prompted completions (modality split)."""
    rl = cfg.rl
    kw = dict(temperature=rl.temperature, top_p=rl.top_p, max_new_tokens=rl.max_new_tokens)
    if algo.mixed_policy:
        return with_reference(sample(policy, proc, prompts, rl.group_size - 1, **kw), proc)
    if algo.modality_split:
        if rl.group_size % 2:
            raise ValueError(f"rl.group_size={rl.group_size}: preset '{algo.name}' splits each group into speech and text halves; use an even group size")
        mixed = [v for s in prompts for v in (s, text_variant(s))]
        return sample(policy, proc, mixed, rl.group_size // 2, **kw)
    return sample(policy, proc, prompts, rl.group_size, **kw)


def modality(r: Rollout) -> torch.Tensor:
    """(N,) 0 for rows of speech prompts, 1 for text-only prompts."""
    return torch.tensor([int(s.n_audio == 0) for s in r.samples for _ in range(r.group_size)])


def collect(cfg: Config, algo: Algorithm, policy: Model, proc: SpeechProcessor, train: list[Sample],
            rng: random.Random) -> tuple[Rollout, torch.Tensor, dict[str, float]]:
    """Rollouts + rewards for one update. With dynamic sampling (DAPO), groups whose rewards are all
    equal are dropped and more prompts are sampled until ``prompts_per_step`` groups are kept or
    ``rl.max_sample_batches`` batches were drawn (then the update uses what it has)."""
    rl = cfg.rl
    parts, rewards_parts, metrics, kept, drawn = [], [], {}, 0, 0
    while True:
        prompts = rng.sample(train, min(rl.prompts_per_step, len(train)))
        r = rollout_for(cfg, algo, policy, proc, prompts)
        rewards, m = rewards_for(cfg, r)
        drawn += 1
        if algo.overlong:
            cache = round(algo.overlong.get("cache_frac", 0.2) * rl.max_new_tokens)
            pen, m_pen = dapo.overlong_penalty(r.completion_mask.sum(-1).cpu(), rl.max_new_tokens, cache,
                                               factor=algo.overlong.get("factor", 1.0))
            rewards = rewards + pen
            m.update(m_pen)
        for k, v in m.items():
            metrics[k] = metrics.get(k, 0.0) + v if k == "reward/failed" else v  # failures add up over batches
        if not algo.dynamic_sampling:
            return r, rewards, metrics
        keep, m_keep = dapo.dynamic_sampling_keep(rewards, rl.group_size)
        rows_per_group = rl.group_size // r.group_size
        groups = [i for i in keep.nonzero().flatten().tolist()][: rl.prompts_per_step - kept]
        if groups:
            prompt_rows = [g * rows_per_group + j for g in groups for j in range(rows_per_group)]
            sel = select(r, prompt_rows)
            parts.append(sel)
            rows = torch.tensor([p * r.group_size + j for p in prompt_rows for j in range(r.group_size)])
            rewards_parts.append(rewards[rows])
            kept += len(groups)
        if kept >= rl.prompts_per_step or drawn >= rl.max_sample_batches:
            metrics.update({"dapo/groups_kept": float(kept), "dapo/sample_batches": float(drawn)})
            if not parts:
                return select(r, []), rewards[:0], metrics
            return concat(parts, proc.tokenizer.pad_token_id), torch.cat(rewards_parts), metrics


def reference_logp(policy: Model, ref: Model | None, roll: Rollout, temperature: float) -> torch.Tensor:
    """(N, C) log-probs of the reference: ``ref`` if given, else ``policy`` with its LoRA adapter disabled."""
    with torch.no_grad():
        if ref is not None:
            return token_logp(ref, roll, temperature)[0]
        ctx = policy.disable_adapter() if hasattr(policy, "disable_adapter") else contextlib.nullcontext()
        with ctx:
            return token_logp(policy, roll, temperature)[0]


def _rows(group_ids: list[int], prompts_per_group: int, n: int) -> tuple[list[int], torch.Tensor]:
    """Prompt rows and completion rows of whole groups (``n`` completions per prompt row)."""
    prompts = [g * prompts_per_group + k for g in group_ids for k in range(prompts_per_group)]
    return prompts, torch.tensor([p * n + j for p in prompts for j in range(n)], dtype=torch.long)


def policy_loss(cfg: Config, algo: Algorithm, policy: Model, roll: Rollout, adv: torch.Tensor, mask: torch.Tensor,
                ref_logp: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float], torch.Tensor, torch.Tensor]:
    """Loss of one (mini/micro-)batch of rows; returns (loss, metrics, kl (N, C), entropy (N, C))."""
    rl = cfg.rl
    logp, entropy = token_logp(policy, roll, rl.temperature, with_entropy=True)
    metrics: dict[str, float] = {}
    segments = None
    if algo.segmenter:
        segments, m_seg = SEGMENTERS.get(algo.segmenter)(roll.old_logp, roll.completion_ids, mask, **algo.segmenter_opts)
        metrics.update(m_seg)
    log_ratio, _ = RATIOS.get(algo.ratio)(logp, roll.old_logp, mask, segments=segments, **algo.ratio_opts)
    pg, m_pg = POLICY_LOSSES.get(algo.policy_loss)(log_ratio, adv, mask, off_policy=roll.off_policy, **algo.loss_opts)
    metrics.update(m_pg)
    if ref_logp is not None:
        kl, _ = KL_ESTIMATORS.get(algo.kl_estimator)(logp, ref_logp)
        per_token = pg + algo.beta * kl
    else:
        kl, per_token = torch.zeros_like(logp), pg
    loss, _ = AGGREGATIONS.get(algo.loss_agg)(per_token, mask, norm_constant=rl.max_new_tokens, segments=segments)
    return loss, metrics, kl.detach(), entropy


def rl_step(cfg: Config, algo: Algorithm, policy: Model, ref: Model | None, proc: SpeechProcessor, train: list[Sample],
            opt: torch.optim.Optimizer, sched: Any, rng: random.Random) -> dict[str, float]:
    """Collect one rollout batch and make ``epochs x minibatches`` policy updates; returns the step's metrics.

    ``ref`` is the frozen reference model, or ``None`` for the LoRA policy's adapter-disabled base."""
    rl, g = cfg.rl, cfg.rl.group_size
    t0 = time.perf_counter()
    roll, rewards, metrics = collect(cfg, algo, policy, proc, train, rng)
    t1 = time.perf_counter()
    if rewards.numel() == 0:  # dynamic sampling found no informative group: skip the update
        metrics.update({"reward/mean": math.nan, "time/rollout_s": t1 - t0})
        return metrics
    filled, failed = fill_failed(rewards, g)
    mask = roll.completion_mask
    if algo.overlong and algo.overlong.get("filter"):
        truncated = dapo.truncated_rows(mask, roll.completion_ids, proc.tokenizer.eos_token_id, rl.max_new_tokens)
        mask, m_f = dapo.overlong_filter(mask, truncated)
        metrics.update(m_f)
    adv, m_adv = ADVANTAGES.get(algo.advantage)(filled, g, mask=mask, ids=roll.completion_ids, surprisal=-roll.old_logp,
                                                 modality=modality(roll) if algo.modality_split else None,
                                                 **algo.advantage_opts)
    adv = adv.masked_fill(failed.view(-1, *([1] * (adv.dim() - 1))), 0.0).to(mask.device)
    ref_logp = reference_logp(policy, ref, roll, rl.temperature) if algo.beta > 0 else None

    n_groups = roll.completion_ids.shape[0] // g
    per_group = g // roll.group_size  # prompt rows per group (2 with the speech/text split)
    n_mb = min(rl.minibatches, n_groups)  # dynamic sampling may keep fewer groups than prompts_per_step
    order = torch.randperm(n_groups, generator=torch.Generator().manual_seed(rng.randrange(2**31)))
    losses, kls, ents, gnorms, m_pg = [], [], [], [], {}
    for _epoch in range(rl.epochs):
        for mb in order.tensor_split(n_mb):
            micro = [m for m in mb.tensor_split(min(rl.grad_accum, len(mb))) if len(m)]
            for mc in micro:
                prompts, rows = _rows(mc.tolist(), per_group, roll.group_size)
                sub = select(roll, prompts)
                dev_rows = rows.to(mask.device)
                loss, m_pg, kl, ent = policy_loss(cfg, algo, policy, sub, adv[dev_rows], mask[dev_rows],
                                                  None if ref_logp is None else ref_logp[dev_rows])
                (loss / len(micro)).backward()
                losses.append(loss.item())
                kls.append(masked_mean(kl, mask[dev_rows]))
                ents.append(masked_mean(ent.detach(), mask[dev_rows]))
            gnorms.append(step(policy, opt, None, rl.grad_clip))
    sched.step()
    on = (~roll.off_policy).to(mask.device)
    lengths = mask[on].sum(-1).float()
    valid = rewards[~failed & on.cpu()]
    metrics.update(m_adv)
    metrics.update(m_pg)
    metrics.update({
        "reward/mean": float(valid.mean()) if valid.numel() else math.nan,
        "reward/std": float(valid.std()) if valid.numel() > 1 else 0.0,
        "actor/loss": _mean(losses), "actor/kl": _mean(kls) if ref_logp is not None else math.nan,  # no reference when beta = 0
        "actor/entropy": _mean(ents), "actor/grad_norm": _mean(gnorms), "actor/lr": sched.get_last_lr()[0],
        "actor/updates": float(len(gnorms)),
        "response/length": float(lengths.mean()) if lengths.numel() else 0.0,
        "response/truncated": float((roll.completion_mask[on][:, -1] == 1).float().mean())
        if roll.completion_mask.shape[1] >= rl.max_new_tokens and lengths.numel() else 0.0,
        "time/rollout_s": t1 - t0, "time/update_s": time.perf_counter() - t1,
    })
    if algo.modality_split:
        mod = modality(roll)
        for name, m_id in (("speech", 0), ("text", 1)):
            sel = rewards[(mod == m_id) & ~failed]
            metrics[f"reward/{name}"] = float(sel.mean()) if sel.numel() else math.nan
    return metrics


def train_rl(cfg: Config, algo: Algorithm, policy: Model, proc: SpeechProcessor, train: list[Sample], out: Path,
             log_metrics: Any = None, desc: str = "rl") -> dict[str, Any]:
    """Run ``cfg.rl.steps`` rollout batches from ``policy`` (the SFT model).

    The reference is a frozen copy of it, or, for a LoRA policy (peft), the policy with its adapter
    disabled; no reference when the preset's beta is 0."""
    rl = cfg.rl
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    lora = hasattr(policy, "disable_adapter")
    ref = None if lora or algo.beta == 0 else copy.deepcopy(policy).eval().requires_grad_(False)
    policy.eval()  # dropout off: sampling and update see the same policy
    opt = adamw(policy, rl.lr, 0.0)
    sched = warmup_cosine(opt, rl.warmup_steps, rl.steps) if rl.schedule == "cosine" else warmup_constant(opt, rl.warmup_steps)
    start, history = time.perf_counter(), []
    with Progress(rl.steps, desc, rl.log_every) as prog:
        for n in range(1, rl.steps + 1):
            m = rl_step(cfg, algo, policy, ref, proc, train, opt, sched, rng)
            history.append({"step": n, **{k: m.get(k, math.nan) for k in HISTORY_KEYS}})
            if log_metrics:
                log_metrics(m, n)
            prog.update(reward=m["reward/mean"], kl=m.get("actor/kl", math.nan), len=m.get("response/length", math.nan))
    save(policy, proc, out)
    tenth = max(1, len(history) // 10)
    first = [h["reward/mean"] for h in history[:tenth] if not math.isnan(h["reward/mean"])]
    last = [h["reward/mean"] for h in history[-tenth:] if not math.isnan(h["reward/mean"])]
    return {"steps": rl.steps, "seconds": time.perf_counter() - start, "reward_first_10pct": _mean(first),
            "reward_last_10pct": _mean(last), "history": history}
