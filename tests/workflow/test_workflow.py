"""A tiny end-to-end Snakemake run of the whole DAG, then the checks a user would make."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_snakemake

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TASKS, SEEDS = ("sqa", "ast"), (0, 1)
RL = {"sqa": ["grpo", "leaf", "grpo-rouge_l"], "ast": ["grpo", "leaf"]}  # tiny.yaml: algorithms + the ablation on sqa
SYSTEMS = {t: ["base", "sft", "sft_more", *RL[t]] for t in TASKS}
JOBS = {"data": 2, "init_model": 1, "sft": 2, "rl": 2 * 5, "sft_more": 2 * 2, "evaluate": 11}  # one evaluate job per task x system covers both seeds


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return run_snakemake(workdir, ROOT / "tests" / "workflow" / "tiny.yaml", *args)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wd = tmp_path_factory.mktemp("workflow")
    p = snakemake(wd)
    assert p.returncode == 0, p.stderr[-4000:]
    return wd


@pytest.mark.workflow
def test_report_and_logs(run: Path):
    report = run / "results" / "report"
    html = (report / "index.html").read_text()
    assert "GRPO" in html and "BLEU" in html and "SFT" in html
    assert (report / "tables.md").exists() and "\\begin{tabular}" in (report / "tables.tex").read_text()
    slices = {t: ["data", "sft", "sft_more", "evaluate", *(f"rl-{s}" for s in RL[t])] for t in TASKS}
    expected = {"resolve_config.log", "tracking_init.log", "init_model/granite_speech.log", "report.log", "data/sqa.log",
                "data/ast.log", "config/tracking.log", "config/models/granite_speech.log",
                *(f"config/{t}/{s}.log" for t in TASKS for s in slices[t]),
                "sft/sqa.log", "sft/ast.log",
                *(f"rl/{t}/{s}/s{sd}.log" for t in TASKS for s in RL[t] for sd in SEEDS),
                *(f"sft_more/{t}/s{sd}.log" for t in TASKS for sd in SEEDS),
                *(f"evaluate/{t}/{s}.log" for t in TASKS for s in SYSTEMS[t])}
    assert {str(p.relative_to(run / "logs")) for p in (run / "logs").rglob("*.log")} == expected
    sft_log = (run / "logs" / "sft" / "sqa.log").read_text()
    assert "[sft sqa] step 2/6 (33.3%)" in sft_log and "eta" in sft_log  # progress lines reach the job log
    summary = json.loads((report / "summary.json").read_text())
    assert {"greedy", "sampled", "seeds_sampled", "ablation", "leaf_vs_grpo"} <= set(summary["tables"])
    assert set(summary["tables"]["sampled"]["sqa"]) == {"base", "sft", "sft_more", "grpo", "leaf"}
    assert summary["tables"]["sampled"]["sqa"]["grpo"]["bleu"]["ci95"] is not None  # 2 seeds -> an interval
    assert summary["figures"] == ["curves_sqa.png", "curves_ast.png"] and (report / "curves_sqa.png").stat().st_size > 1000


@pytest.mark.workflow
def test_every_job_writes_a_manifest_with_one_config_hash_per_slice(run: Path):
    from speechrl.config import load_config

    manifests = [json.loads(p.read_text()) for p in (run / "results").rglob("manifest.json")]
    assert sorted({m["stage"] for m in manifests}) == sorted([*JOBS, "report"])
    # each job records the config it ran with: its slice (results/config/<task>/<slice>.yaml; the report: the
    # whole config results/config.yaml), with --seed N for the RL, control and evaluation jobs
    by_file: dict[str, set[str]] = {}
    for m in manifests:
        argv = m["command"]
        path = argv[argv.index("--config") + 1]
        cfg = load_config(run / path)
        if "--seed" in argv:
            cfg = dataclasses.replace(cfg, seed=int(argv[argv.index("--seed") + 1]))
        assert m["config_hash"] == cfg.hash() and m["config"] == cfg.to_dict(), path
        if m["seed"] == 0:
            by_file.setdefault(path, set()).add(m["config_hash"])
    names = {str(Path(p).relative_to("results/config")) if p.startswith("results/config/") else p for p in by_file}
    assert names == {"models/granite_speech.yaml", "results/config.yaml",
                     *(f"{t}/{s}.yaml" for t in TASKS for s in ("data", "sft", "sft_more", "evaluate", "rl-grpo", "rl-leaf")),
                     "sqa/rl-grpo-rouge_l.yaml"}
    assert all(len(h) == 1 for h in by_file.values())  # one hash per slice (and seed)
    # slices differ from each other, except one stage's slice of two tasks with the same settings (sqa and ast here)
    stages = {str(Path(p).name) for p in by_file}
    assert len(set.union(*by_file.values())) == len(stages)
    assert {m["seed"] for m in manifests if m["stage"] in ("rl", "sft_more", "evaluate")} == set(SEEDS)
    assert {m["seed"] for m in manifests if m["stage"] in ("data", "init_model", "sft")} == {0}
    # the commit of this repository (git runs where the package source is, not in the --directory cwd);
    # HEAD or, should a commit land while the pipeline runs, an ancestor of it
    for commit in {m["git"]["commit"] for m in manifests}:
        assert len(commit) == 40 and subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"],
                                                    cwd=ROOT).returncode == 0, commit
    for m in manifests:
        assert m["versions"]["torch"].startswith("2.13.0") and isinstance(m["git"]["dirty"], bool) and "reason" not in m["git"]


@pytest.mark.workflow
def test_mlflow_runs_are_nested_under_one_pipeline_run(run: Path):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{run / 'results' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("speechrl.stage") == "pipeline"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    n_runs = sum(JOBS.values()) + JOBS["evaluate"] * (len(SEEDS) - 1)  # an evaluate job: one run per seed
    assert len(children) == n_runs and all(r.info.status == "FINISHED" for r in children)
    rl = next(r for r in children if r.data.tags["speechrl.stage"] == "rl")
    assert "reward/mean" in rl.data.metrics and rl.data.params["rl.group_size"] == "4"
    history = client.get_metric_history(rl.info.run_id, "reward/mean")
    assert [m.step for m in history] == [1, 2]
    arts = {a.path for a in client.list_artifacts(rl.info.run_id)}
    assert {"config.yaml", "manifest.json", "summary.json"} <= arts
    ev = next(r for r in children if r.data.tags["speechrl.stage"] == "evaluate")
    assert {"metrics.json", "samples.jsonl"} <= {a.path for a in client.list_artifacts(ev.info.run_id)}


@pytest.mark.workflow
def test_eval_seeds_benchmark_runs(run: Path):
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "eval_seeds.py"), str(run / "results"), "--task", "ast",
                        "--system", "sft", "--seeds", "0", "1"], capture_output=True, text=True, timeout=600, cwd=run)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "evaluate ast sft, seeds 0 1: one process" in p.stdout and "one process per seed" in p.stdout


@pytest.mark.workflow
def test_rerun_does_nothing_and_audit_is_clean(run: Path):
    p = snakemake(run, "-n")
    assert p.returncode == 0 and "Nothing to be done" in p.stdout + p.stderr
    audit = subprocess.run([str(BIN / "speechrl"), "audit", "--results", "results"], cwd=run, capture_output=True, text=True)
    assert audit.returncode == 0, audit.stdout
    # tamper with a checkpoint: the audit names it
    weights = next((run / "results" / "sft" / "sqa" / "model").glob("*.safetensors"))
    original = weights.read_bytes()
    weights.write_bytes(original + b"x")
    try:
        bad = subprocess.run([str(BIN / "speechrl"), "audit", "--results", "results"], cwd=run, capture_output=True, text=True)
        assert bad.returncode == 1 and f"{weights.name} changed since the job ran" in bad.stdout
    finally:
        weights.write_bytes(original)


def test_lint_and_dry_run_are_clean(tmp_path: Path):
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    lint = subprocess.run([str(BIN / "snakemake"), "--lint"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert lint.returncode == 0 and "Lints for" not in lint.stdout + lint.stderr
    dry = snakemake(tmp_path, "-n")
    assert dry.returncode == 0 and "total" in dry.stdout


@pytest.mark.parametrize("experiment", ["grpo_sallm", "leaf"])
def test_real_experiment_dag_has_gpu_resources(tmp_path: Path, experiment: str):
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    cmd = [str(BIN / "snakemake"), "-n", "-p", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(ROOT / "config" / "experiments" / f"{experiment}.yaml"),
           "--config", f"site={ROOT / 'config' / 'site.h100.yaml'}"]  # resources come from the site file
    dry = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    jobs = dry.stdout.split("rule ")[1:]
    for rule in ("sft:", "rl:", "sft_more:"):
        blocks = [j for j in jobs if j.startswith(rule)]
        assert blocks and all("gpu=4" in b and "runtime=1440" in b for b in blocks), rule
        assert all("torchrun --standalone --nnodes 1 --nproc-per-node 4 --no-python speechrl" in b for b in blocks), rule
    assert all("gpu=1" in j for j in jobs if j.startswith("evaluate:"))
    rl = {line.split("rlsys=")[1].split(",")[0] for j in jobs if j.startswith("rl:") for line in j.splitlines() if "rlsys=" in line}
    assert rl == ({"grpo", "mp_grpo", "grpo-rouge_l", "grpo-meteor", "grpo-bertscore"} if experiment == "grpo_sallm" else {"grpo", "leaf"})
