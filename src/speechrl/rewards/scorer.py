"""The :class:`Scorer` record: one metric, usable as an RL reward and as an evaluation metric.

Its own module so that :mod:`speechrl.rewards.cache` (which keys on a scorer) and
:mod:`speechrl.rewards.base` (which scores through the cache) both import it without importing each
other. The contract itself is described in :mod:`speechrl.rewards.base`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
    optional_columns: tuple[str, ...] = ()
    """Columns the scorer uses when present (e.g. ``("choices",)``); part of the cache key like ``columns``."""
    cacheable: bool = True
    """False for scorers whose result is not a function of (hypothesis, references, columns)."""
    file_columns: tuple[str, ...] = ()
    """Columns whose path values are cached by the file's *content* (sha1 of its bytes), not its name."""
    references: bool = True
    """Compares the output with the references (text, or a transcript for ASR-WER); False for reference-free
    (DNSMOS, UTMOS) and clean-audio (PESQ, STOI, SI-SDR) metrics. Such a scorer needs real references:
    :func:`check_references`."""
    settings: tuple[str, ...] = ()
    """Environment variables that choose the scorer's model or back-end; their values are part of the cache key."""
