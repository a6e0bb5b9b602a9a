"""Shape and value checks shared by the algorithm families; errors name the tensor and shapes.

Also the two masked reductions every family uses (NaN-safe: a masked position never reaches a sum,
so garbage in padding cannot leak into a value or a gradient).
"""

from __future__ import annotations

import weakref

import torch


def same_shape(**tensors: torch.Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError("shape mismatch: " + ", ".join(f"{k} {v}" for k, v in shapes.items()))


def matrix(**tensors: torch.Tensor) -> None:
    """Every tensor is 2-D (N, T) and all have the same shape."""
    for name, t in tensors.items():
        if t.dim() != 2:
            raise ValueError(f"{name} must be 2-D (N, T), got shape {tuple(t.shape)}")
    same_shape(**tensors)


def rows(x: torch.Tensor | None, n: int, name: str, like: str = "logp") -> None:
    """``x`` is None or 1-D with ``n`` entries (one per completion)."""
    if x is not None and (x.dim() != 1 or x.shape[0] != n):
        raise ValueError(f"shape mismatch: {name} {tuple(x.shape)} must be ({n},), one entry per row of {like}")


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


_KEEP_CACHE: list = []  # one entry: (weakref(mask), version, keep)


def version_of(t: torch.Tensor) -> int | None:
    """The tensor's in-place version counter; None where torch keeps none (inference-mode tensors)."""
    try:
        return t._version
    except RuntimeError:
        return None


def keep_of(mask: torch.Tensor) -> torch.Tensor:
    """Bool (N, T): True on completion tokens. The conversion of the last non-bool mask is memoised
    (keyed on the tensor's identity and version counter), as every family converts the same mask."""
    if mask.dtype == torch.bool:
        return mask
    version = version_of(mask)
    if version is None:
        return mask != 0
    if _KEEP_CACHE:
        ref, cached_version, keep = _KEEP_CACHE[0]
        if ref() is mask and cached_version == version:
            return keep
    keep = mask != 0
    _KEEP_CACHE[:] = [(weakref.ref(mask), version, keep)]
    return keep


def masked(x: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """``x`` with masked positions set to exactly 0 (NaN/inf there cannot propagate; zero gradient)."""
    return torch.where(keep_of(mask) if keep is None else keep, x, 0.0)


def row_mean(x: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor | None = None, *,
             premasked: bool = False) -> torch.Tensor:
    """(N, T) -> (N,) mean over each row's masked tokens; an empty row gives 0. ``premasked``: x is
    already exactly 0 on masked positions (skips one pass)."""
    return (x if premasked else masked(x, mask, keep)).sum(-1) / mask.sum(-1).clamp(min=1).to(x.dtype)


@torch.no_grad()
def masked_mean_item(x: torch.Tensor, keep: torch.Tensor) -> float:
    """Scalar mean of ``x`` over the True entries of ``keep`` as a float for metrics (0.0 if none)."""
    return float(torch.where(keep, x.detach(), 0.0).sum() / max(int(keep.sum()), 1))


def adv_matrix(advantages: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Advantages (N,) -> (N, 1) (broadcasts against ``like`` without materialising), (N, T) -> as is."""
    if advantages.dim() == 1:
        if advantages.shape[0] != like.shape[0]:
            raise ValueError(f"shape mismatch: advantages {tuple(advantages.shape)} vs log_ratio {tuple(like.shape)}")
        return advantages.unsqueeze(-1)
    if tuple(advantages.shape) != tuple(like.shape):
        raise ValueError(f"shape mismatch: advantages {tuple(advantages.shape)} vs log_ratio {tuple(like.shape)}")
    return advantages
