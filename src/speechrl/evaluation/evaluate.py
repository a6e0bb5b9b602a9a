"""Evaluation: greedy and sampled decoding of the test split, scored with the shared scorers.

Writes ``samples.jsonl`` (per example: reference, each decoding's output and per-sample scores) and
``metrics.json`` (corpus-level metrics per decoding, 0-100 scale), the format the report reads, plus
``ci``: ``{mode: {metric: [lo, hi]}}``, 95% bootstrap confidence intervals of each corpus metric
(1000 seeded resamples of the test items; see :mod:`speechrl.evaluation.bootstrap`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from speechrl.config import Config
from speechrl.evaluation.bootstrap import metrics_ci
from speechrl.models.build import Model
from speechrl.progress import Progress
from speechrl.rewards import score_both
from speechrl.training.data import Processor, Sample
from speechrl.training.rollout import sample

log = logging.getLogger("speechrl")


@torch.no_grad()
def decode(cfg: Config, model: Model, proc: Processor, samples: list[Sample], mode: str, desc: str) -> list[str]:
    """One output per sample; ``mode`` is greedy or sampled (seeded, evaluate.temperature/top_p)."""
    ev = cfg.evaluate
    model.eval()
    torch.manual_seed(cfg.seed)
    outs: list[str] = []
    with Progress(len(samples), f"{desc} {mode}", log_every=max(1, len(samples) // 4), unit="utt") as prog:
        for i in range(0, len(samples), ev.batch_size):
            chunk = samples[i:i + ev.batch_size]
            r = sample(model, proc, chunk, 1, do_sample=(mode == "sampled"), temperature=ev.temperature,
                       top_p=ev.top_p, max_new_tokens=ev.max_new_tokens)
            outs.extend(r.texts)
            prog.update(len(chunk))
    return outs


def evaluate(cfg: Config, model: Model, proc: Processor, samples: list[Sample], desc: str = "eval"
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Returns (metrics by decoding, per-sample rows)."""
    refs = [s.example.references for s in samples]
    rows: list[dict[str, Any]] = [
        {"id": s.example.id, "prompt": s.example.prompt, "references": s.example.references, "outputs": {}, "scores": {}}
        for s in samples
    ]
    metrics: dict[str, dict[str, float]] = {}
    ci: dict[str, dict[str, list[float | None]]] = {}
    timing: dict[str, float] = {}
    for mode in cfg.evaluate.decodings:
        t0 = time.perf_counter()
        hyps = decode(cfg, model, proc, samples, mode, desc)
        timing[f"decode_{mode}_s"] = time.perf_counter() - t0
        metrics[mode] = {}
        per_metric: dict[str, list[float | None]] = {}
        for name in cfg.evaluate.metrics:
            metrics[mode][name], per = score_both(name, hyps, refs)
            per_metric[name] = per
            for row, v in zip(rows, per):
                row["scores"].setdefault(mode, {})[name] = v
        for row, h in zip(rows, hyps):
            row["outputs"][mode] = h
        if hyps:
            t1 = time.perf_counter()
            ci[mode] = metrics_ci(list(cfg.evaluate.metrics), hyps, refs, per_metric, seed=cfg.seed)
            timing[f"bootstrap_{mode}_s"] = time.perf_counter() - t1
        log.info(f"[{desc}] {mode}: " + " ".join(f"{k} {v:.2f}" for k, v in metrics[mode].items()))
    return {"decodings": metrics, "ci": ci, "timing": timing}, rows
