"""Evaluation: greedy and sampled decoding of the test split, scored with the shared scorers.

Writes ``samples.jsonl`` (per example: reference, each decoding's output and per-sample scores) and
``metrics.json`` (corpus-level metrics per decoding, 0-100 scale), the format the report reads, plus
``ci``: ``{mode: {metric: [lo, hi]}}``, 95% bootstrap confidence intervals of each corpus metric
(1000 seeded resamples of the test items; see :mod:`speechrl.evaluation.bootstrap`).

Audio outputs (a codec LM: the processor's ``output`` is "audio") are decoded to
``<out_dir>/audio/<id>.<mode>.wav`` (16 kHz); their ``samples.jsonl`` rows hold
``"outputs": {mode: "audio/<id>.<mode>.wav"}`` (relative to ``out_dir``; None when nothing was
decodable) and ``"inputs": {"audio": <input clip>, "clean_audio": <clean reference, if any>}``
(absolute paths). The metrics get the columns they declare: the manifest's extra fields,
``input_audio`` and ``audio`` (the decoded outputs). ``decode`` in the result counts, per mode, the
invalid tokens dropped and the outputs that could not be decoded.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechrl.config import Config
from speechrl.evaluation.bootstrap import ALPHA, N_BOOT, metrics_ci, resample_indices
from speechrl.models.build import Model
from speechrl.progress import Progress
from speechrl.rewards import REWARDS, score_both
from speechrl.training.data import Processor, Sample
from speechrl.training.rollout import row_columns, safe_name, sample, scorer_columns, write_audio

log = logging.getLogger("speechrl")


def confidence_intervals(names: list[str], hyps: list[str], refs: list[list[str]], per_metric: dict[str, list[float | None]],
                         columns: dict[str, list[Any]], seed: int) -> dict[str, list[float | None]]:
    """95% bootstrap intervals of every metric (:func:`speechrl.evaluation.bootstrap.metrics_ci`). A metric
    whose corpus value needs columns (audio metrics: the mean MOS / dB) is recomputed on each resample with
    its columns resampled alike (``metrics_ci`` passes a corpus function no columns)."""
    plain = [n for n in names if REWARDS.get(n).corpus is None or not REWARDS.get(n).columns]
    out = metrics_ci(plain, hyps, refs, per_metric, seed=seed, **scorer_columns(plain, columns)) if plain else {}
    idx = resample_indices(len(hyps), N_BOOT, seed)
    for name in names:
        if name in plain:
            continue
        scorer = REWARDS.get(name)
        vals = np.array([float(scorer.corpus([hyps[i] for i in row], [refs[i] for i in row],
                                             **{c: [columns[c][i] for i in row] for c in scorer.columns})) for row in idx])
        vals = vals[np.isfinite(vals)]
        bounds = np.percentile(vals, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)]).tolist() if len(vals) else [None, None]
        out[name] = [float(v) if v is not None and np.isfinite(v) else None for v in bounds]
    return {n: out[n] for n in names}


def audio_name(sample_id: str, mode: str) -> str:
    """``audio/<id>.<mode>.wav``: where an audio output goes, relative to the evaluation folder."""
    return f"audio/{safe_name(sample_id)}.{mode}.wav"


@torch.no_grad()
def decode(cfg: Config, model: Model, proc: Processor, samples: list[Sample], mode: str, desc: str,
           out_dir: Path | None = None) -> tuple[list[str], list[str | None] | None, dict[str, float]]:
    """One output per sample; ``mode`` is greedy or sampled (seeded, evaluate.temperature/top_p).

    Returns (texts, audio paths (audio outputs: written under ``out_dir``; None for text outputs),
    decode counts)."""
    ev = cfg.evaluate
    model.eval()
    torch.manual_seed(cfg.seed)
    texts: list[str] = []
    audio: list[str | None] | None = [] if getattr(proc, "output", "text") == "audio" else None
    counts: dict[str, float] = {}
    with Progress(len(samples), f"{desc} {mode}", log_every=max(1, len(samples) // 4), unit="utt") as prog:
        for i in range(0, len(samples), ev.batch_size):
            chunk = samples[i:i + ev.batch_size]
            r = sample(model, proc, chunk, 1, do_sample=(mode == "sampled"), temperature=ev.temperature,
                       top_p=ev.top_p, max_new_tokens=ev.max_new_tokens)
            texts.extend(r.texts)
            if audio is not None:
                paths = [Path(out_dir) / audio_name(s.example.id, mode) for s in chunk]
                got, c = write_audio(proc, r.completion_ids.cpu(), r.completion_mask.cpu(), paths)
                audio.extend(got)
                counts = {k: counts.get(k, 0.0) + v for k, v in c.items()}
            prog.update(len(chunk))
    return texts, audio, counts


def evaluate(cfg: Config, model: Model, proc: Processor, samples: list[Sample], desc: str = "eval",
             out_dir: Path | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Returns (metrics by decoding, per-sample rows). Audio outputs are written under ``out_dir``
    (the evaluation folder; a temporary folder when not given)."""
    audio_out = getattr(proc, "output", "text") == "audio"
    if audio_out and out_dir is None:
        out_dir = Path(tempfile.mkdtemp(prefix="speechrl-eval-audio-"))
    refs = [s.example.references for s in samples]
    rows: list[dict[str, Any]] = [
        {"id": s.example.id, "prompt": s.example.prompt, "references": s.example.references, "outputs": {}, "scores": {}}
        for s in samples
    ]
    if audio_out:
        for row, s in zip(rows, samples):
            row["inputs"] = {"audio": s.input_audio, **({"clean_audio": s.example.extra["clean_audio"]}
                                                        if s.example.extra.get("clean_audio") else {})}
    columns = row_columns(samples)
    metrics: dict[str, dict[str, float]] = {}
    ci: dict[str, dict[str, list[float | None]]] = {}
    timing: dict[str, float] = {}
    decoded: dict[str, dict[str, float]] = {}
    for mode in cfg.evaluate.decodings:
        t0 = time.perf_counter()
        hyps, audio, decoded[mode] = decode(cfg, model, proc, samples, mode, desc, out_dir)
        timing[f"decode_{mode}_s"] = time.perf_counter() - t0
        cols = {**columns, **({"audio": audio} if audio is not None else {})}
        metrics[mode] = {}
        per_metric: dict[str, list[float | None]] = {}
        for name in cfg.evaluate.metrics:
            metrics[mode][name], per = score_both(name, hyps, refs, **scorer_columns([name], cols))
            per_metric[name] = per
            for row, v in zip(rows, per):
                row["scores"].setdefault(mode, {})[name] = v
        outputs = hyps if audio is None else [None if a is None else audio_name(s.example.id, mode) for a, s in zip(audio, samples)]
        for row, h in zip(rows, outputs):
            row["outputs"][mode] = h
        if hyps:
            t1 = time.perf_counter()
            ci[mode] = confidence_intervals(list(cfg.evaluate.metrics), hyps, refs, per_metric, cols, cfg.seed)
            timing[f"bootstrap_{mode}_s"] = time.perf_counter() - t1
        if audio is not None:  # the audio metrics average the decoded outputs only: how many there were, beside them
            metrics[mode]["decoded"] = 100.0 * sum(a is not None for a in audio) / max(len(audio), 1)
        log.info(f"[{desc}] {mode}: " + " ".join(f"{k} {v:.2f}" for k, v in metrics[mode].items()))
    result: dict[str, Any] = {"decodings": metrics, "ci": ci, "timing": timing}
    if audio_out:
        result["decode"] = decoded
    return result, rows
