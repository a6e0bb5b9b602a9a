"""Benchmark the hot loops of the embedded default on this machine: SFT step, rollout, RL step, decoding.

    python bench/train_steps.py [--config config/config.yaml] [--repeats 5]

Builds a small synthetic SQA set and the default tiny model in a temp folder (nothing under results/),
then prints median seconds per operation with the shapes involved. One torch thread (as each
pipeline job uses). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def timeit(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from speechrl.algos import resolve
    from speechrl.config import load_config
    from speechrl.data.manifest import read_manifest
    from speechrl.data.synthetic import build_synthetic
    from speechrl.models.build import build_tiny, count_params
    from speechrl.training.data import collate, load_split
    from speechrl.training.rl import make_run, rl_step
    from speechrl.training.rollout import sample
    from speechrl.training.sft import lm_loss

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(a.config, overrides={"data": {"synthetic": {"n_train": 64, "n_valid": 8, "n_test": 8}}})
        t0 = time.perf_counter()
        build_synthetic("sqa", cfg, Path(tmp) / "sqa")
        synth = time.perf_counter() - t0
        exs = read_manifest(Path(tmp) / "sqa" / "train.jsonl")
        model, proc = build_tiny(cfg, [t for e in exs for t in (e.prompt, *e.references)])
        train = load_split(Path(tmp) / "sqa", "train", proc)
        n = count_params(model)["total"]
        print(f"model: tiny {cfg.model.arch}, {n / 1e6:.2f} M parameters; mean clip {sum(len(s.features) for s in train) / len(train) * 0.02:.2f} s")
        print(f"synthesis: {len(exs) + 16} utterances in {synth:.2f} s ({(len(exs) + 16) / synth:.1f} utt/s, {cfg.data.synthetic.workers} workers)")

        batch = collate(proc, train[: cfg.sft.batch_size], with_answers=True)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def sft_step() -> None:
            loss, _ = lm_loss(model, batch)
            loss.backward()
            opt.step()
            opt.zero_grad()

        s = timeit(sft_step, a.repeats)
        print(f"sft step: batch {cfg.sft.batch_size}, seq {batch['input_ids'].shape[1]} tokens: {s * 1000:.0f} ms ({1 / s:.2f} steps/s)")

        model.eval()
        prompts = train[: cfg.rl.prompts_per_step]
        g = cfg.rl.group_size
        s = timeit(lambda: sample(model, proc, prompts, g, max_new_tokens=cfg.rl.max_new_tokens), a.repeats)
        print(f"rollout: {len(prompts)} prompts x G={g}, up to {cfg.rl.max_new_tokens} new tokens: {s * 1000:.0f} ms")
        keys = [str(i) for i in range(len(prompts))]
        s_keyed = timeit(lambda: sample(model, proc, prompts, g, max_new_tokens=cfg.rl.max_new_tokens, keys=keys), a.repeats)
        print(f"rollout, keyed per completion (RL's rank-invariant sampling): {s_keyed * 1000:.0f} ms "
              f"({s_keyed / s:.2f}x the HF sampler)")

        run = make_run(cfg, resolve(cfg.rl.algorithms[0], cfg.rl), model, proc, prompts)
        algo = run.algo
        s = timeit(lambda: rl_step(run), a.repeats)
        print(f"rl step ({algo.name}): rollout + reward + ref/policy forward + update: {s * 1000:.0f} ms ({cfg.rl.steps} steps ~ {s * cfg.rl.steps / 60:.1f} min)")

        test = train[:32]
        s = timeit(lambda: sample(model, proc, test, 1, do_sample=False, max_new_tokens=cfg.evaluate.max_new_tokens), max(1, a.repeats // 2))
        print(f"greedy decoding: 32 utterances, up to {cfg.evaluate.max_new_tokens} tokens: {s * 1000:.0f} ms ({32 / s:.1f} utt/s)")


if __name__ == "__main__":
    main()
