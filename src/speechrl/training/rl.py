"""The RL trainer loop: rollout -> rewards -> advantages -> clipped policy loss + KL -> update.

Every algorithmic choice is a registry lookup (``speechrl.algos``); this file is only the loop.
One policy update per rollout batch (so pi_old is the sampling policy and the ratio starts at 1).
Dropout is off during RL (``model.eval()``), so sampling and the update see the same function.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import torch

from speechrl.algos import ADVANTAGES, AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES, RATIOS, SEGMENTERS, Algorithm
from speechrl.config import Config
from speechrl.models.build import Model, save
from speechrl.models.processor import SpeechProcessor
from speechrl.progress import Progress
from speechrl.rewards import combine
from speechrl.training.data import Sample
from speechrl.training.optim import adamw, step, warmup_constant
from speechrl.training.rollout import sample, token_logp

log = logging.getLogger("speechrl")


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    m = mask.to(x.dtype)
    return float((x * m).sum() / m.sum().clamp(min=1))


def rewards_for(cfg: Config, texts: list[str], samples: list[Sample], g: int) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted reward per completion (N,); a failed scorer gives NaN, counted, advantage 0."""
    refs = [s.example.references for s in samples for _ in range(g)]
    total, per = combine(cfg.rl.rewards, texts, refs)
    r = torch.tensor([math.nan if v is None else v for v in total], dtype=torch.float32)
    metrics = {f"reward/{k}": float(torch.tensor([x for x in v if x is not None] or [0.0]).mean()) for k, v in per.items()}
    metrics["reward/failed"] = float(torch.isnan(r).sum())
    return r, metrics


def rl_step(cfg: Config, algo: Algorithm, policy: Model, ref: Model, proc: SpeechProcessor, prompts: list[Sample],
            opt: torch.optim.Optimizer, sched: Any) -> dict[str, float]:
    rl, g = cfg.rl, cfg.rl.group_size
    t0 = time.perf_counter()
    roll = sample(policy, proc, prompts, g, temperature=rl.temperature, top_p=rl.top_p, max_new_tokens=rl.max_new_tokens)
    t1 = time.perf_counter()
    rewards, metrics = rewards_for(cfg, roll.texts, prompts, g)
    failed = torch.isnan(rewards)
    mask = roll.completion_mask
    adv, m_adv = ADVANTAGES.get(algo.advantage)(torch.nan_to_num(rewards, nan=0.0), g, mask=mask, ids=roll.completion_ids,
                                                 surprisal=-roll.old_logp, **algo.advantage_opts)
    adv = adv.masked_fill(failed.view(-1, *([1] * (adv.dim() - 1))), 0.0).to(mask.device)
    with torch.no_grad():
        ref_logp, _ = token_logp(ref, roll, rl.temperature)
    logp, entropy = token_logp(policy, roll, rl.temperature, with_entropy=True)
    segments = None
    if algo.segmenter:
        segments, m_seg = SEGMENTERS.get(algo.segmenter)(roll.old_logp, roll.completion_ids, mask, **algo.segmenter_opts)
        metrics.update(m_seg)
    log_ratio, _ = RATIOS.get(algo.ratio)(logp, roll.old_logp, mask, segments=segments, **algo.ratio_opts)
    pg, m_pg = POLICY_LOSSES.get(algo.policy_loss)(log_ratio, adv, mask, **algo.loss_opts)
    kl, _ = KL_ESTIMATORS.get(algo.kl_estimator)(logp, ref_logp)
    per_token = pg + algo.beta * kl if algo.beta > 0 else pg
    loss, _ = AGGREGATIONS.get(algo.loss_agg)(per_token, mask, norm_constant=rl.max_new_tokens, segments=segments)
    loss.backward()
    gnorm = step(policy, opt, sched, rl.grad_clip)
    lengths = mask.sum(-1).float()
    valid = rewards[~failed]
    metrics.update(m_adv)
    metrics.update(m_pg)
    metrics.update({
        "reward/mean": float(valid.mean()) if valid.numel() else math.nan,
        "reward/std": float(valid.std()) if valid.numel() > 1 else 0.0,
        "actor/loss": loss.item(), "actor/kl": masked_mean(kl.detach(), mask),
        "actor/entropy": masked_mean(entropy, mask), "actor/grad_norm": gnorm, "actor/lr": sched.get_last_lr()[0],
        "response/length": float(lengths.mean()),
        "response/truncated": float((mask[:, -1] == 1).float().mean()) if mask.shape[1] >= rl.max_new_tokens else 0.0,
        "time/rollout_s": t1 - t0, "time/update_s": time.perf_counter() - t1,
    })
    return metrics


def train_rl(cfg: Config, algo: Algorithm, policy: Model, proc: SpeechProcessor, train: list[Sample], out: Path,
             log_metrics: Any = None, desc: str = "rl") -> dict[str, Any]:
    """Run ``cfg.rl.steps`` updates from ``policy`` (the SFT model); the reference is a frozen copy of it."""
    rl = cfg.rl
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    ref = copy.deepcopy(policy).eval().requires_grad_(False)
    policy.eval()  # dropout off: sampling and update see the same policy
    opt = adamw(policy, rl.lr, 0.0)
    sched = warmup_constant(opt, rl.warmup_steps)
    start, history = time.perf_counter(), []
    with Progress(rl.steps, desc, rl.log_every) as prog:
        for n in range(1, rl.steps + 1):
            prompts = rng.sample(train, min(rl.prompts_per_step, len(train)))
            m = rl_step(cfg, algo, policy, ref, proc, prompts, opt, sched)
            history.append({"step": n, **{k: m[k] for k in ("reward/mean", "actor/kl", "response/length")}})
            if log_metrics:
                log_metrics(m, n)
            prog.update(reward=m["reward/mean"], kl=m["actor/kl"], len=m["response/length"])
    save(policy, proc, out)
    first = [h["reward/mean"] for h in history[: max(1, len(history) // 10)]]
    last = [h["reward/mean"] for h in history[-max(1, len(history) // 10):]]
    return {"steps": rl.steps, "seconds": time.perf_counter() - start, "reward_first_10pct": sum(first) / len(first),
            "reward_last_10pct": sum(last) / len(last), "history": history}
