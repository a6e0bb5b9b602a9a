"""Shared fixtures: a tiny config, a tiny synthetic dataset and a tiny saved model (built once per session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

TINY_MODEL = {"vocab_size": 320, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
              "encoder_hidden_size": 32, "encoder_layers": 1, "encoder_heads": 2, "encoder_context": 16}


def tiny_dict(results: Path) -> dict:
    return {
        "name": "test", "results_dir": str(results),
        "data": {"synthetic": {"n_train": 12, "n_valid": 4, "n_test": 4}},
        "model": {"tiny": dict(TINY_MODEL)},
        "sft": {"max_steps": 4, "batch_size": 4, "eval_every": 2, "warmup_steps": 1, "log_every": 2},
        "rl": {"steps": 2, "prompts_per_step": 2, "group_size": 4, "max_new_tokens": 6, "log_every": 1},
        "evaluate": {"max_new_tokens": 6, "batch_size": 4, "metrics": ["bleu", "chrf", "exact_match"]},
        "tracking": {"enabled": False},
    }


@pytest.fixture
def tiny_cfg(tmp_path: Path):
    from speechrl.config import parse_config

    return parse_config(tiny_dict(tmp_path / "results"))


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speechrl")


@pytest.fixture(scope="session")
def tiny_data(session_dir: Path) -> dict[str, Path]:
    """Both synthetic tasks, 12/4/4 utterances each."""
    from speechrl.config import parse_config
    from speechrl.data.synthetic import build_synthetic

    cfg = parse_config(tiny_dict(session_dir / "results"))
    return {t: (build_synthetic(t, cfg, session_dir / "data" / t), session_dir / "data" / t)[1] for t in ("sqa", "ast")}


@pytest.fixture(scope="session")
def tiny_model_dir(session_dir: Path, tiny_data: dict[str, Path]) -> Path:
    """A tiny random-init Granite Speech + tokenizer saved with save_pretrained."""
    from speechrl.config import parse_config
    from speechrl.data.manifest import read_manifest
    from speechrl.models.build import build_tiny, save

    cfg = parse_config(tiny_dict(session_dir / "results"))
    texts = [t for d in tiny_data.values() for ex in read_manifest(d / "train.jsonl") for t in (ex.prompt, *ex.references)]
    model, proc = build_tiny(cfg, texts)
    out = session_dir / "models" / "base"
    save(model, proc, out)
    return out


# `make test` runs `pytest -n 2` (pytest-xdist) with the scheduler below: one work unit per test module, so a
# module-scoped fixture (a workflow run) is built once, on one worker; the two SLURM modules form one unit (one
# test cluster on this machine at a time). Units go out longest first (LPT: the SLURM runs, mostly waiting on
# status checks, start while the other worker does the rest). A stale list only costs time.
SLURM_MODULES = ("tests/workflow/test_slurm.py", "tests/workflow/test_slurm_preempt.py")
LONGEST_FIRST = ("slurm", "tests/workflow/test_workflow.py", "tests/workflow/test_speech_workflow.py",
                 "tests/workflow/test_resume_workflow.py", "tests/workflow/test_rerun_matrix.py",
                 "tests/training/test_backend_parity.py", "tests/workflow/test_site.py",
                 "tests/workflow/test_experiments_speech.py")


def _unit(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return "slurm" if path in SLURM_MODULES else path


def _rank(unit: str) -> int:
    return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """pytest-xdist's per-module scheduling (loadscope) with the SLURM modules as one unit, in collection order
    (:func:`pytest_collection_modifyitems` puts the longest units first). (``--dist loadgroup`` would do this with
    ``xdist_group`` marks, but xdist 3.8 cannot tag test ids under pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    config.option.loadscopereorder = False
    return ModuleScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: _rank(_unit(item.nodeid)))  # stable: file order within and after the ranked units


def run_snakemake(workdir: Path, configfile: Path, *args: str, timeout: int = 900):
    """`snakemake` on this repository's Snakefile in ``workdir`` with ``configfile``, 2 cores, no MLflow server."""
    import subprocess
    import sys

    root, bin_dir = Path(__file__).resolve().parents[1], Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [str(bin_dir / "snakemake"), "-s", str(root / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(configfile), "--cores", "2", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)

