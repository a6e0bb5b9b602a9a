"""Kill -9 and resume, end to end through Snakemake (issue 10 item 5).

The tiny pipeline cut to one task, one RL algorithm, one seed, checkpointing after every step
(`train.checkpoint_every: 1`), up to the RL job's output, runs as a user runs it (`snakemake --profile workflow/profiles/local`,
which sets --rerun-incomplete). The `speechrl sft` process is SIGKILLed at a random step, the same
command is run again (SFT resumes, then the `speechrl rl` process is SIGKILLed at a random step), and
once more (RL resumes, the pipeline completes). An uninterrupted run of the same config runs beside it in
another folder. Checked: each killed job resumed from its checkpoint and trained no step twice, its final
weights (every tensor) and summary history equal the uninterrupted run's, its log holds every attempt
(appended, never overwritten), its MLflow run (the default sqlite store under results/) is the same run
across attempts and ends FINISHED, no run stays RUNNING, no hidden .partial / .ckpt folder is left.

Also pinned here: Snakemake itself deletes a job's `log:` file before it runs the job (also a rerun
after a failure), so `>> {log}` alone keeps only the last attempt.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TINY = ROOT / "tests" / "workflow" / "tiny.yaml"
STEPS = {"sft": 6, "rl": 6}
OVERLAY = {  # on tiny.yaml: one task, one RL algorithm, one seed, a checkpoint after every step
    "name": "tiny-resume",
    "data": {"tasks": ["sqa"]},
    "sft": {"max_steps": STEPS["sft"], "log_every": 1},
    "rl": {"algorithms": ["grpo"], "steps": STEPS["rl"], "log_every": 1},
    "suite": {"seeds": [0], "control": False, "ablation_tasks": []},
    "evaluate": {"metrics": ["bleu"]},
    "train": {"checkpoint_every": 1},
}
JOB = {"sft": ("results/sft/sqa", "logs/sft/sqa.log", "sft sqa"),
       "rl": ("results/rl/sqa/grpo/s0", "logs/rl/sqa/grpo/s0.log", "rl sqa grpo")}

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, overlay: Path) -> subprocess.Popen:
    """The pipeline as a user starts it, with the local profile (--rerun-incomplete); its output goes to
    a file beside the working directory (``p.out``), read by :func:`finish`."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "--profile", str(ROOT / "workflow" / "profiles" / "local"),
           "--directory", str(workdir), "--configfile", str(TINY), str(overlay), "--", JOB["rl"][0]]
    out = workdir.with_name(f"{workdir.name}.{len(list(workdir.parent.glob(f'{workdir.name}.*.out')))}.out")
    with out.open("w") as f:
        p = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)
    p.out = out  # type: ignore[attr-defined]
    return p


def finish(p: subprocess.Popen, timeout: float = 900) -> tuple[int, str]:
    p.wait(timeout=timeout)
    return p.returncode, p.out.read_text()  # type: ignore[attr-defined]


def job_pid(workdir: Path, stage: str) -> int | None:
    """The `speechrl <stage>` process writing into this working directory (by its command line and cwd)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode().split("\0")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        for i, arg in enumerate(argv[:-1]):
            if Path(arg).name == "speechrl" and argv[i + 1] == stage and Path(cwd) == workdir:
                return int(proc.name)
    return None


def last_attempt(log: Path, stage: str) -> str:
    text = log.read_text() if log.exists() else ""
    return text[text.rfind(f"=== speechrl {stage}:"):] if f"=== speechrl {stage}:" in text else ""


def kill_at_step(p: subprocess.Popen, workdir: Path, stage: str, step: int) -> tuple[int, int, str]:
    """SIGKILL `speechrl <stage>` once its log shows the checkpoint after `step`; returns (that checkpoint's
    step, the last step the log shows, the log as the kill left it) after Snakemake has given up on the job."""
    _, log, desc = JOB[stage]
    line, saved = re.compile(rf"\[{desc}\] step (\d+)/"), re.compile(r"checkpoint after step (\d+) ")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        done = [int(s) for s in saved.findall(last_attempt(workdir / log, stage))]
        if done and done[-1] >= step:
            pid = job_pid(workdir, stage)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                break
        assert p.poll() is None, f"snakemake ended before {stage} saved step {step}:\n{finish(p)[1][-4000:]}"
        time.sleep(0.02)
    else:
        raise AssertionError(f"{stage} never saved step {step}")
    rc, out = finish(p)
    assert rc != 0 and f"Error in rule {stage}:" in out, out[-4000:]
    text = (workdir / log).read_text()
    attempt = last_attempt(workdir / log, stage)
    return max(int(s) for s in saved.findall(attempt)), max(int(s) for s in line.findall(attempt)), text


def resumed(log_text: str, stage: str, desc: str, attempt: int) -> int:
    """Check the `attempt`-th attempt (1-based) of a job's log resumed and trained no step twice; returns k."""
    attempts = log_text.split(f"=== speechrl {stage}:")[1:]
    text = attempts[attempt - 1]
    m = re.search(r"resuming from checkpoint \S+ after step (\d+)", text)
    assert m, text[-3000:]
    k = int(m.group(1))
    trained = [int(s) for s in re.findall(rf"\[{desc}\] step (\d+)/", text)]
    assert trained == list(range(k + 1, STEPS[stage] + 1)), (k, trained)  # no step <= k again, none skipped
    return k


def tensors(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def test_snakemake_deletes_a_jobs_log_before_it_runs_the_job(tmp_path: Path):
    """Why `>> {log}` alone does not keep a failed attempt: Snakemake removes the log: file first."""
    (tmp_path / "Snakefile").write_text(
        'rule a:\n    output: "out.txt"\n    log: "a.log"\n'
        '    shell: "echo attempt >> {log}; test -e go; touch {output}"\n')
    run = [str(BIN / "snakemake"), "--cores", "1", "--rerun-incomplete", "-d", str(tmp_path), "-s", str(tmp_path / "Snakefile")]
    assert subprocess.run(run, capture_output=True).returncode != 0
    assert (tmp_path / "a.log").read_text() == "attempt\n"
    (tmp_path / "go").touch()
    assert subprocess.run(run, capture_output=True).returncode == 0
    assert (tmp_path / "a.log").read_text() == "attempt\n"  # the first attempt's line is gone


def test_sigkill_then_rerun_resumes_and_equals_an_uninterrupted_run(tmp_path: Path):
    import mlflow
    import torch

    overlay = tmp_path / "resume.yaml"
    overlay.write_text(yaml.safe_dump(OVERLAY))
    wd, ref = tmp_path / "killed", tmp_path / "uninterrupted"
    wd.mkdir()
    ref.mkdir()
    t0 = time.monotonic()
    reference = snakemake(ref, overlay)
    rng = random.Random()
    k_sft, k_rl = rng.randint(1, STEPS["sft"] - 1), rng.randint(1, STEPS["rl"] - 1)
    print(f"[resume] SIGKILL of sft at step {k_sft}, of rl at step {k_rl}")

    # attempt 1: SFT killed at a random step
    saved_sft, shown_sft, sft_log1 = kill_at_step(snakemake(wd, overlay), wd, "sft", k_sft)
    ckpt = wd / "results" / "sft" / ".sqa.ckpt"
    assert (ckpt / "latest" / "loop.json").is_file() and not (wd / "results" / "sft" / "sqa").exists()
    # attempt 2: SFT resumes; RL killed at a random step
    saved_rl, shown_rl, rl_log1 = kill_at_step(snakemake(wd, overlay), wd, "rl", k_rl)
    # attempt 3: RL resumes, the pipeline completes
    rc, out = finish(snakemake(wd, overlay))
    assert rc == 0, out[-4000:]
    rc_ref, out_ref = finish(reference)
    assert rc_ref == 0, out_ref[-4000:]
    print(f"[resume] three attempts + uninterrupted run: {time.monotonic() - t0:.0f} s")

    for stage, saved, shown, first in (("sft", saved_sft, shown_sft, sft_log1), ("rl", saved_rl, shown_rl, rl_log1)):
        out_dir, log, desc = JOB[stage]
        text = (wd / log).read_text()
        # the log was appended to: the killed attempt's lines come first, then the rerun's
        assert text.startswith(first) and text.count(f"=== speechrl {stage}:") == 2, text[:3000]
        k = resumed(text, stage, desc, 2)
        print(f"[resume] {stage}: the kill came after step {shown} (checkpoint of step {saved} seen), resumed "
              f"after step {k}: {shown - k} step(s) trained again")
        assert saved <= k <= shown
        got, want = tensors(wd / out_dir / "model"), tensors(ref / out_dir / "model")
        assert got.keys() == want.keys() and all(torch.equal(got[n], want[n]) for n in want), stage
        summary, expected = (json.loads((d / out_dir / "summary.json").read_text()) for d in (wd, ref))
        assert summary["history"] == expected["history"] and summary["steps"] == expected["steps"], stage

    results = wd / "results"
    hidden = [p for p in results.rglob(".*") if p.name.endswith((".partial", ".ckpt", ".old"))]
    assert hidden == [], hidden
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id], max_results=100)
    # every job's run FINISHED (none RUNNING, KILLED or FAILED); the pipeline run stays open for the report job
    assert [r.info.run_name for r in runs if r.info.status != "FINISHED"] == ["pipeline:tiny-resume"], \
        [(r.info.run_name, r.info.status) for r in runs]
    for stage in ("sft", "rl"):
        job_runs = [r for r in runs if r.data.tags.get("speechrl.stage") == stage]
        assert len(job_runs) == 1, [r.info.run_id for r in job_runs]  # the rerun resumed the killed attempt's run
    rl_run = next(r for r in runs if r.data.tags.get("speechrl.stage") == "rl")
    # every step's metrics once: those the killed attempt logged up to its checkpoint are kept, none is lost
    logged = [m.step for m in client.get_metric_history(rl_run.info.run_id, "reward/mean")]
    assert logged == list(range(1, STEPS["rl"] + 1)), logged
