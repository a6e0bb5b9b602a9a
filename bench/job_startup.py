"""Benchmark the fixed costs a pipeline job pays before and after its real work, each against the
alternative it replaced, in fresh processes (a Snakemake job is a fresh process):

    python bench/job_startup.py [--repeats 3]

* ``resample``: the first 8 -> 16 kHz resample of a process (every codec2 decode of an audio job):
  ``librosa.resample(res_type="soxr_hq")`` vs :func:`speechrl.audio.io.resample` (soxr directly; the same samples).
* ``wordnet``: loading WordNet for METEOR (every evaluation with meteor): NLTK's ``WordNetCorpusReader`` vs
  :func:`speechrl.rewards.text.wordnet` (no OMW synset map).
* ``wer_bootstrap``: 1000 bootstrap resamples of the corpus WER of 12 transcripts (the evaluation's intervals):
  jiwer on every resample vs the memoised :func:`speechrl.rewards.asr._edits`.

Each figure is the median wall time of a fresh process doing it (imports included, the same in both columns) over
``--repeats`` runs, with the ratio; printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

SETUP = "import numpy as np; x = np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32)\n"
CASES = {
    "resample": (
        SETUP + "import librosa; librosa.resample(x, orig_sr=8000, target_sr=16000, res_type='soxr_hq')",
        SETUP + "from speechrl.audio.io import resample; resample(x, 8000, 16000)",
    ),
    "wordnet": (
        "import os, sys, warnings, nltk; warnings.simplefilter('ignore'); from speechrl.rewards import text\n"
        "nltk.data.path.insert(0, os.path.join(sys.prefix, 'nltk_data'))\n"
        "from nltk.corpus.reader.wordnet import WordNetCorpusReader as W; W(nltk.data.find('corpora/wordnet'), None).synsets('dog')",
        "import os, sys, warnings, nltk; warnings.simplefilter('ignore'); from speechrl.rewards import text\n"
        "text.wordnet()",
    ),
    "wer_bootstrap": (
        "from speechrl.rewards import asr; f = asr._edits.__wrapped__\n",
        "from speechrl.rewards import asr; f = asr._edits\n",
    ),
}
BOOT = ("import random; r = random.Random(0)\n"
        "hyp = ['the cat sat on the mat %d' % i for i in range(12)]; ref = ['a cat sat on a mat %d' % i for i in range(12)]\n"
        "for _ in range(1000):\n"
        "    idx = [r.randrange(12) for _ in range(12)]\n"
        "    sum(f(hyp[i], ref[i], 'word')[0] for i in idx)\n")


def run(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{'case':<15}{'before s':>10}{'after s':>10}{'saved s':>10}{'ratio':>8}   (median of {args.repeats} fresh processes)")
    for name, (before, after) in CASES.items():
        if name == "wer_bootstrap":
            before, after = before + BOOT, after + BOOT
        b = statistics.median(run(before) for _ in range(args.repeats))
        a = statistics.median(run(after) for _ in range(args.repeats))
        print(f"{name:<15}{b:>10.2f}{a:>10.2f}{b - a:>10.2f}{b / a:>7.1f}x")


if __name__ == "__main__":
    main()
