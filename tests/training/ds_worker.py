"""A few SFT or RL steps on the tiny model through the real loops, on any backend and number of ranks.

Run as one process (``python ds_worker.py ...``) or as ranks (``torchrun --nproc-per-node 2 ds_worker.py ...``);
rank 0 writes the per-step losses and the final parameters to ``--out`` (a torch file) for the parity tests.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import tiny_dict  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", required=True, help="comma-separated: sft, sft_more, rl:<preset>, rl:<preset>+mb<N> (N minibatches); "
                   "resume-<job>: the job stopped by SIGUSR1 (sent to rank 0 only) after step 1, then resumed from its checkpoint")
    p.add_argument("--backend", default="local")
    p.add_argument("--ds-config", default="config/deepspeed/zero2.json")
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--local_rank", type=int, default=0)  # the deepspeed launcher passes it
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True, warn_only=True)
    results = {}
    for job in a.jobs.split(","):
        results[job] = run_job(job, a)
    if int(os.environ.get("RANK", 0)) == 0:
        torch.save(results, a.out)


def run_job(job: str, a: argparse.Namespace, ckpt=None, log_extra=None) -> dict:
    """One job from the base model; rank 0 returns its per-step losses and final parameters."""
    from speechrl.algos import resolve
    from speechrl.config import parse_config
    from speechrl.models.build import load
    from speechrl.training.data import load_split

    work = Path(a.out).parent / f"work-{os.environ.get('RANK', '0')}" / job.replace(":", "-")
    d = tiny_dict(work)
    d["sft"].update({"max_steps": a.steps, "grad_accum": a.grad_accum, "eval_every": a.steps, "patience": 10})
    d["rl"].update({"rewards": {"chrf": 1.0}, "steps": a.steps, "grad_accum": a.grad_accum, "prompts_per_step": 4,
                    "group_size": 4, "lr": 1e-3, "max_new_tokens": 6})
    d["train"] = {"backend": a.backend, "deepspeed_config": a.ds_config, "precision": a.precision}
    if job.startswith("resume-"):
        return resumed(job.removeprefix("resume-"), a)
    kind, _, preset = job.partition(":")
    preset, _, minibatches = preset.partition("+mb")
    if minibatches:  # more minibatches than groups per rank: some rank gets none (weight-0 stand-in)
        d["rl"].update({"minibatches": int(minibatches), "grad_accum": 1})
    cfg = parse_config(d)
    torch.manual_seed(0)
    model, proc = load(a.model)
    train = load_split(Path(a.data), "train", proc)
    losses: list[float] = []

    def log_metrics(m: dict, step: int) -> None:
        losses.append(m.get("actor/loss", m.get("train/loss")))
        if log_extra:
            log_extra(step)

    out_model = work / "model"
    if kind == "state":
        return state_roundtrip(cfg, a, train)
    if kind == "sft":
        from speechrl.training.sft import train_sft

        train_sft(cfg, model, proc, train, load_split(Path(a.data), "valid", proc), out_model, log_metrics, ckpt=ckpt)
    elif kind == "sft_more":
        from speechrl.training.sft import continue_sft

        continue_sft(cfg, model, proc, train, out_model, steps=a.steps, batch_size=8, lr=1e-3, log_metrics=log_metrics,
                     ckpt=ckpt)
    else:
        from speechrl.training.rl import train_rl

        train_rl(cfg, resolve(preset, cfg.rl), model, proc, train, out_model, log_metrics, ckpt=ckpt)
    if int(os.environ.get("RANK", 0)) != 0:
        return {}
    final, _ = load(out_model)
    return {"losses": losses, "params": {k: v.detach().clone() for k, v in final.named_parameters()}}


def resumed(job: str, a: argparse.Namespace) -> dict:
    """``job`` interrupted after step 1 (SIGUSR1 to rank 0 alone: the ranks must agree to stop), then resumed;
    rank 0 returns the losses of the resumed steps and the final parameters, to compare with ``job``'s."""
    import signal

    from speechrl.signals import Interrupted
    from speechrl.training.checkpoint import Checkpoint

    root = Path(a.out).parent / "ckpt" / job.replace(":", "-")  # one folder for every rank

    def stop(step: int) -> None:
        if step == 1 and int(os.environ.get("RANK", 0)) == 0:
            os.kill(os.getpid(), signal.SIGUSR1)

    try:
        run_job(job, a, Checkpoint(root, "fp"), stop)
        raise AssertionError("the job was not interrupted")
    except Interrupted as e:
        assert e.step == 1, e.step
    return run_job(job, a, Checkpoint(root, "fp"))


def state_roundtrip(cfg, a: argparse.Namespace, train: list) -> dict:
    """save_state after 2 steps, a third step; then a fresh backend loads the state and takes the
    same third step: the two must agree (returns the max parameter difference, on rank 0)."""
    from speechrl.models.build import load
    from speechrl.training.backend import OptimSpec, make_backend
    from speechrl.training.optim import cosine_schedule
    from speechrl.training.sft import accumulate

    spec = OptimSpec(1e-3, 0.01, 1.0, cosine_schedule(1, 4))
    batches = [train[i:i + 4] for i in (0, 4, 8)]

    def params(be) -> dict:
        with be.gathered() as m:
            return {k: v.detach().clone() for k, v in m.named_parameters()}

    model, proc = load(a.model)
    be = make_backend(cfg, model, spec)
    for b in batches[:2]:
        accumulate(be, proc, b, a.grad_accum)
        be.step()
        be.schedule_step()
    shared = Path(a.out).with_suffix(".state")  # one folder for every rank, as a job's output folder
    be.save_state(shared)
    accumulate(be, proc, batches[2], a.grad_accum)
    be.step()
    straight = params(be)
    model2, _ = load(a.model)
    be2 = make_backend(cfg, model2, spec)
    be2.load_state(shared)
    assert be2.lr == be.lr, (be2.lr, be.lr)
    accumulate(be2, proc, batches[2], a.grad_accum)
    be2.step()
    resumed = params(be2)
    diff = max(float((straight[k] - resumed[k]).abs().max()) for k in straight)
    return {"diff": diff}


if __name__ == "__main__":
    main()
