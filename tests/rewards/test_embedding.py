"""embedding_cosine: hand-checked cosines with the packaged all-MiniLM-L6-v2, best reference, [0, 1] mapping."""

from __future__ import annotations

import numpy as np
import pytest

from speechrl.rewards import REWARDS, score_corpus
from speechrl.rewards import embedding as E


@pytest.fixture(scope="module")
def scorer():
    s = REWARDS.get("embedding_cosine")
    s.sample(["warm up"], [["warm up"]])
    return s


def test_identical_related_unrelated(scorer) -> None:
    hyps = ["the cat sat on the mat", "the cat sat on the mat", "quantum chromodynamics lecture notes", ""]
    refs = [["the cat sat on the mat"], ["a cat was sitting on a mat"], ["my dog likes pizza"], ["anything"]]
    s = scorer.sample(hyps, refs)
    assert s[0] == pytest.approx(1.0, abs=1e-5)
    assert 0.7 < s[1] < 1.0
    assert 0.0 <= s[2] < 0.3 and s[2] < s[1]
    assert s[3] == 0.0  # blank hypothesis
    assert all(0.0 <= v <= 1.0 for v in s)


def test_hand_checked_cosine_and_best_reference(scorer) -> None:
    h, r1, r2 = "a small dog runs in the park", "stock markets fell sharply", "a little puppy running in a park"
    e = E.encode([h, r1, r2])
    assert np.linalg.norm(e, axis=1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    expected = max(0.0, float(e[0] @ e[1]), float(e[0] @ e[2]))
    assert expected == pytest.approx(float(e[0] @ e[2]))
    assert scorer.sample([h], [[r1, r2]])[0] == pytest.approx(expected, abs=1e-5)
    assert score_corpus("embedding_cosine", [h, h], [[r1], [r2]]) == pytest.approx(
        50.0 * (max(0.0, float(e[0] @ e[1])) + float(e[0] @ e[2])), abs=1e-3)


def test_negative_cosine_maps_to_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    vecs = {"x": [1.0, 0.0], "y": [-1.0, 0.0], "z": [0.6, 0.8]}
    monkeypatch.setattr(E, "encode", lambda texts: np.array([vecs[t] for t in texts]))
    assert E._embedding_cosine(["x", "x"], [["y"], ["y", "z"]]) == pytest.approx([0.0, 0.6])


def test_model_is_loaded_once_and_configurable(monkeypatch: pytest.MonkeyPatch, scorer) -> None:
    assert E.embedder(E.embedding_model_path()) is E.embedder(E.embedding_model_path())
    monkeypatch.setenv(E.EMBEDDING_MODEL_ENV, "/nonexistent/model")
    assert E.embedding_model_path() == "/nonexistent/model"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="SPEECHRL_EMBEDDING_MODEL"):
        E.embedder("/nonexistent/model")
