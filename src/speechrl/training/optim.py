"""Learning-rate schedules shared by SFT and RL (lr multipliers for ``LambdaLR``).

The optimiser itself belongs to the execution backend (``speechrl.training.backend``); the loops hand
it one of these multipliers through :class:`~speechrl.training.backend.OptimSpec`.
"""

from __future__ import annotations

import math
from collections.abc import Callable


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
