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


def test_estimators_ignore_keywords_they_do_not_use():
    r = torch.tensor([1.0, 2, 3, 4])
    extra = {"mask": torch.ones(4, 3), "ids": torch.zeros(4, 3), "surprisal": torch.zeros(4, 3), "modality": torch.zeros(4)}
    assert torch.equal(ADVANTAGES.get("grpo")(r, 4, **extra)[0], ADVANTAGES.get("grpo")(r, 4)[0])
    assert torch.equal(ADVANTAGES.get("dr_grpo")(r, 4, **extra)[0], ADVANTAGES.get("dr_grpo")(r, 4)[0])


def test_modality_hand_computed():
    # group 1: speech [1, 2] (mu 1.5), text [5, 7] (mu 6); group 2 interleaved, one failed (NaN) speech reward
    r = torch.tensor([1.0, 2, 5, 7, 3, 9, float("nan"), 8])
    mod = torch.tensor([0, 0, 1, 1, 0, 1, 0, 1])
    adv, m = ADVANTAGES.get("modality")(r, 4, modality=mod)
    # group 2: speech {3} (NaN left out) -> 0; text {9, 8} mu 8.5 -> 0.5, -0.5; the NaN row -> 0
    assert torch.allclose(adv, torch.tensor([-0.5, 0.5, -1.0, 1.0, 0.0, 0.5, 0.0, -0.5]))
    assert m["reward/failed"] == 1.0 and m["reward/modality_0"] == 2.0 and m["reward/modality_1"] == 7.25
    # naive full-group GRPO would give every speech completion a negative advantage in group 1
    assert (ADVANTAGES.get("grpo")(r[:4], 4)[0][:2] < 0).all()


def test_modality_with_std():
    r = torch.tensor([1.0, 3, 10, 20])
    adv, _ = ADVANTAGES.get("modality")(r, 4, modality=torch.tensor([0, 0, 1, 1]), scale=True)
    s0, s1 = math.sqrt(2), math.sqrt(50)       # unbiased std of [1, 3] and [10, 20]
    assert torch.allclose(adv, torch.tensor([-1 / (s0 + 1e-6), 1 / (s0 + 1e-6), -5 / (s1 + 1e-6), 5 / (s1 + 1e-6)]))


def test_modality_constant_rewards_give_exactly_zero_not_float32_noise():
    """Six speech completions of 0.3 with scale=True: the float32 version gave each ~0.029 (std ~3e-8 + 1e-6)."""
    r = torch.tensor([0.3] * 6 + [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    mod = torch.tensor([0] * 6 + [1] * 6)
    adv, m = ADVANTAGES.get("modality")(r, 12, modality=mod, scale=True)
    assert torch.equal(adv[:6], torch.zeros(6)) and adv.dtype == torch.float32
    s1 = math.sqrt(0.035)                      # unbiased std of 0.1..0.6 (sum of squares 0.175 / 5)
    expected = torch.tensor([-0.25, -0.15, -0.05, 0.05, 0.15, 0.25], dtype=torch.float64) / (s1 + 1e-6)
    assert torch.allclose(adv[6:].double(), expected, atol=1e-6)
    adv64, _ = ADVANTAGES.get("modality")(r.double(), 12, modality=mod, scale=True)
    assert adv64.dtype == torch.float64 and torch.equal(adv64[:6], torch.zeros(6, dtype=torch.float64))
    # without scale the constant modality is exactly 0 too (not float32 mean noise)
    assert torch.equal(ADVANTAGES.get("modality")(r, 12, modality=mod)[0][:6], torch.zeros(6))


def test_modality_errors():
    with pytest.raises(ValueError, match="needs modality"):
        ADVANTAGES.get("modality")(torch.ones(4), 2)
    with pytest.raises(ValueError, match=r"shape mismatch: modality \(3,\) vs rewards \(4,\)"):
        ADVANTAGES.get("modality")(torch.ones(4), 2, modality=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="non-negative integer ids"):
        ADVANTAGES.get("modality")(torch.ones(4), 2, modality=torch.zeros(4))
    with pytest.raises(ValueError, match=r"rewards has infinite values at indices \[3\]"):
        ADVANTAGES.get("modality")(torch.tensor([1.0, 2, 3, float("inf")]), 2, modality=torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="group size 3 does not divide the batch"):
        ADVANTAGES.get("modality")(torch.ones(4), 3, modality=torch.zeros(4, dtype=torch.long))
    with pytest.raises(KeyError, match="unknown advantage estimator 'lef'.*did you mean 'leaf'"):
        ADVANTAGES.get("lef")


def test_constant_groups_get_exactly_zero_not_float32_noise():
    """verl's float32 formula gives eight rewards of 0.3 an advantage of ~0.03 each; ours gives 0."""
    r = torch.full((8,), 0.3)
    naive = (r - r.mean()) / (r.std() + 1e-6)
    assert naive.abs().max() > 0.01  # the artefact this guards against
    adv, m = ADVANTAGES.get("grpo")(r, 8)
    assert torch.equal(adv, torch.zeros(8)) and adv.dtype == torch.float32 and m["adv/zero_std_groups"] == 1.0
    adv64, _ = ADVANTAGES.get("grpo")(r.double(), 8)
    assert adv64.dtype == torch.float64 and torch.equal(adv64, torch.zeros(8, dtype=torch.float64))
