"""Benchmark reward scorers on CPU: warm throughput (utterances or samples per second).

    python bench/rewards.py [--n 100] [--only dnsmos_ovrl,asr_wer]

The benchmark is a list of cases (:data:`CASES`): each names a scorer, builds its inputs once
(``setup(n) -> (hyps, refs, columns)``) and is timed on a warm call (one warm-up call first, which
starts the worker pool and loads the models). Speech cases synthesise ``n`` espeak-ng utterances
(16 kHz via sox, 3 voices) of a small closed vocabulary; ASR-WER uses a task LM built from their
texts. Audio scorers run in ``SPEECHRL_AUDIO_WORKERS`` processes (default 2). Targets: DNSMOS
>= 2 utt/s. Figures are printed, never asserted. Add text cases by appending to ``CASES``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

WORDS = [["turn", "switch"], ["the"], ["red", "green", "blue", "kitchen"], ["light", "fan", "radio"], ["on", "off", "now", "please"]]


@dataclass
class Case:
    name: str  # row label
    scorer: str  # registered scorer name
    setup: Callable[[int], tuple[list[str], list[list[str]], dict[str, Any]]]
    unit: str = "utt"


_SPEECH: dict[int, tuple[list[str], list[str], Path]] = {}


def speech(n: int) -> tuple[list[str], list[str], Path]:
    """``n`` espeak utterances (paths, texts, folder), made once per process."""
    if n not in _SPEECH:
        d = Path(tempfile.mkdtemp(prefix="speechrl-bench-"))
        texts, paths = [], []
        for i in range(n):
            words = [ws[(i * (k + 3) + k) % len(ws)] for k, ws in enumerate(WORDS)]
            text = " ".join(words)
            voice = ["en-us", "en-us+m3", "en-us+f2"][i % 3]
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(d / "raw.wav"), text], check=True)
            subprocess.run(["sox", str(d / "raw.wav"), "-r", "16000", "-c", "1", str(d / f"u{i}.wav")], check=True)
            texts.append(text)
            paths.append(str(d / f"u{i}.wav"))
        _SPEECH[n] = (paths, texts, d)
    return _SPEECH[n]


def dnsmos_setup(n: int):
    paths, texts, _ = speech(n)
    return [""] * n, [[t] for t in texts], {"audio": paths}


def asr_setup(n: int):
    from speechrl.rewards.asr import LM_ENV, build_task_lm

    paths, texts, d = speech(n)
    os.environ[LM_ENV] = str(build_task_lm(texts, d / "lm"))
    return [""] * n, [[t] for t in texts], {"audio": paths}


CASES: list[Case] = [
    Case("DNSMOS (ovrl; one model run gives all 4 sub-scores)", "dnsmos_ovrl", dnsmos_setup),
    Case("ASR-WER (pocketsphinx + task LM)", "asr_wer", asr_setup),
]


def run_case(case: Case, n: int) -> tuple[float, float, float]:
    """(items/s warm, first-call seconds, mean score) of one case."""
    from speechrl.rewards import REWARDS
    from speechrl.rewards import asr as R
    from speechrl.rewards import audio as A

    hyps, refs, cols = case.setup(n)
    scorer = REWARDS.get(case.scorer)
    t = time.perf_counter()
    warm_cols = {k: v[:2] for k, v in cols.items()}
    scorer.sample(hyps[:2], refs[:2], **warm_cols)  # start the pool, load models
    first = time.perf_counter() - t
    A._MOS_CACHE.clear()  # time the models, not the memos
    R._TRANSCRIPTS.clear()
    t = time.perf_counter()
    scores = scorer.sample(hyps, refs, **cols)
    dt = time.perf_counter() - t
    vals = [s for s in scores if s is not None]
    return n / dt, first, sum(vals) / max(1, len(vals))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--only", default="", help="comma-separated scorer names")
    a = ap.parse_args()
    from speechrl.rewards.audio import n_workers

    only = {s for s in a.only.split(",") if s}
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"reward scorers, n={a.n}, audio workers={n_workers()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, load average {load} on {os.cpu_count()} CPUs")
    for case in CASES:
        if only and case.scorer not in only:
            continue
        rate, first, mean = run_case(case, a.n)
        print(f"{case.name:55s} {rate:8.2f} {case.unit}/s warm   (first call {first:5.1f} s, mean score {mean:.3f})")


if __name__ == "__main__":
    main()
