"""DeepSpeed ZeRO-2 / ZeRO-3 with 2 CPU ranks (gloo) == one local process: SFT and RL steps on the tiny model.

Each run goes through the real loops (``ds_worker.py``: train_sft / train_rl with the backend from config),
3 optimiser steps, AdamW lr 1e-3, fp32. The single process takes one micro-batch per step, the ranks 2
micro-batches each, so the comparison also covers the global normalisers and the sharded sampling;
``rl:dapo`` covers batch shapers on the gathered batch, ``rl:grpo+mb4`` minibatches of one group
(one rank runs a weight-0 stand-in).
Dropout is off in the compared model (dropout masks cannot be rank-invariant); BatchNorm running
statistics are buffers, not parameters, and are not compared.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("ds_worker.py")
JOBS = "sft,sft_more,rl:grpo,rl:gspo_segment_logprob,rl:leaf,rl:mp_grpo,rl:tars,rl:dapo,rl:grpo+mb4"
pytestmark = pytest.mark.distributed


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    env.setdefault("TORCH_EXTENSIONS_DIR", str(ROOT / ".venv" / "torch_extensions"))
    return env


@pytest.fixture(scope="module")
def no_dropout_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("parity") / "base"
    shutil.copytree(tiny_model_dir, out)
    cfg = json.loads((out / "config.json").read_text())

    def zero(d: dict) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                zero(v)
            elif "dropout" in k and isinstance(v, float):
                d[k] = 0.0

    zero(cfg)
    (out / "config.json").write_text(json.dumps(cfg))
    return out


def _run(model: Path, data: Path, out: Path, *extra: str, ranks: int = 1, jobs: str = JOBS) -> dict:
    launch = [sys.executable] if ranks == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                   "--nnodes", "1", "--nproc-per-node", str(ranks)]
    cmd = [*launch, str(WORKER), "--jobs", jobs, "--model", str(model), "--data", str(data), "--out", str(out), *extra]
    p = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-6000:]
    return torch.load(out)


@pytest.fixture(scope="module")
def single(no_dropout_model: Path, tiny_data: dict[str, Path]) -> dict:
    return _run(no_dropout_model, tiny_data["ast"], no_dropout_model.parent / "local.pt")


@pytest.mark.parametrize("zero", ["zero2", "zero3"])
def test_two_deepspeed_ranks_match_one_process(zero, single, no_dropout_model, tiny_data):
    from speechrl.models.build import load

    ranks = _run(no_dropout_model, tiny_data["ast"], no_dropout_model.parent / f"{zero}.pt", "--backend", "deepspeed",
                 "--ds-config", f"config/deepspeed/{zero}.json", "--grad-accum", "2", ranks=2)
    base = {k: v.detach() for k, v in load(no_dropout_model)[0].named_parameters()}
    report = {}
    for job, ref in single.items():
        got = ranks[job]
        loss_diff = max(abs(a - b) for a, b in zip(ref["losses"], got["losses"]))
        param_diff = max(float((ref["params"][k] - got["params"][k]).abs().max()) for k in ref["params"])
        moved = max(float((ref["params"][k] - base[k]).abs().max()) for k in ref["params"])
        report[job] = (loss_diff, param_diff, moved)
        assert len(got["losses"]) == len(ref["losses"]) >= 3, job
        assert moved > 1e-4, f"{job}: the parameters did not move ({moved:.2e}); the comparison would be vacuous"
        assert loss_diff < 1e-5 and param_diff < 1e-5, f"{zero} {job}: loss diff {loss_diff:.2e}, param diff {param_diff:.2e}"
    print(f"\n{zero} vs 1 process (max |loss diff|, max |param diff|, max |param change|):")
    for job, (dl, dp, mv) in report.items():
        print(f"  {job:26s} {dl:.2e} {dp:.2e} {mv:.2e}")


def test_bf16_ranks_run_and_stay_close(single, no_dropout_model, tiny_data):
    """train.precision bf16 under ZeRO-2: the same steps in bf16 weights, close to fp32 (not equal)."""
    ranks = _run(no_dropout_model, tiny_data["ast"], no_dropout_model.parent / "bf16.pt", "--backend", "deepspeed",
                 "--precision", "bf16", ranks=2, jobs="sft,rl:grpo")
    for job in ("sft", "rl:grpo"):
        diff = max(abs(a - b) for a, b in zip(single[job]["losses"], ranks[job]["losses"]))
        assert diff < 2e-2, (job, diff)
        assert all(torch.isfinite(v).all() for v in ranks[job]["params"].values())


@pytest.mark.parametrize("zero", [None, "zero2", "zero3"])
def test_save_state_then_load_state_continues_exactly(zero, no_dropout_model, tiny_data):
    """Weights + optimiser + lr schedule round-trip: 2 steps, save, a 3rd step == load into a fresh backend, 3rd step."""
    extra = () if zero is None else ("--backend", "deepspeed", "--ds-config", f"config/deepspeed/{zero}.json")
    out = _run(no_dropout_model, tiny_data["ast"], no_dropout_model.parent / f"state-{zero}.pt", *extra,
               ranks=1 if zero is None else 2, jobs="state")
    assert out["state"]["diff"] < 1e-7, out


def test_two_ranks_resume_exactly_after_a_signal_to_one_rank(single, no_dropout_model, tiny_data):
    """ZeRO-2, 2 ranks: SIGUSR1 reaches rank 0 only after step 1; both ranks checkpoint and stop; the resumed
    run ends with the uninterrupted one-process run's parameters."""
    jobs = "resume-sft_more,resume-rl:grpo"
    got = _run(no_dropout_model, tiny_data["ast"], no_dropout_model.parent / "resume.pt", "--backend", "deepspeed",
               "--ds-config", "config/deepspeed/zero2.json", ranks=2, jobs=jobs)
    for job in jobs.split(","):
        ref = single[job.removeprefix("resume-")]
        param_diff = max(float((ref["params"][k] - got[job]["params"][k]).abs().max()) for k in ref["params"])
        assert got[job]["losses"] == pytest.approx(ref["losses"][1:], abs=1e-5), job  # steps 2.. only: none replayed
        assert param_diff < 1e-5, (job, param_diff)
