"""The real-model experiments of the speech-token tasks (config/experiments/se_gspo.yaml, tts_segment_gspo.yaml):
their full DAG on the example GPU site (dry runs, no cluster, no data) and the paper settings each task's jobs read.

An experiment file is layered on config/config.yaml, by Snakemake (``configfile:`` then ``--configfile``, merged key
by key) and by ``speechrl resolve-config --config config/config.yaml <file>``; config.yaml's own ``tasks.se`` /
``tasks.tts`` (the CPU-scale suite) must not leak into a task's settings.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from speechrl.config import load_config
from speechrl.config.slices import task_config

pytestmark = pytest.mark.workflow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# SE-GSPO's 2-prompt RL batch runs on one GPU per training job; the TTS comparison on the 4-GPU site
SITE = {"se": ROOT / "config" / "site.h100-1gpu.yaml", "tts": ROOT / "config" / "site.h100.yaml"}
GPUS = {"se": 1, "tts": 4}
CPUS = {"se": 8, "tts": 32}
MEM = {"se": 128000, "tts": 256000}
EXPERIMENTS = {"se": ROOT / "config" / "experiments" / "se_gspo.yaml",
               "tts": ROOT / "config" / "experiments" / "tts_segment_gspo.yaml"}

SE_ABLATION = ["dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "utmos", "asr_wer", "pesq", "stoi"]
TTS_ALGOS = ["grpo", "gspo", "gspo_token", "gspo_segment_window", "gspo_segment_logprob", "gspo_segment_tokenid",
             "gmpo", "sapo", "p_gspo"]
TTS_SWEEP = ["gspo_segment_window@window=16", "gspo_segment_logprob@tau=2", "gspo_segment_tokenid@delta=4096"]
# rl: systems x 3 seeds; evaluate: base, sft and the systems (one job covers the 3 seeds); config_slice: data, tokenize, sft, evaluate,
# one per RL system and the base model's.
JOBS = {
    "se": {"config_slice": 4 + 8 + 1, "resolve_config": 1, "tracking_slice": 1, "tracking_init": 1, "data": 1,
           "tokenize": 1, "init_model": 1, "sft": 1, "rl": 8 * 3, "evaluate": 10, "report": 1, "all": 1},
    "tts": {"config_slice": 4 + 12 + 1, "resolve_config": 1, "tracking_slice": 1, "tracking_init": 1, "data": 1,
            "tokenize": 1, "init_model": 1, "sft": 1, "rl": 12 * 3, "evaluate": 14, "report": 1, "all": 1},
}
RL_SYSTEMS = {"se": ["gspo"] + [f"gspo-{m}" for m in SE_ABLATION], "tts": TTS_ALGOS + TTS_SWEEP}


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory) -> dict[str, str]:
    """`snakemake -n -p --config site=config/site.h100.yaml --configfile <experiment>` of both files (run at once),
    each in a scratch working directory; task -> stdout."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    procs = {}
    for task, exp in EXPERIMENTS.items():
        cmd = [str(BIN / "snakemake"), "-n", "-p", "-s", str(ROOT / "Snakefile"),
               "--directory", str(tmp_path_factory.mktemp(task)), "--config", f"site={SITE[task]}", "--configfile", str(exp)]
        procs[task] = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = {}
    for task, p in procs.items():
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, f"{EXPERIMENTS[task].name}: {stderr[-3000:]}"
        out[task] = stdout
    return out


def job_counts(out: str) -> dict[str, int]:
    table = out.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def jobs_of(out: str, rule: str) -> list[tuple[list[str], str]]:
    """(resources, shell command without the keep_log wrapper) of each dry-run job of ``rule``."""
    blocks = [j for j in out.split("\nrule ")[1:] if j.startswith(f"{rule}:")]
    return [(b.split("resources: ")[1].splitlines()[0].split(", "),
             re.sub(r'keep="[^\n]*?\|\| true; ', "", b.split("Shell command: ")[1].splitlines()[0])) for b in blocks]


@pytest.mark.parametrize("task", list(EXPERIMENTS))
def test_dag_jobs_gpu_resources_and_launcher(dry_runs, task):
    out = dry_runs[task]
    assert job_counts(out) == JOBS[task]
    rl = jobs_of(out, "rl")
    runs = set()
    for res, shell in rl:
        for r in (f"gpu={GPUS[task]}", f"mem_mb={MEM[task]}", "runtime=1440", f"cpus_per_task={CPUS[task]}"):
            assert r in res, (r, res)
        launch = "torchrun --standalone --nnodes 1 --nproc-per-node 4 --no-python " if GPUS[task] > 1 else ""
        assert shell.startswith(f"{launch}speechrl rl "), shell
        assert f"--task {task} " in shell and f"--tokens results-{EXPERIMENTS[task].stem}/tokens/{task} " in shell
        runs.add((re.search(r"--algo (\S+)", shell).group(1), re.search(r"--seed (\d+)", shell).group(1)))
    assert runs == {(s, str(seed)) for s in RL_SYSTEMS[task] for seed in (0, 1, 2)}
    ((res, shell),) = jobs_of(out, "sft")
    assert f"gpu={GPUS[task]}" in res and shell.startswith(f"{launch}speechrl sft ")
    for res, shell in jobs_of(out, "evaluate"):
        assert "gpu=1" in res and shell.startswith("speechrl evaluate ")
    ((res, shell),) = jobs_of(out, "tokenize")
    assert "gpu=1" in res  # neural codecs encode on the GPU
    assert shell.startswith(f"speechrl tokenize --config results-{EXPERIMENTS[task].stem}/config/{task}/tokenize.yaml ")
    assert f"--task {task} --data results-{EXPERIMENTS[task].stem}/data/{task} " in shell
    ((_, shell),) = jobs_of(out, "init_model")
    assert f"--tokens results-{EXPERIMENTS[task].stem}/tokens/{task} " in shell


def _layered(exp: Path) -> dict:
    """The config Snakemake builds: config/config.yaml, then the experiment file over it (snakemake.utils.update_config)."""
    from snakemake.utils import update_config

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(cfg, yaml.safe_load(exp.read_text()))
    return cfg


PAPER = {
    "se": {"model.arch": "codec_lm", "model.pretrained": "/data/UniSE", "tokenize.codec": "bicodec",
           "rl.algorithms": ["gspo"], "rl.rewards": {"dnsmos_ovrl": 1.0, "asr_wer": 1.0, "utmos": 1.0},
           "rl.group_size": 4, "rl.prompts_per_step": 2, "rl.steps": 3000, "rl.lr": 1e-5, "rl.warmup_steps": 100,
           "rl.grad_clip": 1.0, "rl.eps_low": 0.2, "rl.eps_high": 0.2, "rl.temperature": 1.0,
           "suite.ablation_algorithm": "gspo", "suite.ablation_rewards": SE_ABLATION, "suite.control": False,
           "evaluate.metrics": ["dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "utmos", "pesq", "stoi", "si_sdr", "asr_wer"],
           "data.hub.dns2020": "/data/DNS-Challenge/test_set"},
    "tts": {"model.arch": "codec_lm", "model.pretrained": "/data/Llasa-1B", "tokenize.codec": "xcodec2",
            "tokenize.path": "/data/xcodec2-hf", "rl.algorithms": TTS_ALGOS, "suite.segmenter_sweep": TTS_SWEEP,
            "rl.rewards": {"dnsmos_ovrl": 0.5, "asr_wer": 0.5}, "rl.steps": 1000, "suite.control": False,
            "suite.seeds": [0, 1, 2], "data.hub.libritts": "/data/LibriTTS"},
}


def _get(cfg: dict, path: str):
    for p in path.split("."):
        cfg = cfg[p]
    return cfg


@pytest.mark.parametrize("task", list(EXPERIMENTS))
def test_task_settings_layered_on_the_embedded_suite(task):
    exp = EXPERIMENTS[task]
    layered, alone = task_config(_layered(exp), task), task_config(yaml.safe_load(exp.read_text()), task)
    for key, value in PAPER[task].items():
        assert _get(layered, key) == value, key
    # nothing of config.yaml's CPU-scale tasks.<task> left in what the jobs read (rl.max_sample_batches: dapo only)
    for section in ("sft", "rl", "suite", "evaluate", "tokenize", "report"):
        a, b = dict(layered.get(section, {})), dict(alone.get(section, {}))
        a.pop("max_sample_batches", None)
        assert a == b, section
    # the whole config passes every check (registry names, each task's model / reward / metric columns), both ways:
    # what `speechrl resolve-config --config [config/config.yaml] <file> --out x.yaml` runs
    # every rank samples at least one prompt (speechrl.training.rl): tts runs on the example site's 4 GPUs; se's
    # effective batch 8 (2 prompts x G 4) on the one-GPU site its header names
    rl_gpus = yaml.safe_load(SITE[task].read_text())["jobs"]["rl"]["gpus"]
    assert _get(layered, "rl.prompts_per_step") >= rl_gpus and SITE[task].name in exp.read_text()
    for files in ((ROOT / "config" / "config.yaml", exp), (exp,)):
        cfg = load_config(*files)
        assert cfg.data.tasks == [task] and cfg.data.source == "hub"
