"""Reading and validating the evaluate stage's ``metrics.json`` files.

Format (metric values on a 0-100 scale; a missing, null or NaN metric is shown as "—")::

    {"task": "sqa", "system": "grpo", "n": 60, "seed": 0, "config_hash": "ab12...",
     "decodings": {"greedy": {"bleu": 41.2, ...}, "sampled": {...}}}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from speechrl.io import read_json

REQUIRED: dict[str, type | tuple[type, ...]] = {
    "task": str, "system": str, "n": int, "seed": int, "config_hash": str, "decodings": dict,
}


@dataclass(frozen=True)
class Result:
    """One (task, system) evaluation: metric values per decoding."""

    path: Path
    task: str
    system: str
    n: int
    seed: int
    config_hash: str
    decodings: dict[str, dict[str, float | None]]


def load_result(path: str | Path) -> Result:
    """Parse one ``metrics.json``; a bad format is a ``ValueError`` naming the file and key."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    for key, tp in REQUIRED.items():
        if key not in data:
            raise ValueError(f"{path}: missing key '{key}'")
        if not isinstance(data[key], tp) or isinstance(data[key], bool):
            raise ValueError(f"{path}: key '{key}' must be {getattr(tp, '__name__', tp)}, got {data[key]!r}")
    decodings: dict[str, dict[str, float | None]] = {}
    for dec, values in data["decodings"].items():
        if not isinstance(values, dict):
            raise ValueError(f"{path}: key 'decodings.{dec}' must map metric names to numbers, got {values!r}")
        decodings[dec] = {}
        for metric, v in values.items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise ValueError(f"{path}: key 'decodings.{dec}.{metric}' must be a number or null, got {v!r}")
            decodings[dec][metric] = None if v is None or not math.isfinite(v) else float(v)  # NaN: not scored
    return Result(path, data["task"], data["system"], data["n"], data["seed"], data["config_hash"], decodings)


def load_results(paths: list[Path]) -> list[Result]:
    """Load every file; two files for the same (task, system, seed) are an error naming both."""
    if not paths:
        raise ValueError("no metrics files given to the report")
    seen: dict[tuple[str, str, int], Path] = {}
    results = []
    for p in paths:
        r = load_result(p)
        key = (r.task, r.system, r.seed)
        if key in seen:
            raise ValueError(f"two metrics files for task '{r.task}', system '{r.system}', seed {r.seed}: {seen[key]} and {r.path}")
        seen[key] = r.path
        results.append(r)
    return results


def per_seed(results: list[Result], decoding: str) -> dict[str, dict[str, dict[int, dict[str, float | None]]]]:
    """``task -> system -> seed -> metric -> value`` for one decoding."""
    out: dict[str, dict[str, dict[int, dict[str, float | None]]]] = {}
    for r in results:
        out.setdefault(r.task, {}).setdefault(r.system, {})[r.seed] = dict(r.decodings.get(decoding, {}))
    return out


def mean_ci(values: list[float]) -> tuple[float, float | None]:
    """Mean and the half-width of its 95% confidence interval (Student t, n - 1 degrees of freedom); None for n = 1."""
    import statistics

    from scipy.stats import t

    m = statistics.fmean(values)
    if len(values) < 2:
        return m, None
    return m, float(t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5)


def as_grid(results: list[Result], decoding: str) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, dict[str, float | None]]]]:
    """``(task -> system -> metric -> mean over seeds, same -> 95% CI half-width)`` for one decoding.

    A metric missing in some seed's file is averaged over the seeds that have it."""
    grid: dict[str, dict[str, dict[str, Any]]] = {}
    cis: dict[str, dict[str, dict[str, float | None]]] = {}
    for task, systems in per_seed(results, decoding).items():
        for system, seeds in systems.items():
            row, ci_row = grid.setdefault(task, {}).setdefault(system, {}), cis.setdefault(task, {}).setdefault(system, {})
            for m in dict.fromkeys(k for vals in seeds.values() for k in vals):
                vals = [v[m] for v in seeds.values() if v.get(m) is not None]
                if vals:
                    row[m], ci_row[m] = mean_ci(vals)
                else:
                    row[m], ci_row[m] = None, None
    return grid, cis


def paired_diff(results: list[Result], decoding: str, a: str, b: str, metrics: list[str]
                ) -> tuple[dict[str, dict[str, dict[str, float | None]]], dict[str, dict[str, dict[str, float | None]]]]:
    """``(task -> {"diff:a-b": metric -> mean of (a - b) over the seeds both have}, same -> 95% CI half-width)``.

    Paired by seed: the per-seed differences are averaged, their t-interval is the CI. Tasks without both
    systems are left out; a metric no common seed has is None."""
    seeds_by = per_seed(results, decoding)
    grid: dict[str, dict[str, dict[str, float | None]]] = {}
    cis: dict[str, dict[str, dict[str, float | None]]] = {}
    for task, systems in seeds_by.items():
        if a not in systems or b not in systems:
            continue
        key, row, ci_row = f"diff:{a}-{b}", {}, {}
        for m in metrics:
            d = [systems[a][sd][m] - systems[b][sd][m] for sd in systems[a]
                 if sd in systems[b] and systems[a][sd].get(m) is not None and systems[b][sd].get(m) is not None]
            row[m], ci_row[m] = mean_ci(d) if d else (None, None)
        grid[task], cis[task] = {key: row}, {key: ci_row}
    return grid, cis


ERROR_RATES = {"wer_pct": "asr_wer", "cer_pct": "asr_cer"}
"""Derived column -> the metric it comes from: ``asr_wer`` / ``asr_cer`` store ``100 * (1 - error rate)``
(speechrl.rewards.asr), so the error rate in percent is ``100 - value``."""


def add_error_rates(results: list[Result]) -> list[Result]:
    """``results`` with ``wer_pct = 100 - asr_wer`` and ``cer_pct = 100 - asr_cer`` added to every decoding
    that has the source metric (None stays None). Means, CIs and paired differences of the derived
    columns then come from the per-seed values like any other metric."""
    out = []
    for r in results:
        decodings = {}
        for dec, values in r.decodings.items():
            extra = {k: None if values[src] is None else 100.0 - values[src] for k, src in ERROR_RATES.items() if src in values}
            decodings[dec] = {**values, **extra}
        out.append(replace(r, decodings=decodings))
    return out
