"""Shape and value checks shared by the algorithm families; errors name the tensor and shapes."""

from __future__ import annotations

import torch


def same_shape(**tensors: torch.Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError("shape mismatch: " + ", ".join(f"{k} {v}" for k, v in shapes.items()))


def group_view(x: torch.Tensor, group_size: int, name: str = "rewards") -> torch.Tensor:
    """(N,) -> (N // G, G); N must be a multiple of G."""
    if x.dim() != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {tuple(x.shape)}")
    if group_size < 1 or x.numel() % group_size:
        raise ValueError(f"group size {group_size} does not divide the batch: {name} has {x.numel()} entries")
    return x.view(-1, group_size)


def finite(x: torch.Tensor, name: str) -> None:
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).nonzero().flatten().tolist()[:8]
        raise ValueError(f"{name} has non-finite values at indices {bad}")
