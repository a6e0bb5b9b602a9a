"""Benchmark the text / reasoning scorers, the reward cache and bootstrap CIs on CPU (one thread).

    python bench/rewards_text.py [--pairs 10000] [--bert-pairs 1000] [--repeats 3]

Synthetic sentence pairs (10-20 words from a 200-word vocabulary, the hypothesis a noisy copy of the
reference). "warm" = after one untimed call (models loaded, sacrebleu objects built); seconds are the
median over ``--repeats``. Rows: sentence BLEU / chrF through the scorer directly; BLEU through
``score_samples`` with an empty cache (miss path: + key hashing) and again (cache-hit path);
BERTScore and embedding_cosine (all-MiniLM-L6-v2); mc_accuracy and format; a 95% bootstrap CI of
corpus BLEU (1000 resamples). Target: 10k sentence-BLEU pairs <= 1.5 s. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def seconds(fn, repeats: int, warm=None) -> float:
    """Median seconds of ``fn()`` after one warm-up call (``warm()`` before each timed call if given)."""
    fn()
    times = []
    for _ in range(repeats):
        if warm:
            warm()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def pairs(n: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(200)]
    refs, hyps = [], []
    for _ in range(n):
        ref = rng.choices(vocab, k=rng.randint(10, 20))
        hyp = [w if rng.random() < 0.7 else rng.choice(vocab) for w in ref]
        refs.append([" ".join(ref)])
        hyps.append(" ".join(hyp))
    return hyps, refs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=10000)
    ap.add_argument("--bert-pairs", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from speechrl.evaluation.bootstrap import bootstrap_ci
    from speechrl.rewards import REWARDS, score_samples
    from speechrl.rewards import cache as C

    hyps, refs = pairs(a.pairs)
    bh, br = hyps[:a.bert_pairs], refs[:a.bert_pairs]
    mc = [random.Random(i).choice(["Answer: (B)", "<think>x</think><answer>C</answer>", "green", "B"]) for i in range(a.pairs)]
    choices = [["A. red", "B. green", "C. blue", "D. dark blue"]] * a.pairs
    rows = [
        (f"sentence BLEU x{a.pairs}", lambda: REWARDS.get("bleu").sample(hyps, refs), None),
        (f"sentence chrF x{a.pairs}", lambda: REWARDS.get("chrf").sample(hyps, refs), None),
        (f"BLEU score_samples x{a.pairs} (miss)", lambda: score_samples("bleu", hyps, refs), C.clear_cache),
        (f"BLEU score_samples x{a.pairs} (hit)", lambda: score_samples("bleu", hyps, refs), None),
        (f"BERTScore x{a.bert_pairs}", lambda: REWARDS.get("bertscore").sample(bh, br), None),
        (f"embedding_cosine x{a.bert_pairs}", lambda: REWARDS.get("embedding_cosine").sample(bh, br), None),
        (f"mc_accuracy x{a.pairs}", lambda: REWARDS.get("mc_accuracy").sample(mc, [["B"]] * a.pairs, choices=choices), None),
        (f"format x{a.pairs}", lambda: REWARDS.get("format").sample(mc, [["B"]] * a.pairs), None),
        (f"BLEU 95% CI x{min(a.pairs, 1000)} items", lambda: bootstrap_ci("bleu", hyps[:1000], refs[:1000]), None),
    ]
    print(f"{'what':<38}{'seconds':>9}{'items/s':>11}")
    for label, fn, warm in rows:
        s = seconds(fn, a.repeats, warm)
        n = int(label.split("x")[-1].split()[0])
        print(f"{label:<38}{s:>9.3f}{n / s:>11.0f}")


if __name__ == "__main__":
    main()
