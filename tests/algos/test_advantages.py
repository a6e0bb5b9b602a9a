"""Group advantages: hand-computed values, std options, degenerate groups, errors."""

from __future__ import annotations

import math

import pytest
import torch

from speechrl.algos import ADVANTAGES

S = math.sqrt(5 / 3)  # unbiased std of [1, 2, 3, 4]


def test_grpo_hand_computed():
    adv, m = ADVANTAGES.get("grpo")(torch.tensor([1.0, 2, 3, 4, 5, 5, 5, 5]), 4)
    expected = torch.tensor([-1.5, -0.5, 0.5, 1.5]) / (S + 1e-6)
    assert torch.allclose(adv[:4], expected, atol=1e-6)
    assert torch.equal(adv[4:], torch.zeros(4))  # equal rewards -> no signal
    assert m["adv/zero_std_groups"] == 0.5


def test_grpo_biased_std_and_scales():
    r = torch.tensor([1.0, 2, 3, 4])
    biased, _ = ADVANTAGES.get("grpo")(r, 4, unbiased=False)
    assert torch.allclose(biased, torch.tensor([-1.5, -0.5, 0.5, 1.5]) / (math.sqrt(1.25) + 1e-6), atol=1e-6)
    none, _ = ADVANTAGES.get("grpo")(r, 4, scale="none")
    assert torch.allclose(none, torch.tensor([-1.5, -0.5, 0.5, 1.5]))
    r2 = torch.tensor([0.0, 2, 10, 14])
    batch, _ = ADVANTAGES.get("grpo")(r2, 2, scale="batch")
    assert torch.allclose(batch, torch.tensor([-1.0, 1, -2, 2]) / (r2.std() + 1e-6))


def test_dr_grpo_is_grpo_without_std():
    r = torch.rand(24)
    assert torch.equal(ADVANTAGES.get("dr_grpo")(r, 8)[0], ADVANTAGES.get("grpo")(r, 8, scale="none")[0])


def test_errors_name_the_tensor():
    with pytest.raises(ValueError, match="group size 3 does not divide the batch: rewards has 8 entries"):
        ADVANTAGES.get("grpo")(torch.ones(8), 3)
    with pytest.raises(ValueError, match=r"rewards has non-finite values at indices \[1\]"):
        ADVANTAGES.get("grpo")(torch.tensor([1.0, float("nan")]), 2)
    with pytest.raises(ValueError, match="must be 1-D"):
        ADVANTAGES.get("grpo")(torch.ones(2, 2), 2)
    with pytest.raises(ValueError, match="unknown advantage scale"):
        ADVANTAGES.get("grpo")(torch.ones(2), 2, scale="batchy")
