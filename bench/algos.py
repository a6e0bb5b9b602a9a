"""Benchmark the policy-optimisation core on CPU (one thread): every preset's loss + backward, and the LEAF tree.

    python bench/algos.py [--prompts 64] [--group 8] [--length 512] [--repeats 20]

Random inputs of the stated shape: N = prompts * group completions of up to ``length`` tokens (random
lengths, a prefix mask), ``logp`` a leaf tensor requiring grad. Per preset the timed step is what the
trainer runs after the forward pass: segmenter (segment presets) + ratio + policy loss + KL + aggregation
+ backward to ``logp``; the advantage estimator runs once outside the timing (its own line below for LEAF).
Prints the median (and min) milliseconds per step; targets: every preset < 20 ms, LEAF tree < 50 ms.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def timings_ms(fn, repeats: int) -> tuple[float, float]:
    """(median, min) milliseconds over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times), 1e3 * min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--length", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    from speechrl.algos import ADVANTAGES, AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES, PRESETS, RATIOS, SEGMENTERS, leaf_tree

    n, t, g = a.prompts * a.group, a.length, a.group
    lengths = torch.randint(t // 4, t + 1, (n, 1))
    mask = (torch.arange(t) < lengths).long()
    old = -torch.rand(n, t) * 5
    logp = (old + 0.05 * torch.randn(n, t)).requires_grad_(True)
    ref = old + 0.05 * torch.randn(n, t)
    # speech-codec-like ids; the 8 completions of a prompt share a random-length prefix (LEAF nodes)
    ids = torch.randint(0, 4096, (n, t))
    shared = torch.randint(0, t // 2, (a.prompts,)).repeat_interleave(g)
    base = ids.view(a.prompts, g, t)[:, :1].expand(a.prompts, g, t).reshape(n, t)
    ids = torch.where(torch.arange(t) < shared.unsqueeze(1), base, ids)
    rewards = torch.rand(n)
    modality = torch.arange(n) % 2
    print(f"N = {a.prompts} prompts x G = {g} = {n} completions, T = {t} tokens "
          f"({int(mask.sum())} completion tokens); one thread; median of {a.repeats}")
    print(f"{'preset':<22}{'median ms':>10}{'min ms':>8}   ratio / loss / aggregation")

    for name in PRESETS.names():
        algo = PRESETS.get(name)
        adv, _ = ADVANTAGES.get(algo.advantage)(rewards, g, mask=mask, ids=ids, surprisal=-old, modality=modality,
                                                **algo.advantage_opts)
        off = (torch.arange(n) % g == g - 1) if algo.mixed_policy else None

        def step() -> None:
            segments = None
            if algo.segmenter:
                segments, _ = SEGMENTERS.get(algo.segmenter)(old, ids, mask, **algo.segmenter_opts)
            lr, _ = RATIOS.get(algo.ratio)(logp, old, mask, segments=segments, **algo.ratio_opts)
            pg, _ = POLICY_LOSSES.get(algo.policy_loss)(lr, adv, mask, off_policy=off, **algo.loss_opts)
            per_token = pg
            if algo.beta > 0:
                kl, _ = KL_ESTIMATORS.get(algo.kl_estimator)(logp, ref)
                per_token = pg + algo.beta * kl
            loss, _ = AGGREGATIONS.get(algo.loss_agg)(per_token, mask, norm_constant=t, segments=segments)
            loss.backward()
            logp.grad = None

        med, low = timings_ms(step, a.repeats)
        what = f"{algo.ratio}{'+' + algo.segmenter if algo.segmenter else ''} / {algo.policy_loss} / {algo.loss_agg}"
        what += f" + {algo.kl_estimator} x {algo.beta:g}" if algo.beta > 0 else ""
        print(f"{name:<22}{med:>10.2f}{low:>8.2f}   {what}")

    tree = leaf_tree(rewards, g, ids, mask, -old, B=2)
    rows = [("leaf_tree (B=2)", lambda: leaf_tree(rewards, g, ids, mask, -old, B=2),
             f"{int((tree.forks >= 0).sum())} boundaries, {int(tree.in_node.sum())} (row, boundary) node memberships"),
            ("leaf advantages", lambda: ADVANTAGES.get("leaf")(rewards, g, mask=mask, ids=ids, surprisal=-old, B=2),
             "tree + batch z-score + per-token spans"),
            ("grpo advantages", lambda: ADVANTAGES.get("grpo")(rewards, g), "")]
    for label, fn, what in rows:
        med, low = timings_ms(fn, a.repeats)
        print(f"{label:<22}{med:>10.2f}{low:>8.2f}   {what}")


if __name__ == "__main__":
    main()
