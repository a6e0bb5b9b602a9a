"""Evaluation statistics: bootstrap confidence intervals and paired bootstrap significance tests.

**Confidence intervals** (:func:`bootstrap_ci`, :func:`metrics_ci`): the test items are resampled
with replacement ``n_boot`` times (default 1000) with a seeded ``numpy`` RNG (default seed 0, the
same resamples for every metric of a run), the metric is recomputed on every resample, and the
95% interval is the 2.5th and 97.5th percentile of those values (percentile bootstrap), on the
metric's 0-100 ``metrics.json`` scale:

* scorers with a corpus function (``bleu``, ``chrf``) are recomputed on each resample: for
  sacrebleu's BLEU and chrF this aggregates the per-sentence sufficient statistics of the resample
  (n-gram matches, lengths), which equals ``scorer.corpus(resampled hyps, refs)`` exactly but needs no
  re-tokenisation; any other corpus function is called on each resample;
* per-sample scorers (``bertscore``, ``exact_match``, ...) use the per-sample scores already
  computed: a resample's value is ``100 * mean`` of its non-``None`` scores (nothing is re-scored).

**Paired bootstrap** (:func:`paired_bootstrap`): compares two systems' outputs on the same items.
BLEU and chrF use sacrebleu's own paired bootstrap test (``sacrebleu.significance.PairedTest``,
``test_type="bs"``, seeded through ``SACREBLEU_SEED``); per-sample metrics use the same statistic
on per-sample means: ``p = (#{|d_b - mean(d)| > |d_obs|} + 1) / (n_boot + 1)`` with ``d_b`` the
resampled differences (Koehn 2004 / multeval). A small ``p`` means the difference is unlikely
under the null hypothesis of equal systems.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from speechrl.rewards.base import REWARDS, Refs, check_inputs, score_samples

N_BOOT = 1000
ALPHA = 0.05  # 95% intervals
SACREBLEU_METRICS = ("bleu", "chrf")


def resample_indices(n: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """``(n_boot, n)`` item indices drawn with replacement by ``numpy.random.default_rng(seed)``."""
    if n <= 0:
        raise ValueError("bootstrap needs at least one test item")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each item occurs in each resample: ``(n_boot, n)``."""
    return np.stack([np.bincount(row, minlength=n) for row in idx]).astype(np.float64)


def _interval(values: np.ndarray, alpha: float = ALPHA) -> tuple[float, float]:
    vals = values[np.isfinite(values)]
    if not len(vals):
        return math.nan, math.nan
    lo, hi = np.percentile(vals, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def _sacrebleu_metric(name: str) -> Any:
    from speechrl.rewards import text as T

    return T.bleu_metric(T.BLEU_TOKENIZE, False) if name == "bleu" else T.chrf_metric()


def _sacrebleu_stats(name: str, hyps: list[str], refs: list[list[str]]) -> tuple[Any, np.ndarray]:
    from speechrl.rewards.text import ref_streams

    metric = _sacrebleu_metric(name)
    stats = np.asarray(metric._extract_corpus_statistics(hyps, ref_streams(refs)), dtype=np.float64)
    return metric, stats


def resampled_values(name: str, hyps: Sequence[str], refs: Refs, idx: np.ndarray,
                     per_sample: Sequence[float | None] | None = None, **columns: Any) -> np.ndarray:
    """The metric ``name`` (0-100) on every resample ``idx[b]`` (see the module docstring)."""
    hyps = list(hyps)
    checked = check_inputs(hyps, refs)
    n = len(hyps)
    scorer = REWARDS.get(name)
    if scorer.corpus is not None:
        if name in SACREBLEU_METRICS:
            metric, stats = _sacrebleu_stats(name, hyps, checked)
            summed = _counts(idx, n) @ stats
            return np.array([metric._compute_score_from_stats(list(row)).score for row in summed])
        needed = {c: list(columns[c]) for c in scorer.columns}  # audio scorers' corpus values read their columns
        return np.array([float(scorer.corpus([hyps[i] for i in row], [checked[i] for i in row],
                                             **{c: [v[i] for i in row] for c, v in needed.items()})) for row in idx])
    if per_sample is None:
        per_sample = score_samples(name, hyps, checked, **columns)
    vals = np.array([math.nan if s is None else float(s) for s in per_sample])
    ok = np.isfinite(vals).astype(np.float64)
    counts = _counts(idx, n)
    total, k = counts @ np.nan_to_num(vals), counts @ ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > 0, 100.0 * total / np.maximum(k, 1), math.nan)


def bootstrap_ci(name: str, hyps: Sequence[str], refs: Refs, per_sample: Sequence[float | None] | None = None,
                 n_boot: int = N_BOOT, seed: int = 0, alpha: float = ALPHA, **columns: Any) -> tuple[float, float]:
    """Percentile bootstrap ``(lo, hi)`` (0-100) of the corpus metric ``name``; ``nan`` if it has no value."""
    idx = resample_indices(len(hyps), n_boot, seed)
    return _interval(resampled_values(name, hyps, refs, idx, per_sample, **columns), alpha)


def metrics_ci(names: Sequence[str], hyps: Sequence[str], refs: Refs,
               per_sample: dict[str, Sequence[float | None]] | None = None, n_boot: int = N_BOOT, seed: int = 0,
               alpha: float = ALPHA, **columns: Any) -> dict[str, list[float | None]]:
    """``{metric: [lo, hi]}`` for every metric, all on the same resamples; non-finite bounds are ``None`` (JSON)."""
    idx = resample_indices(len(hyps), n_boot, seed)
    per_sample = per_sample or {}
    out: dict[str, list[float | None]] = {}
    for name in names:
        lo, hi = _interval(resampled_values(name, hyps, refs, idx, per_sample.get(name), **columns), alpha)
        out[name] = [v if math.isfinite(v) else None for v in (lo, hi)]
    return out


@contextmanager
def _sacrebleu_seed(seed: int):
    old = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = str(seed)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SACREBLEU_SEED", None)
        else:
            os.environ["SACREBLEU_SEED"] = old


def paired_bootstrap(name: str, baseline: Sequence[str], system: Sequence[str], refs: Refs, n_boot: int = N_BOOT,
                     seed: int = 12345, **columns: Any) -> dict[str, Any]:
    """Paired bootstrap test of ``system`` against ``baseline`` (same items, same references).

    Returns ``{"metric", "baseline", "system", "p_value", "system_mean", "system_ci"}``: corpus scores
    (0-100), the p-value of the difference, and the system's bootstrap mean and 95% interval half-width
    ``system_ci`` (sacrebleu's convention: mean +- ci)."""
    if len(baseline) != len(system):
        raise ValueError(f"paired bootstrap: baseline has {len(baseline)} outputs, system {len(system)}")
    checked = check_inputs(list(baseline), refs)
    check_inputs(list(system), checked)
    if name in SACREBLEU_METRICS:
        from sacrebleu.significance import PairedTest

        from speechrl.rewards.text import ref_streams

        with _sacrebleu_seed(seed):
            test = PairedTest([("baseline", list(baseline)), ("system", list(system))], {name: _sacrebleu_metric(name)},
                              ref_streams(checked), test_type="bs", n_samples=n_boot)
            _, res = test()
        (base, sys_), = [v for k, v in res.items() if k != "System"]
        return {"metric": name, "baseline": float(base.score), "system": float(sys_.score), "p_value": float(sys_.p_value),
                "system_mean": float(sys_.mean), "system_ci": float(sys_.ci)}
    idx = resample_indices(len(baseline), n_boot, seed)
    per_b = score_samples(name, list(baseline), checked, **columns)
    per_s = score_samples(name, list(system), checked, **columns)
    bl = resampled_values(name, baseline, checked, idx, per_b)
    sy = resampled_values(name, system, checked, idx, per_s)
    base_score = float(resampled_values(name, baseline, checked, np.arange(len(baseline))[None], per_b)[0])
    sys_score = float(resampled_values(name, system, checked, np.arange(len(system))[None], per_s)[0])
    diffs = np.abs(sy - bl)
    stats = diffs - np.nanmean(diffs)
    p = (int(np.sum(stats > abs(sys_score - base_score))) + 1) / (len(stats) + 1)
    lo, hi = _interval(sy)
    return {"metric": name, "baseline": base_score, "system": sys_score, "p_value": p,
            "system_mean": float(np.nanmean(sy)), "system_ci": (hi - lo) / 2}
