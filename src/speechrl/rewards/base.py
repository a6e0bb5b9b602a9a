"""The scorer contract shared by RL rewards and evaluation metrics.

A :class:`Scorer` takes a batch and returns one score per sample::

    scorer.sample(hyps, refs, **columns) -> list[float | None]

* ``hyps``: one generated string per sample;
* ``refs``: one *list* of reference strings per sample (a plain string is taken as a one-item list);
* ``columns``: any further dataset columns as keyword arguments (e.g. ``audio=``); a scorer names
  the ones it needs in :attr:`Scorer.columns` and ignores the rest;
* each score is in ``[0, 1]``, higher is better, or ``None`` when the scorer does not apply to the
  sample or failed on it.

``scorer.corpus(hyps, refs)`` gives the corpus-level value on a 0-100 scale (``metrics.json``);
scorers without one report ``100 * mean`` of their per-sample scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from speechrl.registry import Registry

SampleFn = Callable[..., list[float | None]]
CorpusFn = Callable[[list[str], list[list[str]]], float]
Refs = Sequence[Sequence[str] | str]


@dataclass(frozen=True)
class Scorer:
    """One metric, usable as an RL reward (``sample``) and as an evaluation metric (``corpus``)."""

    name: str
    sample: SampleFn
    corpus: CorpusFn | None = None
    description: str = ""
    columns: tuple[str, ...] = ()
    """Keyword columns the scorer needs besides ``hyps``/``refs`` (e.g. ``("audio",)``)."""


REWARDS: Registry[Scorer] = Registry("reward")


def register(scorer: Scorer) -> Scorer:
    """Add ``scorer`` to :data:`REWARDS` under its name."""
    return REWARDS.register(scorer.name)(scorer)


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
    return scorer.sample(list(hyps), check_inputs(hyps, refs), **columns)


def score_corpus(name: str, hyps: Sequence[str], refs: Refs, **columns: Any) -> float:
    """Corpus-level score of ``name`` on a 0-100 scale (the ``metrics.json`` value).

    Without a dedicated corpus function: ``100 * mean`` over the samples whose score is not
    ``None``; ``nan`` if none has one.
    """
    scorer = REWARDS.get(name)
    checked = check_inputs(hyps, refs)
    check_columns(scorer, len(hyps), columns)
    if scorer.corpus is not None:
        return float(scorer.corpus(list(hyps), checked))
    return _mean100(scorer.sample(list(hyps), checked, **columns))


def score_both(name: str, hyps: Sequence[str], refs: Refs, **columns: Any) -> tuple[float, list[float | None]]:
    """``(score_corpus(...), score_samples(...))`` with the per-sample scores computed only once."""
    scorer = REWARDS.get(name)
    checked = check_inputs(hyps, refs)
    check_columns(scorer, len(hyps), columns)
    per = scorer.sample(list(hyps), checked, **columns)
    corpus = float(scorer.corpus(list(hyps), checked)) if scorer.corpus is not None else _mean100(per)
    return corpus, per


def _mean100(scores: list[float | None]) -> float:
    vals = [s for s in scores if s is not None]
    return 100.0 * math.fsum(vals) / len(vals) if vals else math.nan


def combine(
    weights: dict[str, float], hyps: Sequence[str], refs: Refs, **columns: Any
) -> tuple[list[float], dict[str, list[float | None]]]:
    """Weighted sum of several scorers, per sample.

    Returns ``(totals, per_scorer)``: ``totals[i] = sum(w * score)``; where any scorer with a
    non-zero weight returned ``None`` for sample ``i``, ``totals[i]`` is ``nan`` (no silent
    renormalisation; the caller decides, e.g. drops or zeroes those samples). ``per_scorer`` maps
    each name to its raw per-sample scores. Unknown names raise the registry's error.
    """
    if not weights:
        raise ValueError("combine() needs at least one scorer weight, e.g. {'bleu': 1.0}")
    scorers = {name: REWARDS.get(name) for name in weights}
    checked = check_inputs(hyps, refs)
    per: dict[str, list[float | None]] = {}
    for name, scorer in scorers.items():
        check_columns(scorer, len(hyps), columns)
        per[name] = scorer.sample(list(hyps), checked, **columns)
    totals: list[float] = []
    for i in range(len(hyps)):
        parts = [(w, per[name][i]) for name, w in weights.items() if w != 0]
        if any(s is None for _, s in parts):
            totals.append(math.nan)
        else:
            totals.append(math.fsum(w * s for w, s in parts if s is not None))
    return totals, per
