"""Global normalisers: an aggregation given the whole optimisation batch's token / sequence counts makes
the objective independent of micro-batches and ranks (verl ``agg_loss`` with global batch info)."""

from __future__ import annotations

import pytest
import torch

from speechrl.algos import AGGREGATIONS
from speechrl.algos.aggregation import batch_counts

N, T = 8, 7


def _problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, T, generator=g)
    lengths = torch.tensor([7, 1, 3, 0, 5, 2, 6, 4])  # unequal lengths and one empty row (overlong filter)
    mask = (torch.arange(T) < lengths[:, None]).float()
    segments = torch.arange(T).div(3, rounding_mode="floor").expand(N, T).clone()
    theta = torch.randn(T, generator=g)
    return x, mask, segments, theta


def _grad(mode: str, parts: list[list[list[int]]], global_counts: bool = True) -> torch.Tensor:
    """Gradient of the objective split into ranks x micro-batches (lists of row indices), ranks averaged
    as DeepSpeed / DDP do, each rank's loss scaled by the world size."""
    x, mask, segments, theta0 = _problem()
    n_tokens, n_seqs = batch_counts(mask)
    world, grads = len(parts), []
    for rank in parts:
        theta = theta0.clone().requires_grad_(True)
        per_token = torch.tanh(x * theta) ** 2  # any differentiable per-token loss
        total = 0.0
        for rows in rank:
            idx = torch.tensor(rows)
            kw = {"n_tokens": n_tokens, "n_seqs": n_seqs} if global_counts else {}
            loss, _ = AGGREGATIONS.get(mode)(per_token[idx], mask[idx], norm_constant=T, segments=segments[idx], **kw)
            total = total + (loss if global_counts else loss / len(rank)) * world
        total.backward()
        grads.append(theta.grad)
    return torch.stack(grads).mean(0)


@pytest.mark.parametrize("mode", AGGREGATIONS.names())
def test_one_batch_equals_micro_batches_equals_ranks(mode):
    one = _grad(mode, [[list(range(N))]])
    four_micro = _grad(mode, [[[0, 1], [2, 3], [4, 5], [6, 7]]])
    two_ranks_two_micro = _grad(mode, [[[0, 1], [2, 3]], [[4, 5], [6, 7]]])
    uneven = _grad(mode, [[[0], [1, 2, 3]], [[4, 5, 6], [7]]])
    assert one.abs().max() > 1e-3
    for g in (four_micro, two_ranks_two_micro, uneven):
        assert torch.allclose(g, one, atol=1e-6, rtol=0), (mode, (g - one).abs().max())


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean"])
def test_equal_micro_batch_weights_would_change_the_objective(mode):
    """The pre-normaliser behaviour (each micro-batch's own mean, weighted equally) differs: the test above can fail."""
    one = _grad(mode, [[list(range(N))]])
    equal_weights = _grad(mode, [[[0, 1], [2, 3], [4, 5], [6, 7]]], global_counts=False)
    assert (equal_weights - one).abs().max() > 1e-3


def test_batch_counts():
    _, mask, _, _ = _problem()
    assert batch_counts(mask) == (28.0, 7.0)
