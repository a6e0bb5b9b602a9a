"""The scorer contract shared by RL rewards and evaluation metrics.

A :class:`~speechrl.rewards.scorer.Scorer` (defined in :mod:`speechrl.rewards.scorer`, re-exported here)
takes a batch and returns one score per sample::

    scorer.sample(hyps, refs, **columns) -> list[float | None]

* ``hyps``: one generated string per sample;
* ``refs``: one *list* of reference strings per sample (a plain string is taken as a one-item list);
* ``columns``: any further dataset columns as keyword arguments (e.g. ``audio=``); a scorer names
  the ones it needs in :attr:`Scorer.columns` and ignores the rest;
* each score is in ``[0, 1]``, higher is better, or ``None`` when the scorer does not apply to the
  sample or failed on it.

``scorer.corpus(hyps, refs)`` gives the corpus-level value on a 0-100 scale (``metrics.json``);
scorers without one report ``100 * mean`` of their per-sample scores.

Every per-sample call below (``score_samples``, ``score_both``, ``score_corpus``, ``combine``) goes
through :func:`speechrl.rewards.cache.cached_sample`: results are cached per (scorer, hypothesis,
references, used columns), and a scorer that raises on a sample gives ``None`` for that sample only
(counted as ``reward/failed``), never a silent 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from speechrl.registry import Registry
from speechrl.rewards.cache import cached_sample
from speechrl.rewards.scorer import CorpusFn, Refs, SampleFn, Scorer  # noqa: F401  (re-exported: the contract's types)

REWARDS: Registry[Scorer] = Registry("reward")


def register(scorer: Scorer) -> Scorer:
    """Add ``scorer`` to :data:`REWARDS` under its name."""
    return REWARDS.register(scorer.name)(scorer)


def check_references(names: Sequence[str], examples: Sequence[Any], key: str) -> None:
    """Raise ``ValueError`` when a scorer of ``names`` that compares with the references meets examples without
    real ones (``extra.has_transcript`` false: DNS2020 without transcripts); they would score ``None`` (a NaN
    reward, dropped) silently. ``key``: the config key that named the scorers."""
    lacking = [e.id for e in examples if (getattr(e, "extra", None) or {}).get("has_transcript") is False]
    users = [n for n in names if REWARDS.get(n).references]
    if lacking and users:
        raise ValueError(f"{key}: {', '.join(users)} compare(s) the output with the transcript, but {len(lacking)} of "
                         f"{len(examples)} examples have none (first: {lacking[0]}); remove {', '.join(users)} from {key} "
                         "or give the transcripts (data.hub.dns2020_transcripts)")


def check_inputs(hyps: Sequence[str], refs: Refs) -> list[list[str]]:
    """Validate a batch and return ``refs`` as lists of strings.

    Raises ``ValueError`` for different lengths, a sample without references or an empty
    (blank) reference string, naming the sample index.
    """
    if len(hyps) != len(refs):
        raise ValueError(f"hyps and refs differ in length: {len(hyps)} hypotheses, {len(refs)} reference lists")
    out: list[list[str]] = []
    for i, (hyp, ref) in enumerate(zip(hyps, refs)):
        if not isinstance(hyp, str):
            raise ValueError(f"sample {i}: hypothesis must be a string, got {type(hyp).__name__}")
        ref_list = [ref] if isinstance(ref, str) else list(ref)
        if not ref_list:
            raise ValueError(f"sample {i}: no reference given")
        for r in ref_list:
            if not isinstance(r, str) or not r.strip():
                raise ValueError(f"sample {i}: empty reference {r!r}")
        out.append(ref_list)
    return out


def check_columns(scorer: Scorer, n: int, columns: dict[str, Any]) -> None:
    """Every column ``scorer`` needs is present with one value per sample."""
    for col in scorer.columns:
        if col not in columns:
            raise ValueError(f"scorer '{scorer.name}' needs the column '{col}'; got: {', '.join(sorted(columns)) or 'none'}")
        if len(columns[col]) != n:
            raise ValueError(f"scorer '{scorer.name}': column '{col}' has {len(columns[col])} values for {n} samples")


def score_samples(name: str, hyps: Sequence[str], refs: Refs, **columns: Any) -> list[float | None]:
    """Per-sample scores in [0, 1] (``None`` = not applicable) of the scorer ``name``."""
    scorer = REWARDS.get(name)
    check_columns(scorer, len(hyps), columns)
    return cached_sample(scorer, list(hyps), check_inputs(hyps, refs), **columns)


def score_corpus(name: str, hyps: Sequence[str], refs: Refs, **columns: Any) -> float:
    """Corpus-level score of ``name`` on a 0-100 scale (the ``metrics.json`` value).

    Without a dedicated corpus function: ``100 * mean`` over the samples whose score is not
    ``None``; ``nan`` if none has one.
    """
    scorer = REWARDS.get(name)
    checked = check_inputs(hyps, refs)
    check_columns(scorer, len(hyps), columns)
    if scorer.corpus is not None:
        return _corpus(scorer, hyps, checked, columns)
    return _mean100(cached_sample(scorer, list(hyps), checked, **columns))


def score_both(name: str, hyps: Sequence[str], refs: Refs, **columns: Any) -> tuple[float, list[float | None]]:
    """``(score_corpus(...), score_samples(...))`` with the per-sample scores computed only once."""
    scorer = REWARDS.get(name)
    checked = check_inputs(hyps, refs)
    check_columns(scorer, len(hyps), columns)
    per = cached_sample(scorer, list(hyps), checked, **columns)
    corpus = _corpus(scorer, hyps, checked, columns) if scorer.corpus is not None else _mean100(per)
    return corpus, per


def _corpus(scorer: Scorer, hyps: Sequence[str], refs: list[list[str]], columns: dict[str, Any]) -> float:
    """The scorer's corpus function, given the columns it declares (e.g. ``audio=`` for DNSMOS)."""
    return float(scorer.corpus(list(hyps), refs, **{c: columns[c] for c in scorer.columns}))


def _mean100(scores: list[float | None]) -> float:
    vals = [s for s in scores if s is not None]
    return 100.0 * math.fsum(vals) / len(vals) if vals else math.nan


NORMALIZERS = ("zscore", "minmax")


def normalize_scores(scores: Sequence[float | None], method: str | None) -> list[float | None]:
    """Normalise one scorer's scores across the batch; ``None`` stays ``None`` and is left out of the statistics.

    * ``None``: unchanged;
    * ``"zscore"``: ``(x - mean) / std`` (population std); a constant batch (std 0) gives 0.0 for every sample;
    * ``"minmax"``: ``(x - min) / (max - min)`` into [0, 1]; a constant batch gives 0.5 for every sample.
    """
    if method is None:
        return list(scores)
    if method not in NORMALIZERS:
        raise ValueError(f"unknown reward normalisation {method!r}; valid: {', '.join(NORMALIZERS)} or None")
    vals = [s for s in scores if s is not None]
    if not vals:
        return list(scores)
    if method == "zscore":
        mean = math.fsum(vals) / len(vals)
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / len(vals))
        return [None if s is None else ((s - mean) / std if std > 1e-12 else 0.0) for s in scores]
    lo, hi = min(vals), max(vals)
    return [None if s is None else ((s - lo) / (hi - lo) if hi - lo > 1e-12 else 0.5) for s in scores]


def combine(
    weights: dict[str, float], hyps: Sequence[str], refs: Refs, *, normalize: dict[str, str | None] | None = None,
    stats: dict[str, float] | None = None, **columns: Any
) -> tuple[list[float], dict[str, list[float | None]]]:
    """Weighted sum of several scorers, per sample.

    Returns ``(totals, per_scorer)``: ``totals[i] = sum(w * score)``; where any scorer with a
    non-zero weight returned ``None`` for sample ``i``, ``totals[i]`` is ``nan`` (no silent
    renormalisation; the caller decides, e.g. drops or zeroes those samples). ``per_scorer`` maps
    each name to its raw per-sample scores. Unknown names raise the registry's error.

    ``normalize`` (optional) maps scorer names to ``"zscore"``, ``"minmax"`` or ``None``: that
    scorer's scores are normalised across this batch (:func:`normalize_scores`) before weighting;
    ``per_scorer`` still holds the raw scores. ``stats`` (optional dict) receives the cache and
    failure counters (``reward/cache_hits``, ``reward/cache_misses``, ``reward/failed``) of this call.
    """
    if not weights:
        raise ValueError("combine() needs at least one scorer weight, e.g. {'bleu': 1.0}")
    scorers = {name: REWARDS.get(name) for name in weights}
    normalize = dict(normalize or {})
    for name, method in normalize.items():
        if name not in weights:
            raise ValueError(f"normalize names '{name}', which is not among the combined scorers: {', '.join(weights)}")
        if method is not None and method not in NORMALIZERS:
            raise ValueError(f"unknown reward normalisation {method!r} for '{name}'; valid: {', '.join(NORMALIZERS)} or None")
    checked = check_inputs(hyps, refs)
    per: dict[str, list[float | None]] = {}
    for name, scorer in scorers.items():
        check_columns(scorer, len(hyps), columns)
        per[name] = cached_sample(scorer, list(hyps), checked, stats=stats, **columns)
    used = {name: normalize_scores(per[name], normalize.get(name)) for name in weights}
    totals: list[float] = []
    for i in range(len(hyps)):
        parts = [(w, used[name][i]) for name, w in weights.items() if w != 0]
        if any(s is None for _, s in parts):
            totals.append(math.nan)
        else:
            totals.append(math.fsum(w * s for w, s in parts if s is not None))
    return totals, per


# ------------------------------------------------------------------------------- named composites
SE_COMPOSITE_SCORERS = ("dnsmos_ovrl", "asr_wer", "utmos")


def se_composite(total: float = 1.0, *, dnsmos: str = "dnsmos_ovrl", wer: str = "asr_wer", utmos: str = "utmos",
                 check: bool = True) -> dict[str, float]:
    """Weights of the composite perceptual reward of SE-GSPO ("Post-Training Speech Enhancement LMs with
    Perceptual Rewards", 2026; speech enhancement): DNSMOS OVRL + (1 - WER) + UTMOS.

    Each term is the named scorer's per-sample score on its [0, 1] scale, as defined by that scorer:
    DNSMOS OVRL ``(x - 1) / 4`` of the 1-5 MOS; ASR ``1 - WER`` (WER clipped to [0, 1]); UTMOS
    ``(x - 1) / 4`` of its 1-5 MOS. Equal weights ``total / 3`` each: with the default ``total=1``
    the composite is the mean of the three and stays in [0, 1]; ``total=3`` gives the plain sum.
    Use as ``combine(se_composite(), hyps, refs, audio=..., ...)``. With ``check`` the three names
    must be registered (the registry's error lists the valid names).
    """
    names = (dnsmos, wer, utmos)
    if len(set(names)) != 3:
        raise ValueError(f"se_composite needs three different scorers, got {names}")
    if check:
        for n in names:
            REWARDS.get(n)
    return {n: total / 3.0 for n in names}


COMPOSITES: dict[str, Callable[..., dict[str, float]]] = {"se_composite": se_composite}
"""Named reward combinations: name -> function returning a ``combine`` weights dict."""


def composite_weights(name: str, **kwargs: Any) -> dict[str, float]:
    """The weights dict of the named composite (e.g. ``"se_composite"``)."""
    if name not in COMPOSITES:
        raise ValueError(f"unknown reward composite '{name}'; valid: {', '.join(sorted(COMPOSITES))}")
    return COMPOSITES[name](**kwargs)
