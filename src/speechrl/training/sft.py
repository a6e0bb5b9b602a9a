"""Supervised fine-tuning: cross-entropy on the reference answer, early stopping on valid loss."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

import torch

from speechrl.config import Config
from speechrl.models.build import Model, forward, save
from speechrl.models.processor import SpeechProcessor
from speechrl.progress import Progress
from speechrl.training.data import Sample, batches, collate
from speechrl.training.optim import adamw, step, warmup_cosine

log = logging.getLogger("speechrl")


def lm_loss(model: Model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Mean token cross-entropy over label positions, and the number of those tokens."""
    labels = batch["labels"]
    logits = forward(model, batch)[:, :-1]
    target = labels[:, 1:]
    n = int((target != -100).sum())
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)
    return loss, n


def accumulate(model: Model, proc: SpeechProcessor, batch: list[Sample], micro: int) -> float:
    """Backward the token-mean loss of ``batch`` in ``micro`` micro-batches (each weighted by its
    share of label tokens, so the gradient equals the one-batch gradient); returns the loss."""
    parts = [batch[i::micro] for i in range(micro)] if micro > 1 else [batch]
    collated = [collate(proc, p, with_answers=True, device=model.device) for p in parts if p]
    total = sum(int((c["labels"][:, 1:] != -100).sum()) for c in collated)
    value = 0.0
    for c in collated:
        loss, n = lm_loss(model, c)
        (loss * (n / max(total, 1))).backward()
        value += loss.item() * n / max(total, 1)
    return value


def continue_sft(cfg: Config, model: Model, proc: SpeechProcessor, train: list[Sample], out: Path, *, steps: int,
                 batch_size: int, lr: float, log_metrics: Any = None, desc: str = "sft_more") -> dict[str, Any]:
    """The "SFT + the same extra compute" control: ``steps`` more SFT steps of ``batch_size`` examples
    at a constant ``lr`` from ``model`` (no early stopping: like an RL run, the last weights are kept)."""
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    model.train()
    opt = adamw(model, lr, cfg.sft.weight_decay)
    it = batches(train, batch_size, rng)
    start, history = time.perf_counter(), []
    with Progress(steps, desc, cfg.rl.log_every) as prog:
        for n in range(1, steps + 1):
            loss = accumulate(model, proc, next(it), cfg.rl.grad_accum)
            gnorm = step(model, opt, None, cfg.sft.grad_clip)
            if log_metrics:
                log_metrics({"train/loss": loss, "train/grad_norm": gnorm, "train/lr": lr}, n)
            history.append({"step": n, "train_loss": loss})
            prog.update(loss=loss)
    save(model, proc, out)
    return {"steps": steps, "batch_size": batch_size, "lr": lr, "seconds": time.perf_counter() - start, "history": history}


@torch.no_grad()
def valid_loss(model: Model, proc: SpeechProcessor, samples: list[Sample], batch_size: int) -> float:
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(samples), batch_size):
        loss, n = lm_loss(model, collate(proc, samples[i:i + batch_size], with_answers=True, device=model.device))
        total += loss.item() * n
        count += n
    model.train()
    return total / max(count, 1)


def train_sft(cfg: Config, model: Model, proc: SpeechProcessor, train: list[Sample], valid: list[Sample],
              out: Path, log_metrics: Any = None, desc: str = "sft") -> dict[str, Any]:
    """Train until ``max_steps`` or early stop; the best-valid checkpoint is saved to ``out``."""
    s = cfg.sft
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    model.train()
    opt = adamw(model, s.lr, s.weight_decay)
    sched = warmup_cosine(opt, s.warmup_steps, s.max_steps)
    best, bad, best_step, start = float("inf"), 0, 0, time.perf_counter()
    it = batches(train, s.batch_size, rng)
    history = []
    with Progress(s.max_steps, desc, s.log_every) as prog:
        for n in range(1, s.max_steps + 1):
            loss = accumulate(model, proc, next(it), s.grad_accum)
            gnorm = step(model, opt, sched, s.grad_clip)
            metrics = {"train/loss": loss, "train/grad_norm": gnorm, "train/lr": sched.get_last_lr()[0]}
            if n % s.eval_every == 0 or n == s.max_steps:
                v = valid_loss(model, proc, valid, s.batch_size * 2)
                metrics["valid/loss"] = v
                history.append({"step": n, "valid_loss": v})
                if v < best - 1e-4:
                    best, bad, best_step = v, 0, n
                    save(model, proc, out)
                else:
                    bad += 1
                log.info(f"[{desc}] step {n}: valid loss {v:.4f} (best {best:.4f} at step {best_step})")
                over_time = s.max_seconds > 0 and time.perf_counter() - start > s.max_seconds
                if bad >= s.patience or over_time:
                    log.info(f"[{desc}] stopping at step {n}: " + ("time budget" if over_time else f"no improvement for {bad} validations"))
                    if log_metrics:
                        log_metrics(metrics, n)
                    break
            if log_metrics:
                log_metrics(metrics, n)
            prog.update(loss=metrics["train/loss"], lr=metrics["train/lr"])
    return {"best_valid_loss": best, "best_step": best_step, "steps": n, "seconds": time.perf_counter() - start,
            "history": history}
