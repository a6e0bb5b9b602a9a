"""Evaluation writes corpus metrics per decoding and per-sample scores; sampled decoding is seeded."""

from __future__ import annotations

import math

from speechrl.evaluation.evaluate import evaluate
from speechrl.models.build import load
from speechrl.training.data import load_split


def test_metrics_and_rows(tiny_model_dir, tiny_data, tiny_cfg):
    model, proc = load(tiny_model_dir)
    test = load_split(tiny_data["ast"], "test", proc)
    result, rows = evaluate(tiny_cfg, model, proc, test)
    assert set(result["decodings"]) == {"greedy", "sampled"}
    for mode, metrics in result["decodings"].items():
        assert set(metrics) == {"bleu", "chrf", "exact_match"}
        assert all(0 <= v <= 100 and math.isfinite(v) for v in metrics.values())
    assert len(rows) == len(test) and set(rows[0]["outputs"]) == {"greedy", "sampled"}
    again, _ = evaluate(tiny_cfg, model, proc, test)
    assert again["decodings"] == result["decodings"]
