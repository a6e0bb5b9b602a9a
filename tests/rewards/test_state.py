"""Model-state rewards (TARS): pooling, the pairing rule and the alignment values on hand-built states."""

from __future__ import annotations

import pytest
import torch

from speechrl.rewards.state import STATE_REWARDS, StateBatch, pool_states, text_partners

# one question, G = 4: rows 0, 1 speech-prompted, rows 2, 3 text-prompted
MODALITY, QUESTION = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 0, 0])


def test_pool_states_averages_each_layer_over_the_completion_and_drops_the_embeddings():
    emb = torch.full((2, 3, 2), 99.0)  # the embedding output: never pooled
    layer = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [50.0, 50.0]], [[2.0, 2.0], [0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    pooled = pool_states([emb, layer, 2 * layer], mask)
    assert pooled.shape == (2, 2, 2)
    assert pooled[0, 0].tolist() == [2.0, 1.0] and pooled[1, 0].tolist() == [2.0, 2.0] and pooled[0, 1].tolist() == [4.0, 2.0]
    assert pool_states([emb, layer], torch.zeros(2, 3))[0].abs().sum() == 0  # empty completion -> 0
    with pytest.raises(ValueError, match="at least one layer"):
        pool_states([emb], mask)


def test_speech_rows_pair_with_the_correct_text_rows_of_their_question():
    two = StateBatch(modality=torch.tensor([0, 1, 1, 0, 1, 1]), question=torch.tensor([0, 0, 0, 1, 1, 1]),
                     correct=torch.tensor([1, 1, 0, 0, 0, 0]))
    assert text_partners(two) == [[1], [], [], [], [], []]  # question 1: no correct text row -> unpaired


def test_rep_alignment_identical_states_give_1_orthogonal_0():
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # (L=2, H=2)
    pooled = torch.stack([s, torch.tensor([[0.0, 1.0], [-1.0, 0.0]]), s, s])  # row 1 orthogonal to row 2 per layer
    b = StateBatch(MODALITY, QUESTION, correct=torch.tensor([0, 0, 1, 0]), pooled=pooled)
    r, m = STATE_REWARDS.get("rep_alignment")(b)
    assert r.tolist() == pytest.approx([1.0, 0.0, 0.0, 0.0]) and m["state/rep_unpaired"] == 0.0  # text rows: 0
    # two correct text rows: the mean of the cosines with each
    both = StateBatch(MODALITY, QUESTION, correct=torch.tensor([0, 0, 1, 1]),
                      pooled=torch.stack([s, s, s, torch.tensor([[0.0, 1.0], [1.0, 0.0]])]))
    assert STATE_REWARDS.get("rep_alignment")(both)[0][0].item() == pytest.approx(0.5)
    none = StateBatch(MODALITY, QUESTION, correct=torch.tensor([1, 1, 0, 0]), pooled=pooled)
    r, m = STATE_REWARDS.get("rep_alignment")(none)
    assert r.tolist() == [0.0] * 4 and m["state/rep_unpaired"] == 1.0  # no correct text completion: nothing to align to


def test_beh_alignment_uses_the_correct_text_rows_else_the_reference():
    vocab = {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [0.6, 0.8]}
    embed = lambda texts: torch.tensor([vocab[t] for t in texts])  # noqa: E731  (unit vectors)
    b = StateBatch(MODALITY, QUESTION, correct=torch.tensor([0, 0, 1, 0]), texts=["a", "b", "a", "c"],
                   references=["c"] * 4, embed=embed)
    r, m = STATE_REWARDS.get("beh_alignment")(b)
    assert r.tolist() == pytest.approx([1.0, 0.0, 0.0, 0.0]) and m["state/beh_fallback"] == 0.0
    none = StateBatch(MODALITY, QUESTION, correct=torch.zeros(4), texts=["a", "b", "a", "c"], references=["c"] * 4, embed=embed)
    r, m = STATE_REWARDS.get("beh_alignment")(none)
    assert r.tolist() == pytest.approx([0.6, 0.8, 0.0, 0.0]) and m["state/beh_fallback"] == 1.0


def test_missing_inputs_are_named():
    b = StateBatch(MODALITY, QUESTION, correct=torch.zeros(4))
    with pytest.raises(ValueError, match="pooled hidden states"):
        STATE_REWARDS.get("rep_alignment")(b)
    with pytest.raises(ValueError, match="embedding function"):
        STATE_REWARDS.get("beh_alignment")(b)
