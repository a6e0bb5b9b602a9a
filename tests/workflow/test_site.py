"""The site file renders each rule's resources and launcher (dry runs; no cluster needed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TINY = ROOT / "tests" / "workflow" / "tiny.yaml"

MULTI_NODE = """
cluster: {partition: gpu, account: proj, constraint: h100, gpus_per_node: 4, cpus_per_task: 8, mem_mb: 32000,
          runtime: 120, rdzv_port: 29411}
jobs:
  pipeline: {local: true}
  rl: {nodes: 2, gpus: 4, cpus_per_task: 32, mem_mb: 256000, runtime: 1440, slurm_extra: "--exclusive"}
  sft: {gpus: 0, ranks: 2, cpus_per_task: 2}
  evaluate: {gpus: 1, partition: eval}
"""


def dry_run(tmp_path: Path, site: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "site.yaml").write_text(site)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    cmd = [str(BIN / "snakemake"), "-n", "-p", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path / "wd"),
           "--configfile", str(TINY), "--config", f"site={tmp_path / 'site.yaml'}", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def jobs_of(out: str, rule: str) -> list[str]:
    """The dry-run blocks of ``rule``'s jobs, their shell commands without the keep_log wrapper (common.smk)."""
    jobs = [j for j in out.split("\nrule ")[1:] if j.startswith(f"{rule}:")]
    return [re.sub(r'; rm -f "\$keep"', "", re.sub(r'keep="[^\n]*?\|\| true; ', "", j)) for j in jobs]


def test_multi_node_rl_renders_srun_torchrun_rendezvous_and_resources(tmp_path: Path):
    p = dry_run(tmp_path, MULTI_NODE)
    assert p.returncode == 0, p.stderr[-3000:]
    rl = jobs_of(p.stdout, "rl")
    assert len(rl) == 10
    for job in rl:
        shell = job.split("Shell command: ")[1].splitlines()[0]
        assert shell.startswith("srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --cpus-per-task=32 --gres=gpu:4 ")
        assert ("torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint \"$(hostname)\":29411 "
                "--rdzv-id \"${SLURM_JOB_ID:-speechrl}\" --no-python speechrl rl ") in shell
        res = job.split("resources: ")[1].splitlines()[0]
        for r in ("nodes=2", "tasks=2", "mpi=srun", "gres=gpu:4", "tasks_per_gpu=0", "cpus_per_task=32", "mem_mb=256000",
                  "runtime=1440", "slurm_partition=gpu", "slurm_account=proj", "constraint=h100", "slurm_extra=--exclusive"):
            assert r in res.split(", "), (r, res)
        assert not any(r.startswith("gpu=") for r in res.split(", "))  # across nodes: GPUs per node (gres), not --gpus
    # one node, 2 CPU ranks: torchrun standalone, 2 CPUs for the job
    for job in jobs_of(p.stdout, "sft"):
        assert "Shell command: torchrun --standalone --nnodes 1 --nproc-per-node 2 --no-python speechrl sft " in job
        assert "cpus_per_task=2" in job and ", gpu=" not in job
    # one GPU, a partition of its own; one rank: no launcher
    for job in jobs_of(p.stdout, "evaluate"):
        assert "gpu=1" in job and "slurm_partition=eval" in job and "Shell command: speechrl evaluate " in job
    # defaults from `cluster`
    (report,) = jobs_of(p.stdout, "report")
    assert "cpus_per_task=8" in report and "mem_mb=32000" in report and "runtime=120" in report


def test_site_errors_name_the_key(tmp_path: Path):
    p = dry_run(tmp_path, "cluster: {gpus_per_node: 2}\njobs: {rl: {gpus: 4}}\n")
    assert p.returncode != 0 and "jobs.rl.gpus=4 but cluster.gpus_per_node=2" in p.stderr + p.stdout
    p = dry_run(tmp_path, "jobs: {rll: {gpus: 1}}\n")
    assert p.returncode != 0 and "rll" in p.stderr + p.stdout


def test_profile_name_slurm_resolves_from_the_repository_root(monkeypatch):
    from snakemake.cli import get_profile_dir

    monkeypatch.chdir(ROOT)
    folder, config = get_profile_dir("slurm")  # how `snakemake --profile slurm` finds it: ./slurm first
    assert folder.resolve() == (ROOT / "workflow" / "profiles" / "slurm").resolve()
    text = config.read_text()
    assert "executor: slurm" in text and "slurm-status-command: squeue" in text and "slurm-no-account: true" in text
    assert "slurm-init-seconds-before-status-checks: 1" in text
