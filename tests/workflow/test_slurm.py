"""The pipeline through a real SLURM: `snakemake --profile slurm` (snakemake-executor-plugin-slurm).

One cluster for the module (conftest.slurm_cluster: two virtual nodes on this machine, a fake GPU on
the first), two runs in one working directory,
both from the repository root as a user types them:
  * tiny: the tiny suite cut to one task / seed / algorithm (tiny.yaml + slurm.yaml) with
    site_slurm.yaml: every compute job goes through sbatch (the bookkeeping jobs run on the submitting
    host, `local: true` as in config/site.yaml); the evaluate jobs ask the fake GPU and get gres gpu:1.
  * ranks: then SFT and RL again with train.backend deepspeed (deepspeed.yaml, ZeRO-2) and
    site_slurm_ranks.yaml (data and base model reused): SFT as 2 CPU ranks under torchrun inside one
    SLURM job, RL as one rank on each of 2 nodes (srun + torchrun, c10d rendezvous on the first node;
    the cluster's two nodes are two slurmd on this machine).
Most of the wall time is the plugin's status checks: 1 s after a submission, then 10 s longer each
time no job has finished (1, 12, 33, 64 s), so each level of the DAG costs at least ~12-33 s.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HERE = ROOT / "tests" / "workflow"
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]


def snakemake_slurm(workdir: Path, configs: list[str], site: str, *args: str) -> "Run":
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [str(BIN / "snakemake"), *args, "--profile", "slurm", "--directory", str(workdir),
           "--configfile", *(str(HERE / c) for c in configs), "--config", f"site={HERE / site}",
           "--slurm-keep-successful-logs"]
    start = time.monotonic()
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    run = Run(workdir, p.returncode, time.monotonic() - start, p.stdout + p.stderr)
    print(f"[slurm] {' '.join(configs)} {site}: {run.seconds:.0f} s, {sum(map(len, run.jobs.values()))} SLURM jobs")
    return run


class Run:
    def __init__(self, workdir: Path, returncode: int, seconds: float, out: str):
        self.workdir, self.returncode, self.seconds, self.out = workdir, returncode, seconds, out
        # rule name -> [(SLURM job id, its log)]
        self.jobs: dict[str, list[tuple[str, Path]]] = {}
        for _, slurm_id, log in SUBMITTED.findall(out):
            rule = Path(log).relative_to(workdir / ".snakemake" / "slurm_logs").parts[0].removeprefix("rule_")
            self.jobs.setdefault(rule, []).append((slurm_id, Path(log)))

    def summary(self) -> str:
        return f"rc {self.returncode}, {self.seconds:.0f} s\n{self.out[-4000:]}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("slurm")


@pytest.fixture(scope="module")
def tiny(slurm_cluster, workdir: Path) -> Run:
    return snakemake_slurm(workdir, ["tiny.yaml", "slurm.yaml"], "site_slurm.yaml")


@pytest.fixture(scope="module")
def ranks(slurm_cluster, workdir: Path, tiny: Run) -> Run:
    return snakemake_slurm(workdir, ["tiny.yaml", "slurm.yaml", "deepspeed.yaml"], "site_slurm_ranks.yaml",
                           "results/rl/sqa/grpo/s0", "--forcerun", "sft")


def test_tiny_workflow_runs_every_job_through_slurm(tiny: Run):
    run = tiny
    assert run.returncode == 0, run.summary()
    assert (run.workdir / "results" / "report" / "index.html").exists()
    # every compute job went through sbatch; only `all` and the bookkeeping (pipeline.smk) ran locally
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", run.out.split("Job stats:")[1].split("total")[0], re.M))
    compute = {"data": 1, "init_model": 1, "sft": 1, "rl": 1, "evaluate": 3, "report": 1}
    assert {rule: len(jobs) for rule, jobs in run.jobs.items()} == compute
    assert {rule: int(n) for rule, n in stats.items() if rule in compute} == compute
    local = set(re.findall(r"^localrule (\w+):", run.out, re.M))
    assert local == set(stats) - set(compute) and {"all", "resolve_config"} <= local
    # SLURM wrote each job's log (sbatch --output); the job ran the rule through the plugin's job step
    for rule, jobs in run.jobs.items():
        for slurm_id, log in jobs:
            text = log.read_text()
            assert log.name == f"{slurm_id}.log" and "--executor slurm-jobstep" in text, (rule, text[-2000:])
            assert f"rule {rule}:" in text and "1 of 1 steps (100%) done" in text, (rule, text[-2000:])


def test_gpu_rule_is_scheduled_with_its_gres(tiny: Run, slurm_cluster):
    run = tiny
    assert run.returncode == 0, run.summary()
    for slurm_id, log in run.jobs["evaluate"]:
        job = slurm_cluster.scontrol("show", "job", "-d", slurm_id)
        assert "TresPerJob=gres:gpu:1" in job and "JOB_GRES=gpu:1" in job, job  # asked and allocated
        assert "gpu=1" in log.read_text()  # the rule's resources: gpu=1 -> sbatch --gpus=1
    for slurm_id, _ in run.jobs["sft"] + run.jobs["data"]:
        assert "gres:gpu" not in slurm_cluster.scontrol("show", "job", "-d", slurm_id)


def test_sft_runs_as_two_deepspeed_ranks_under_slurm(ranks: Run, slurm_cluster):
    run = ranks
    assert run.returncode == 0, run.summary()
    assert {rule: len(jobs) for rule, jobs in run.jobs.items()} == {"sft": 1, "rl": 1}
    (slurm_id, log), = run.jobs["sft"]
    assert "torchrun --standalone --nnodes 1 --nproc-per-node 2 --no-python speechrl sft" in log.read_text()
    job = slurm_cluster.scontrol("show", "job", slurm_id)
    assert "NumNodes=1" in job and "NumCPUs=2" in job and "JobState=COMPLETED" in job, job
    sft = run.workdir / "results" / "sft" / "sqa"
    assert json.loads((sft / "summary.json").read_text())["ranks"] == 2  # the backend saw WORLD_SIZE=2
    assert json.loads((sft / "manifest.json").read_text())["stage"] == "sft"  # rank 0 wrote outputs


def test_rl_runs_across_two_nodes_under_slurm(ranks: Run, slurm_cluster):
    run = ranks
    assert run.returncode == 0, run.summary()
    (slurm_id, log), = run.jobs["rl"]
    text = log.read_text()
    assert "srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --cpus-per-task=1 --kill-on-bad-exit=1 torchrun --nnodes 2 " in text
    assert "--nproc-per-node 1 --rdzv-backend c10d --rdzv-endpoint \"$(hostname)\":29500" in text
    job = slurm_cluster.scontrol("show", "job", slurm_id)
    assert "NumNodes=2" in job and "NodeList=n[1-2]" in job and "JobState=COMPLETED" in job, job
    rl = run.workdir / "results" / "rl" / "sqa" / "grpo" / "s0"
    assert json.loads((rl / "summary.json").read_text())["ranks"] == 2  # one rank on each node
