"""Learning-rate schedules shared by SFT and RL (lr multipliers for ``LambdaLR``), and a plain AdamW.

The optimiser itself belongs to the execution backend (``speechrl.training.backend``); the loops hand
it one of these multipliers through :class:`~speechrl.training.backend.OptimSpec`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

COSINE_FLOOR = 0.1
"""Final learning rate of :func:`cosine_schedule` as a fraction of the peak (the control ``sft_more`` continues at it)."""


def cosine_schedule(warmup: int, total: int, floor: float = COSINE_FLOOR) -> Callable[[int], float]:
    """Linear warmup to the peak, then cosine decay to ``floor`` x peak at ``total`` steps."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

    return f


def constant_schedule(warmup: int) -> Callable[[int], float]:
    """Linear warmup to the peak, then constant."""
    return lambda s: min(1.0, (s + 1) / max(1, warmup))


def adamw(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def warmup_cosine(opt: torch.optim.Optimizer, warmup: int, total: int, floor: float = COSINE_FLOOR) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(opt, cosine_schedule(warmup, total, floor))


def warmup_constant(opt: torch.optim.Optimizer, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(opt, constant_schedule(warmup))
