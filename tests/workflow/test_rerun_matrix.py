"""Only what changed reruns: which jobs a config change reruns (Snakemake dry runs on the tiny suite).

Baseline: the config jobs (resolve_config, one config_slice per slice) run for real, so Snakemake
records their params; every other output is created empty and `snakemake --touch` orders the
timestamps as if the whole pipeline had run. Then each case adds one more --configfile and reads
the jobs `snakemake -n` would run. The tiny suite: tasks sqa + ast, seeds 0 + 1, algorithms grpo
+ leaf, reward ablation grpo-rouge_l on sqa, the sft_more control.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TINY = ROOT / "tests" / "workflow" / "tiny.yaml"
TASKS, SEEDS = ("sqa", "ast"), (0, 1)
RL_SYSTEMS = {"sqa": ["grpo", "leaf", "grpo-rouge_l"], "ast": ["grpo", "leaf"]}
N_RL = sum(len(v) for v in RL_SYSTEMS.values()) * len(SEEDS)  # 10 RL jobs
N_EVAL = sum(3 + len(v) for v in RL_SYSTEMS.values())  # base, sft, sft_more + RL, each one job for both seeds: 11

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str, extra: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    configs = [str(TINY)] + ([str(extra)] if extra else [])
    cmd = [str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", *configs, "--cores", "2", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def jobs(dry_run_stdout: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry run lists."""
    out = []
    for m in re.finditer(r"^(?:local)?rule (\w+):\n((?:[ \t]+.*\n?)*)", dry_run_stdout, re.M):
        wc = re.search(r"^\s+wildcards: (.*)$", m.group(2), re.M)
        pairs = [kv.split("=", 1) for kv in wc.group(1).split(", ")] if wc else []
        out.append((m.group(1), dict(pairs)))
    return out


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wd = tmp_path_factory.mktemp("rerun")
    p = snakemake(wd, "--until", "resolve_config", "config_slice", "tracking_slice")
    assert p.returncode == 0, p.stderr[-3000:]
    summary = snakemake(wd, "--summary")
    assert summary.returncode == 0, summary.stderr[-3000:]
    for line in summary.stdout.splitlines()[1:]:
        path, *_, status, _plan = line.split("\t")
        if status == "missing":  # a job's output: a file if it has a suffix, else a folder
            f = wd / path
            f.parent.mkdir(parents=True, exist_ok=True)
            f.touch() if f.suffix else f.mkdir(exist_ok=True)
    touch = snakemake(wd, "--touch")
    assert touch.returncode == 0, touch.stderr[-3000:]
    dry = snakemake(wd, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
    return wd


def rerun(wd: Path, change: dict) -> list[tuple[str, dict[str, str]]]:
    extra = wd / "change.yaml"
    extra.write_text(yaml.safe_dump(change))
    p = snakemake(wd, "-n", extra=extra)
    assert p.returncode == 0, p.stderr[-3000:]
    return [(r, w) for r, w in jobs(p.stdout) if r != "all"]


def counts(js: list[tuple[str, dict[str, str]]]) -> dict[str, int]:
    return dict(Counter(r for r, _ in js))


def test_adding_an_algorithm_runs_only_its_jobs_and_the_report(baseline: Path):
    js = rerun(baseline, {"rl": {"algorithms": ["grpo", "leaf", "gspo"]}})
    assert counts(js) == {"resolve_config": 1, "config_slice": 2, "rl": 4, "evaluate": 2, "report": 1}  # a slice per task
    assert {(w["scope"], w["slice"]) for r, w in js if r == "config_slice"} == {("sqa", "rl-gspo"), ("ast", "rl-gspo")}
    assert {w["rlsys"] for r, w in js if r == "rl"} == {"gspo"}
    assert {w["system"] for r, w in js if r == "evaluate"} == {"gspo"}


def test_rl_lr_reruns_rl_its_evaluations_and_the_report_not_data_init_sft_or_control(baseline: Path):
    js = rerun(baseline, {"rl": {"lr": 1e-4}})
    assert counts(js) == {"resolve_config": 1, "config_slice": 5, "rl": N_RL, "evaluate": N_RL // len(SEEDS), "report": 1}
    assert {w["slice"] for r, w in js if r == "config_slice"} == {"rl-grpo", "rl-leaf", "rl-grpo-rouge_l"}
    assert {w["system"] for r, w in js if r == "evaluate"} == {"grpo", "leaf", "grpo-rouge_l"}


def test_rl_rewards_do_not_rerun_the_reward_ablation(baseline: Path):
    js = rerun(baseline, {"rl": {"rewards": {"bleu": 1.0, "chrf": 0.5}}})
    assert {w["rlsys"] for r, w in js if r == "rl"} == {"grpo", "leaf"}


def test_sft_lr_reruns_sft_and_what_follows_but_not_data_or_init(baseline: Path):
    js = rerun(baseline, {"sft": {"lr": 2e-3}})
    n_control = len(TASKS) * len(SEEDS)
    assert counts(js) == {"resolve_config": 1, "config_slice": 4, "sft": 2, "rl": N_RL, "sft_more": n_control,
                          "evaluate": N_EVAL - len(TASKS), "report": 1}  # all but base
    assert {w["slice"] for r, w in js if r == "config_slice"} == {"sft", "sft_more"}
    assert "base" not in {w["system"] for r, w in js if r == "evaluate"}


def test_evaluation_report_and_tracking_keys_rerun_only_their_jobs(baseline: Path):
    assert counts(rerun(baseline, {"evaluate": {"temperature": 0.7}})) == {
        "resolve_config": 1, "config_slice": 2, "evaluate": N_EVAL, "report": 1}
    assert counts(rerun(baseline, {"report": {"paper_numbers": False}})) == {"resolve_config": 1, "report": 1}
    assert counts(rerun(baseline, {"report": {"decoding": "greedy"}})) == {"resolve_config": 1, "report": 1}
    # a new MLflow experiment: a new pipeline run; the jobs' results stand
    assert counts(rerun(baseline, {"tracking": {"experiment": "other"}})) == {
        "resolve_config": 1, "tracking_slice": 1, "tracking_init": 1, "report": 1}


def test_data_keys_rerun_everything(baseline: Path):
    js = counts(rerun(baseline, {"data": {"synthetic": {"n_train": 13}}}))
    assert js == {"resolve_config": 1, "config_slice": 2, "data": 2, "init_model": 1, "sft": 2, "rl": N_RL,
                  "sft_more": 4, "evaluate": N_EVAL, "report": 1}


def test_a_bad_cross_field_value_stops_before_any_job(baseline: Path):
    extra = baseline / "bad.yaml"
    extra.write_text(yaml.safe_dump({"evaluate": {"decodings": ["greedy"]}}))  # report.decoding: sampled
    p = snakemake(baseline, "-n", extra=extra)
    assert p.returncode != 0 and "report.decoding='sampled' is not among evaluate.decodings" in p.stdout + p.stderr


def test_a_task_setting_reruns_only_that_tasks_jobs(baseline: Path):
    js = rerun(baseline, {"tasks": {"ast": {"rl": {"lr": 1e-4}}}})
    assert counts(js) == {"resolve_config": 1, "config_slice": 2, "rl": 4, "evaluate": 2, "report": 1}
    assert {w["task"] for r, w in js if r in ("rl", "evaluate")} == {"ast"}
    assert {(w["scope"], w["slice"]) for r, w in js if r == "config_slice"} == {("ast", "rl-grpo"), ("ast", "rl-leaf")}
