"""Pre-emption through a real SLURM: an RL job stopped by SIGUSR1 (what `--signal=USR1@SECONDS` sends ahead
of the time limit) and then pre-empted (`scontrol requeue`: SIGTERM, back in the queue under the same
job id) resumes each time and ends with the weights of an uninterrupted run.

Its own cluster (tests/workflow/slurm_cluster.py, one node) with a short requeue delay (a requeued job
waits AuthInfo cred_expire, 120 s by default, then the backfill scheduler starts it). The upstream jobs
(data, base model, SFT) run locally first; the RL job then runs through `snakemake --profile slurm`
(the repository's profile: slurm-requeue, retries) with checkpoints only on signals
(train.checkpoint_every 0, checkpoint_minutes 0):
  1. attempt 1, at a random step: `scancel --signal=USR1` (to the job's steps, as --signal does): the job
     saves a checkpoint, exits 128 + 10, SLURM marks it FAILED and Snakemake (retries) submits it again;
  2. attempt 2 resumes; at a later random step `scontrol requeue`: SIGTERM, checkpoint, exit 128 + 15,
     SLURM requeues the job (Restarts=1); the plugin sees it PENDING and waits;
  3. attempt 3 (same SLURM job) resumes and completes; Snakemake exits 0.
Then the RL job runs again locally, uninterrupted (--forcerun), and both models are compared tensor by tensor.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from workflow.slurm_cluster import SlurmCluster, SlurmError

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HERE = ROOT / "tests" / "workflow"
RL_OUT, RL_LOG, DESC = "results/rl/sqa/grpo/s0", "logs/rl/sqa/grpo/s0.log", "rl sqa grpo"
STEPS = 30
OVERLAY = {"rl": {"steps": STEPS, "log_every": 1}, "train": {"checkpoint_every": 0, "checkpoint_minutes": 0}}
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]


@pytest.fixture(scope="module")
def cluster():
    """One node, requeued jobs start again after ~5-10 s. Fails (never skips) if it cannot start."""
    c = SlurmCluster(gpus=1, nodes=1, requeue_delay=5)
    try:
        c.start()
    except SlurmError as e:
        c.stop()
        pytest.fail(f"the test SLURM cluster did not start: {e}", pytrace=False)
    yield c
    c.stop()


def snakemake(workdir: Path, files: dict[str, Path], *args: str, slurm: bool = False) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    how = ["--profile", "slurm", "--slurm-keep-successful-logs"] if slurm else ["--cores", "2"]
    cmd = [str(BIN / "snakemake"), *how, "--directory", str(workdir), "--configfile", str(HERE / "tiny.yaml"),
           str(HERE / "slurm.yaml"), str(files["overlay"]), "--config", f"site={files['site']}", *args]
    out = workdir.with_name(f"{workdir.name}.{len(list(workdir.parent.glob('*.out')))}.out")
    with out.open("w") as f:
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
    p.out = out  # type: ignore[attr-defined]
    return p


def finish(p: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    p.wait(timeout=timeout)
    return p.returncode, p.out.read_text()  # type: ignore[attr-defined]


def attempts(log: Path) -> list[str]:
    return log.read_text().split("=== speechrl rl:")[1:] if log.exists() else []


def wait_for(p: subprocess.Popen, what: str, check, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        assert p.poll() is None, f"snakemake ended while waiting for {what}:\n{finish(p)[1][-4000:]}"
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def steps(text: str) -> list[int]:
    return [int(s) for s in re.findall(rf"\[{DESC}\] step (\d+)/", text)]


def signalled(workdir: Path, attempt: int, k: int, p: subprocess.Popen, send: list[str], name: str) -> tuple[int, float]:
    """Once attempt `attempt` of the job logged step >= k, run `send`; wait for the job to report the stop
    and return (the step it stopped after, seconds from the signal to its checkpoint line)."""
    log = workdir / RL_LOG
    wait_for(p, f"attempt {attempt} at step {k}",
             lambda: len(attempts(log)) == attempt and steps(attempts(log)[-1])[-1:] >= [k])
    t0 = time.monotonic()
    subprocess.run(send, check=True, capture_output=True, timeout=30)
    wait_for(p, f"the checkpoint of attempt {attempt}", lambda: "checkpoint after step" in attempts(log)[attempt - 1])
    seconds = time.monotonic() - t0
    stop = wait_for(p, f"{name} stop of attempt {attempt}", lambda: re.search(
        rf"speechrl rl: stopped by {name} after step (\d+); checkpoint \S+; rerun the job to resume",
        attempts(log)[attempt - 1]))
    return int(stop.group(1)), seconds


def test_preempted_rl_job_resumes_under_slurm(cluster, tmp_path: Path):
    import torch
    from safetensors.torch import load_file

    site = yaml.safe_load((HERE / "site_slurm.yaml").read_text())
    site["cluster"]["slurm_extra"] = "--open-mode=append"  # SLURM's own log keeps a requeued job's first run
    files = {"overlay": tmp_path / "preempt.yaml", "site": tmp_path / "site.yaml"}
    files["overlay"].write_text(yaml.safe_dump(OVERLAY))
    files["site"].write_text(yaml.safe_dump(site))
    wd = tmp_path / "wd"
    wd.mkdir()
    t0 = time.monotonic()
    rc, out = finish(snakemake(wd, files, "--", "results/sft/sqa"))  # upstream, locally
    assert rc == 0, out[-4000:]
    t_up = time.monotonic() - t0

    rng = random.Random()
    k1 = rng.randint(2, 6)
    p = snakemake(wd, files, "--", RL_OUT, slurm=True)
    job1 = wait_for(p, "the first submission", lambda: SUBMITTED.findall(p.out.read_text()))[0][0]
    s1, usr1_s = signalled(wd, 1, k1, p, ["scancel", "--signal=USR1", job1], "SIGUSR1")
    wait_for(p, "the retry's submission", lambda: len(SUBMITTED.findall(p.out.read_text())) == 2, timeout=120)
    job2 = SUBMITTED.findall(p.out.read_text())[1][0]
    k2 = rng.randint(s1 + 2, s1 + 8)
    print(f"[slurm-preempt] SIGUSR1 at step {k1} of SLURM job {job1}; requeue at step {k2} of SLURM job {job2}")
    s2, term_s = signalled(wd, 2, k2, p, ["scontrol", "requeue", job2], "SIGTERM")
    rc, out = finish(p)
    t_slurm = time.monotonic() - t0 - t_up
    assert rc == 0, out[-4000:]
    print(f"[slurm-preempt] upstream {t_up:.0f} s, RL under SLURM {t_slurm:.0f} s; signal -> checkpoint line: "
          f"SIGUSR1 {usr1_s:.1f} s, SIGTERM {term_s:.1f} s; stopped after steps {s1} and {s2}")

    # one retry by Snakemake (a new SLURM job), one requeue by SLURM (the same job, started twice)
    jobs = SUBMITTED.findall(out)
    assert [j for j, _ in jobs] == [job1, job2], jobs
    first, second = cluster.job(job1), cluster.job(job2)
    assert first["JobState"] == "FAILED" and first["Restarts"] == "0", first
    assert second["JobState"] == "COMPLETED" and second["Restarts"] == "1" and second["Requeue"] == "1", second
    slurm_log1, slurm_log2 = (Path(log).read_text() for _, log in jobs)
    # SIGUSR1 reached the job step (the plugin's shell, its snakemake, the rule's shell and speechrl: only
    # speechrl handles it; SLURM waits for it to exit); the attempt failed and was not requeued
    assert "task 0: User defined signal 1" in slurm_log1 and "Error in rule rl:" in slurm_log1, slurm_log1[-3000:]
    # the requeue: both runs of SLURM job 2 in its log (--open-mode=append), the first cancelled, the second done
    assert slurm_log2.count("SNAKEMAKE\n=========") == 4, slurm_log2[-3000:]  # batch + job step snakemake, twice
    cancel = slurm_log2.find(f"*** JOB {job2} ON {cluster.names[0]} CANCELLED AT")
    assert cancel > 0 and "DUE TO JOB REQUEUE" in slurm_log2[cancel:], slurm_log2[-3000:]
    done = "1 of 1 steps (100%) done"
    assert done not in slurm_log2[:cancel] and done in slurm_log2[cancel:], slurm_log2[-3000:]

    # the job's log holds the three attempts; each later one resumed where the previous one stopped
    runs = attempts(wd / RL_LOG)
    assert len(runs) == 3, (wd / RL_LOG).read_text()[-4000:]
    assert steps(runs[0]) == list(range(1, s1 + 1))
    for text, k, nxt in ((runs[1], s1, s2), (runs[2], s2, STEPS)):
        assert f"resuming from checkpoint results/rl/sqa/grpo/.s0.ckpt/latest after step {k}" in text, text[-3000:]
        assert steps(text) == list(range(k + 1, nxt + 1)), (k, steps(text))
    assert not list((wd / "results" / "rl" / "sqa" / "grpo").glob(".s0.*"))  # no .partial / .ckpt left

    # the same weights and history as an uninterrupted run of the job
    got = load_file(str(wd / RL_OUT / "model" / "model.safetensors"))
    summary = json.loads((wd / RL_OUT / "summary.json").read_text())
    rc, out = finish(snakemake(wd, files, "--forcerun", "rl", "--", RL_OUT))
    assert rc == 0, out[-4000:]
    want = load_file(str(wd / RL_OUT / "model" / "model.safetensors"))
    assert got.keys() == want.keys() and all(torch.equal(got[n], want[n]) for n in want)
    assert summary["history"] == json.loads((wd / RL_OUT / "summary.json").read_text())["history"]
    assert len(summary["history"]) == STEPS
    print(f"[slurm-preempt] total {time.monotonic() - t0:.0f} s")
