"""Bootstrap confidence intervals and the paired bootstrap test; metrics.json gets ``ci``."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from speechrl.evaluation import bootstrap as B
from speechrl.rewards import score_corpus, score_samples

WORDS = "the a cat dog sat on mat ran fast slow big small house tree river".split()


def corpus(n: int, keep: int, seed: int = 0, tail_seed: int | None = None) -> tuple[list[str], list[list[str]]]:
    """``n`` 10-word references and hypotheses that keep the first ``keep`` words of each (random tails)."""
    rng = random.Random(seed)
    refs = [" ".join(rng.choices(WORDS, k=10)) for _ in range(n)]
    if tail_seed is not None:
        rng = random.Random(tail_seed)
    hyps = [" ".join(r.split()[:keep] + rng.choices(WORDS, k=10 - keep)) for r in refs]
    return hyps, [[r] for r in refs]


def test_resamples_are_seeded() -> None:
    a, b = B.resample_indices(7, 5, seed=3), B.resample_indices(7, 5, seed=3)
    assert a.shape == (5, 7) and (a == b).all() and not (a == B.resample_indices(7, 5, seed=4)).all()
    with pytest.raises(ValueError, match="at least one"):
        B.resample_indices(0)


@pytest.mark.parametrize("name", ["bleu", "chrf"])
def test_fast_sacrebleu_path_equals_recomputing_the_corpus_score(name: str) -> None:
    hyps, refs = corpus(40, 6)
    idx = B.resample_indices(40, 4, seed=1)
    fast = B.resampled_values(name, hyps, refs, idx)
    slow = [score_corpus(name, [hyps[i] for i in row], [refs[i] for i in row]) for row in idx]
    assert fast == pytest.approx(slow, abs=1e-9)


def test_per_sample_metric_uses_given_scores() -> None:
    per = [1.0, 0.0, None, 1.0]
    idx = np.array([[0, 1, 2, 3], [0, 0, 2, 2], [2, 2, 2, 2]])
    vals = B.resampled_values("exact_match", ["a", "b", "c", "d"], [["x"]] * 4, idx, per)
    assert vals[:2] == pytest.approx([200 / 3, 100.0]) and np.isnan(vals[2])


@pytest.mark.parametrize("name", ["bleu", "chrf", "exact_match"])
def test_ci_contains_point_estimate_and_narrows(name: str) -> None:
    widths = []
    for n in (30, 300):
        hyps, refs = corpus(n, 7)
        if name == "exact_match":  # a third exactly right
            hyps = [r[0] if i % 3 == 0 else h for i, (h, r) in enumerate(zip(hyps, refs))]
        point = score_corpus(name, hyps, refs)
        lo, hi = B.bootstrap_ci(name, hyps, refs, n_boot=500, seed=0)
        assert lo <= point <= hi and lo < hi
        widths.append(hi - lo)
    assert widths[1] < 0.6 * widths[0]  # ~ 1/sqrt(10) in theory


def test_metrics_ci_json_ready() -> None:
    hyps, refs = corpus(20, 5)
    per = {"exact_match": score_samples("exact_match", hyps, refs)}
    ci = B.metrics_ci(["bleu", "exact_match"], hyps, refs, per, n_boot=200)
    assert set(ci) == {"bleu", "exact_match"}
    assert ci["exact_match"] == [0.0, 0.0]
    assert B.metrics_ci(["exact_match"], ["a"], [["b"]], {"exact_match": [None]}, n_boot=10) == {"exact_match": [None, None]}


@pytest.mark.parametrize("name", ["bleu", "chrf", "exact_match"])
def test_paired_bootstrap(name: str) -> None:
    good, refs = corpus(200, 8)
    bad, _ = corpus(200, 3)
    similar, _ = corpus(200, 8, tail_seed=99)  # as good, other random tails
    if name == "exact_match":
        good = [r[0] if i % 2 == 0 else h for i, (h, r) in enumerate(zip(good, refs))]
        similar = [r[0] if i % 2 == 1 else h for i, (h, r) in enumerate(zip(similar, refs))]
    res = B.paired_bootstrap(name, bad, good, refs, n_boot=300)
    assert res["system"] > res["baseline"] and res["p_value"] < 0.05
    assert res["system"] == pytest.approx(score_corpus(name, good, refs))
    near = B.paired_bootstrap(name, similar, good, refs, n_boot=300)["p_value"]
    assert near > 0.01 and near > 5 * res["p_value"]  # near-equal systems: far from significant at 1%
    with pytest.raises(ValueError, match="baseline has 200 outputs, system 199"):
        B.paired_bootstrap(name, bad, good[:-1], refs)


def test_evaluate_writes_ci(tiny_model_dir, tiny_data, tiny_cfg) -> None:
    from speechrl.evaluation.evaluate import evaluate
    from speechrl.models.build import load
    from speechrl.report.results import load_result
    from speechrl.io import write_json
    from speechrl.training.data import load_split

    model, proc = load(tiny_model_dir)
    test = load_split(tiny_data["ast"], "test", proc)
    result, _ = evaluate(tiny_cfg, model, proc, test)
    assert set(result["ci"]) == set(result["decodings"])
    for mode, cis in result["ci"].items():
        assert set(cis) == set(result["decodings"][mode])
        for metric, (lo, hi) in cis.items():
            assert lo <= result["decodings"][mode][metric] + 1e-9 and result["decodings"][mode][metric] <= hi + 1e-9
    path = Path(tiny_cfg.results_dir) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"task": "ast", "system": "sft", "n": len(test), "seed": 0, "config_hash": "x", **result})
    assert load_result(path).decodings == result["decodings"]  # the report ignores the extra key
