"""Supervised fine-tuning: cross-entropy on the reference answer, early stopping on valid loss.

Both loops (SFT and the control ``sft_more``) run on an execution backend (``speechrl.training.backend``):
every rank draws the same global batch from the seeded sampler and trains on its share
(``batch[rank::world]``), split into ``grad_accum`` micro-batches. Each micro-batch's loss is weighted
by its share of the global batch's label tokens (counted over every micro-batch and rank), so the
update is the one-batch token-mean update whatever the number of micro-batches or ranks.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from speechrl.config import Config, ConfigError
from speechrl.models.build import Model, forward
from speechrl.progress import Progress
from speechrl.training.backend import OptimSpec, make_backend
from speechrl.training.checkpoint import Checkpoint
from speechrl.training.data import Processor, Sample, batches, collate
from speechrl.training.optim import constant_schedule, cosine_schedule

log = logging.getLogger("speechrl")


def lm_loss(model: Model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Mean token cross-entropy over label positions, and the number of those tokens."""
    labels = batch["labels"]
    logits = forward(model, batch)[:, :-1].float()
    target = labels[:, 1:]
    n = int((target != -100).sum())
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)
    return loss, n


def check_split(batch_size: int, micro: int, world: int, key: str) -> None:
    """Every rank must run the same number of non-empty micro-batches (ZeRO reduces in each backward)."""
    if batch_size < micro * world:
        raise ConfigError(f"{key}={batch_size} examples cannot fill {micro} micro-batches on each of {world} ranks; "
                          f"use a batch of at least {micro * world}, or fewer micro-batches (grad_accum)")


def accumulate(be: Any, proc: Processor, batch: list[Sample], micro: int) -> float:
    """Backward the token-mean loss of the global ``batch``: this rank's share in ``micro`` micro-batches,
    each weighted by its label tokens over the global count; returns the global loss value."""
    mine = batch[be.rank::be.world]
    parts = [mine[i::micro] for i in range(micro)] if micro > 1 else [mine]
    collated = [collate(proc, p, with_answers=True, device=be.device) for p in parts if p]
    local = sum(int((c["labels"][:, 1:] != -100).sum()) for c in collated)
    total = max(float(be.all_reduce(torch.tensor([float(local)]))[0]), 1.0)
    value = 0.0
    for c in collated:
        loss, n = lm_loss(be.model, c)
        be.backward(loss * (n / total))
        value += loss.item() * n / total
    return float(be.all_reduce(torch.tensor([value], dtype=torch.float64))[0])


def _resume(ckpt: Checkpoint | None, be: Any, it: Iterator[list[Sample]], fresh: dict[str, Any]) -> dict[str, Any]:
    """The loop state to continue from: the checkpoint's (the sampler advanced past the batches it consumed,
    so no data is replayed), or ``fresh`` (step 0)."""
    state = ckpt.resume(be) if ckpt else None
    if state is None:
        return {"step": 0, **fresh}
    for _ in range(state["step"]):  # the sampler's position: draw (not train on) the batches already used
        next(it)
    return state


def continue_sft(cfg: Config, model: Model, proc: Processor, train: list[Sample], out: Path, *, steps: int,
                 batch_size: int, lr: float, log_metrics: Any = None, desc: str = "sft_more",
                 ckpt: Checkpoint | None = None) -> dict[str, Any]:
    """The "SFT + the same extra compute" control: ``steps`` more SFT steps of ``batch_size`` examples
    at a constant ``lr`` from ``model`` (no early stopping: like an RL run, the last weights are kept).
    With ``ckpt`` it resumes from, and saves, checkpoints (:mod:`speechrl.training.checkpoint`)."""
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    model.train()
    be = make_backend(cfg, model, OptimSpec(lr, cfg.sft.weight_decay, cfg.sft.grad_clip, constant_schedule(0)))
    check_split(min(batch_size, len(train)), cfg.rl.grad_accum, be.world, "rl.prompts_per_step x rl.group_size (the control's batch, capped by the training set)")
    it = batches(train, batch_size, rng)
    st = _resume(ckpt, be, it, {"history": [], "seconds": 0.0})
    start, history = time.perf_counter() - st["seconds"], st["history"]
    with Progress(steps, desc, cfg.rl.log_every, enabled=be.is_main, initial=st["step"]) as prog:
        for n in range(st["step"] + 1, steps + 1):
            loss = accumulate(be, proc, next(it), cfg.rl.grad_accum)
            gnorm = be.step()
            if log_metrics and be.is_main:
                log_metrics({"train/loss": loss, "train/grad_norm": gnorm, "train/lr": lr}, n)
            history.append({"step": n, "train_loss": loss})
            prog.update(loss=loss)
            if ckpt:
                ckpt.after_step(n, steps, lambda: {"history": history, "seconds": time.perf_counter() - start})
    be.save_model(proc, out)
    return {"steps": steps, "batch_size": batch_size, "lr": lr, "seconds": time.perf_counter() - start, "ranks": be.world,
            "history": history}


@torch.no_grad()
def valid_loss(be: Any, proc: Processor, samples: list[Sample], batch_size: int) -> float:
    """Token-mean loss over ``samples``, each rank scoring its share (full parameters: no collectives per batch)."""
    totals = torch.zeros(2, dtype=torch.float64)
    with be.gathered() as model:
        model.eval()
        mine = samples[be.rank::be.world]
        for i in range(0, len(mine), batch_size):
            loss, n = lm_loss(model, collate(proc, mine[i:i + batch_size], with_answers=True, device=be.device))
            totals += torch.tensor([loss.item() * n, n], dtype=torch.float64)
        model.train()
    total, count = be.all_reduce(totals).tolist()
    return total / max(count, 1)


def train_sft(cfg: Config, model: Model, proc: Processor, train: list[Sample], valid: list[Sample],
              out: Path, log_metrics: Any = None, desc: str = "sft", ckpt: Checkpoint | None = None) -> dict[str, Any]:
    """Train until ``max_steps`` or early stop; the best-valid checkpoint is saved to ``out``.

    With ``ckpt`` it resumes from, and saves, checkpoints (:mod:`speechrl.training.checkpoint`). The
    best-valid model in ``out`` is not part of a checkpoint: one saved after the checkpoint is saved again,
    identically, when the resumed run reaches that step; one saved before it is already in ``out``."""
    s = cfg.sft
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    model.train()
    be = make_backend(cfg, model, OptimSpec(s.lr, s.weight_decay, s.grad_clip, cosine_schedule(s.warmup_steps, s.max_steps)))
    check_split(min(s.batch_size, len(train)), s.grad_accum, be.world, "sft.batch_size (capped by the training set)")
    it = batches(train, s.batch_size, rng)
    st = _resume(ckpt, be, it, {"best": None, "bad": 0, "best_step": 0, "history": [], "seconds": 0.0})
    best = math.inf if st["best"] is None else st["best"]
    bad, best_step, history = st["bad"], st["best_step"], st["history"]
    start = time.perf_counter() - st["seconds"]
    n = st["step"]

    def state() -> dict[str, Any]:
        return {"best": best if math.isfinite(best) else None, "bad": bad, "best_step": best_step, "history": history,
                "seconds": time.perf_counter() - start}

    with Progress(s.max_steps, desc, s.log_every, enabled=be.is_main, initial=st["step"]) as prog:
        for n in range(st["step"] + 1, s.max_steps + 1):
            loss = accumulate(be, proc, next(it), s.grad_accum)
            gnorm = be.step()
            be.schedule_step()
            metrics = {"train/loss": loss, "train/grad_norm": gnorm, "train/lr": be.lr}
            if n % s.eval_every == 0 or n == s.max_steps:
                v = valid_loss(be, proc, valid, s.batch_size * 2)
                metrics["valid/loss"] = v
                history.append({"step": n, "valid_loss": v})
                if v < best - 1e-4:
                    best, bad, best_step = v, 0, n
                    be.save_model(proc, out)
                else:
                    bad += 1
                if be.is_main:
                    log.info(f"[{desc}] step {n}: valid loss {v:.4f} (best {best:.4f} at step {best_step})")
                # every rank must take the same decision: the slowest rank's elapsed time decides
                over_time = s.max_seconds > 0 and be.all_reduce(torch.tensor([time.perf_counter() - start]), "max")[0] > s.max_seconds
                if bad >= s.patience or over_time:
                    if be.is_main:
                        log.info(f"[{desc}] stopping at step {n}: " + ("time budget" if over_time else f"no improvement for {bad} validations"))
                    if log_metrics and be.is_main:
                        log_metrics(metrics, n)
                    break
            if log_metrics and be.is_main:
                log_metrics(metrics, n)
            prog.update(loss=metrics["train/loss"], lr=metrics["train/lr"])
            if ckpt:
                ckpt.after_step(n, s.max_steps, state)
    return {"best_valid_loss": best, "best_step": best_step, "steps": n, "seconds": time.perf_counter() - start,
            "ranks": be.world, "history": history}
